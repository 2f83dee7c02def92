"""In-process MongoDB engine: a thin async adapter over ``mongomock``.

Production code talks to MongoDB through PyMongo's native async API
(:class:`pymongo.AsyncMongoClient`). Tests and the embedded dev mode have no server, so they
hand the very same production code an :class:`EmbeddedMongoClient` instead. This module only
translates between the two worlds; it must never grow behaviour that production code would
have to know about:

* every method mirrors the name, signature and return type of its ``Async*`` counterpart
  (results are the real :mod:`pymongo.results` classes, errors the real :mod:`pymongo.errors`);
* every operation is one "round trip": it publishes ``started`` then ``succeeded``/``failed``
  to the registered :class:`pymongo.monitoring.CommandListener` objects under the real MongoDB
  command name, so round-trip budgets measured in tests mean the same thing in production;
* mongomock is synchronous and not thread-safe, so operations run directly on the event loop
  thread, after one ``asyncio.sleep(0)`` that stands in for the network wait (production code
  always suspends on a database call; code that only works without that suspension is a bug we
  want tests to catch).

* mongomock answers every query by scanning the whole collection; here a query that pins
  ``_id`` or the leading field of a declared index to values reads only those documents
  (``_FieldIndexes``), so costs grow with the result as they do on a server, not with the
  collection (the benchmark loads thousands of documents).

mongomock's own ``bulk_write`` is broken with pymongo >= 4.11 (it passes ``sort=`` to its bulk
builder), so bulk requests are translated here from pymongo's operation objects.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self

import mongomock
from bson import ObjectId
from mongomock.aggregate import process_pipeline
from mongomock.filtering import filter_applies
from pymongo import ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    InvalidOperation,
    OperationFailure,
    WriteError,
)
from pymongo.monitoring import CommandListener
from pymongo.operations import (
    DeleteMany,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReplaceOne,
    UpdateMany,
    UpdateOne,
)
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

__all__ = [
    "EmbeddedCollection",
    "EmbeddedCommandCursor",
    "EmbeddedCommandEvent",
    "EmbeddedCursor",
    "EmbeddedDatabase",
    "EmbeddedMongoClient",
]

logger = logging.getLogger(__name__)

Document = dict[str, Any]
SortSpec = str | Sequence[str | tuple[str, Any]] | Mapping[str, Any]
WriteRequest = InsertOne[Any] | UpdateOne | UpdateMany | ReplaceOne[Any] | DeleteOne | DeleteMany

_request_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class EmbeddedCommandEvent:
    """What listeners receive for one embedded round trip.

    ``command_name``, ``database_name`` and ``request_id`` have the same meaning as on
    :class:`pymongo.monitoring.CommandStartedEvent`, so a listener written for production can
    read them unchanged. The same object is passed to ``started`` and ``succeeded``/``failed``.
    """

    command_name: str
    database_name: str
    collection_name: str
    request_id: int


def _key_list(key_or_list: SortSpec, direction: Any = None) -> list[tuple[str, Any]]:
    """Normalise a sort/index spec the way pymongo does (str, mapping or list of pairs)."""
    if direction is not None:
        if not isinstance(key_or_list, str):
            raise TypeError(f"Expected a string and a direction, not {type(key_or_list)}")
        return [(key_or_list, direction)]
    if isinstance(key_or_list, str):
        return [(key_or_list, 1)]
    if isinstance(key_or_list, Mapping):
        return list(key_or_list.items())
    if not isinstance(key_or_list, list | tuple):
        raise TypeError(f"key_or_list must be a list, not {type(key_or_list)}")
    return [(item, 1) if isinstance(item, str) else (item[0], item[1]) for item in key_or_list]


def _dotted_get(doc: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, ``None`` when missing (how unique indexes treat missing keys)."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _ensure_id(document: Any) -> None:
    """Give a document to insert an ``_id`` in place, as pymongo does before sending it."""
    if not isinstance(document, MutableMapping):
        raise TypeError("document must be an instance of dict or another MutableMapping")
    if "_id" not in document:
        document["_id"] = ObjectId()


def _update_raw_result(raw: Mapping[str, Any]) -> Document:
    """Reshape mongomock's update reply into the server's (``upserted`` only when it happened).

    pymongo's ``UpdateResult.did_upsert`` tests for the key, and mongomock always sets it.
    """
    result: Document = {
        "n": raw["n"],
        "nModified": raw["nModified"],
        "ok": 1.0,
        "updatedExisting": raw["updatedExisting"],
    }
    if raw.get("upserted") is not None:
        result["upserted"] = raw["upserted"]
    return result


def _operation_kind(request: object) -> str:
    """The write command ("insert"/"update"/"delete") pymongo sends a bulk request with."""
    if isinstance(request, InsertOne):
        return "insert"
    if isinstance(request, UpdateOne | UpdateMany | ReplaceOne):
        return "update"
    if isinstance(request, DeleteOne | DeleteMany):
        return "delete"
    raise TypeError(f"{request!r} is not a valid request")


def _batches(requests: Sequence[WriteRequest], ordered: bool) -> list[list[tuple[int, Any]]]:
    """Split requests into write commands exactly as pymongo's bulk API does.

    Ordered: one command per contiguous run of the same kind. Unordered: one command per kind,
    in insert, update, delete order. Each entry keeps the request's original index.
    """
    kinds = [_operation_kind(request) for request in requests]
    if ordered:
        return [list(group) for _, group in itertools.groupby(enumerate(requests), key=lambda p: kinds[p[0]])]
    grouped = [
        [(i, r) for i, r in enumerate(requests) if kinds[i] == kind]
        for kind in ("insert", "update", "delete")
    ]
    return [batch for batch in grouped if batch]


def _op_document(request: WriteRequest) -> Any:
    """The ``op`` a server write error refers to, shaped like the write command's entry."""
    if isinstance(request, InsertOne):
        return request._doc
    if isinstance(request, DeleteOne | DeleteMany):
        return {"q": request._filter, "limit": 1 if isinstance(request, DeleteOne) else 0}
    return {
        "q": request._filter,
        "u": request._doc,
        "multi": isinstance(request, UpdateMany),
        "upsert": bool(request._upsert),
    }


# Filter values an index lookup may use: for these, Python hash equality never separates
# values MongoDB calls equal (ints, floats and bools may share a bucket: that only adds
# candidates, and every candidate is checked against the whole filter).
_LOOKUP_TYPES = (int, str, ObjectId)


def _lookup_values(condition: Any) -> list[Any] | None:
    """The values a top-level filter condition pins a field to (equality or ``$in``), or None
    when it does not (ranges, regexes, sub-documents, ``$nin``...)."""
    if condition is None or isinstance(condition, _LOOKUP_TYPES):
        return [condition]
    if isinstance(condition, Mapping) and isinstance(condition.get("$in"), list | tuple):
        values = list(condition["$in"])
        if all(value is None or isinstance(value, _LOOKUP_TYPES) for value in values):
            return list(dict.fromkeys(values))
    return None


def _updated_fields(request: UpdateOne | UpdateMany | ReplaceOne[Any]) -> set[str] | None:
    """Top-level fields an update may change; None when any may (replacements, pipelines,
    upserts, renames)."""
    if isinstance(request, ReplaceOne) or request._upsert or not isinstance(request._doc, Mapping):
        return None
    if "$rename" in request._doc:
        return None
    return {
        path.split(".")[0] for spec in request._doc.values() if isinstance(spec, Mapping) for path in spec
    }


class _FieldIndexes:
    """Hash indexes of one collection: for the leading field of each declared index, value ->
    IDs of the documents holding it (array elements indexed one by one, a missing field as
    None). Built on first use from the documents, extended by inserts.

    Entries are never removed: a lookup re-reads each candidate from the store and applies the
    whole filter, so a stale entry (a deleted document, an old value) costs a check, while a
    missing one would hide a document. Hence an update, which mongomock applies in place, runs
    without the indexes of the fields it may change (``held``: None = all of them; ``_id``
    lookups always work, the store is keyed by it) and then drops them, to be rebuilt when
    next used.
    """

    def __init__(self) -> None:
        self._entries: dict[str, dict[Any, dict[Any, None]]] = {}
        self.held: set[str] | None = set()

    def candidates(self, store: Any, filter: Any) -> list[Any] | None:
        """IDs of all documents that may match ``filter``, or None when only a scan can tell."""
        if not isinstance(filter, Mapping):
            return None
        if "_id" in filter:
            ids = _lookup_values(filter["_id"])
            if ids is not None:
                return ids
        if self.held is None:
            return None
        for name in self._indexed_fields(store):
            if name in filter and name not in self.held:
                values = _lookup_values(filter[name])
                if values is not None:
                    entries = self._field(store, name)
                    found: dict[Any, None] = {}
                    for value in values:
                        found.update(entries.get(value, {}))
                    return list(found)
        return None

    def add(self, document: Mapping[str, Any]) -> None:
        """Index a document about to be inserted (before mongomock checks unique indexes)."""
        for name, entries in self._entries.items():
            self._index_value(entries, document.get(name), document["_id"])

    def forget(self, fields: set[str] | None = None) -> None:
        if fields is None:
            self._entries.clear()
        else:
            for name in fields & self._entries.keys():
                del self._entries[name]

    @staticmethod
    def _indexed_fields(store: Any) -> list[str]:
        leading = (index["key"][0][0] for index in store.indexes.values())
        return [name for name in leading if name != "_id" and "." not in name]

    def _field(self, store: Any, name: str) -> dict[Any, dict[Any, None]]:
        entries = self._entries.get(name)
        if entries is None:
            entries = self._entries[name] = {}
            for document in store.documents:
                self._index_value(entries, document.get(name), document["_id"])
        return entries

    @staticmethod
    def _index_value(entries: dict[Any, dict[Any, None]], value: Any, _id: Any) -> None:
        for element in value if isinstance(value, list) else (value,):
            try:
                ids = entries.setdefault(element, {})
            except TypeError:  # unhashable (a sub-document): no equality lookup reaches it
                continue
            ids.pop(_id, None)  # a re-inserted ID moves to the end, as in the store
            ids[_id] = None


_INDEXES: weakref.WeakKeyDictionary[Any, _FieldIndexes] = weakref.WeakKeyDictionary()
_SCAN = mongomock.Collection._iter_documents


def _indexes_of(store: Any) -> _FieldIndexes:
    """The indexes of a mongomock collection store (a dropped collection gets a new store)."""
    indexes = _INDEXES.get(store)
    if indexes is None:
        indexes = _INDEXES[store] = _FieldIndexes()
    return indexes


def _iter_documents(collection: mongomock.Collection, filter: Any) -> Iterable[Document]:
    """mongomock's one scanning primitive (find, update, delete, unique checks), narrowed to
    index candidates when the filter allows."""
    store = collection._store
    ids = _indexes_of(store).candidates(store, filter)
    if ids is None or store.is_empty:  # is_empty also expires TTL documents
        return _SCAN(collection, filter)
    documents = store._documents
    found = [documents[_id] for _id in ids if _id in documents]
    return (document for document in found if filter_applies(filter, document))


class EmbeddedMongoClient:
    """Stand-in for :class:`pymongo.AsyncMongoClient` backed by a private in-memory store.

    Each instance owns its own data, so tests are isolated by creating a new client.
    Only command listeners are honoured; other listener kinds (pool, server, topology) have
    nothing to observe in-process and are ignored. ``tz_aware`` means what it means for
    pymongo (stored datetimes are naive UTC; True returns them with ``tzinfo=UTC``).
    """

    def __init__(self, *, event_listeners: Sequence[CommandListener] = (), tz_aware: bool = False) -> None:
        self._mongomock = mongomock.MongoClient(tz_aware=tz_aware)
        self._listeners: tuple[CommandListener, ...] = tuple(
            listener for listener in event_listeners if isinstance(listener, CommandListener)
        )
        self._closed = False

    def __repr__(self) -> str:
        return "EmbeddedMongoClient()"

    def __getitem__(self, name: str) -> EmbeddedDatabase:
        return self.get_database(name)

    def __getattr__(self, name: str) -> EmbeddedDatabase:
        if name.startswith("_"):
            raise AttributeError(f"EmbeddedMongoClient has no attribute {name!r}")
        return self.get_database(name)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def get_database(self, name: str) -> EmbeddedDatabase:
        return EmbeddedDatabase(self, name)

    @property
    def admin(self) -> EmbeddedDatabase:
        return self.get_database("admin")

    async def close(self) -> None:
        """Like pymongo: any later operation raises InvalidOperation."""
        self._closed = True

    async def drop_database(self, name_or_database: str | EmbeddedDatabase) -> None:
        name = name_or_database.name if isinstance(name_or_database, EmbeddedDatabase) else name_or_database
        async with self._round_trip("dropDatabase", name, ""):
            self._mongomock.drop_database(name)

    @asynccontextmanager
    async def _round_trip(
        self, command_name: str, database_name: str, collection_name: str, *, write: bool = False
    ) -> AsyncIterator[None]:
        """Wrap one operation in started/succeeded/failed events and one event-loop yield.

        With ``write=True`` (insert/update/delete commands) a WriteError still counts as a
        succeeded command: the server answers ``ok: 1`` with ``writeErrors`` and pymongo
        publishes CommandSucceededEvent before raising, and we keep the same bookkeeping.
        """
        if self._closed:
            raise InvalidOperation("Cannot use AsyncMongoClient after close")
        event = EmbeddedCommandEvent(command_name, database_name, collection_name, next(_request_ids))
        self._publish("started", event)
        try:
            await asyncio.sleep(0)
            yield
        except WriteError:
            self._publish("succeeded" if write else "failed", event)
            raise
        except BaseException:
            self._publish("failed", event)
            raise
        self._publish("succeeded", event)

    def _publish(self, method: str, event: EmbeddedCommandEvent) -> None:
        """Listener errors are logged and swallowed, as pymongo does."""
        for listener in self._listeners:
            try:
                getattr(listener, method)(event)
            except Exception:
                logger.exception("command listener %r raised in %s()", listener, method)


class EmbeddedDatabase:
    """Stand-in for :class:`pymongo.asynchronous.database.AsyncDatabase`."""

    def __init__(self, client: EmbeddedMongoClient, name: str) -> None:
        self._client = client
        self._mongomock = client._mongomock.get_database(name)
        self.name = name

    def __repr__(self) -> str:
        return f"EmbeddedDatabase({self.name!r})"

    @property
    def client(self) -> EmbeddedMongoClient:
        return self._client

    def __getitem__(self, name: str) -> EmbeddedCollection:
        return self.get_collection(name)

    def __getattr__(self, name: str) -> EmbeddedCollection:
        if name.startswith("_"):
            raise AttributeError(f"EmbeddedDatabase has no attribute {name!r}")
        return self.get_collection(name)

    def get_collection(self, name: str) -> EmbeddedCollection:
        return EmbeddedCollection(self, name)

    async def command(self, command: str | Mapping[str, Any]) -> Document:
        """Only ``ping`` exists in-process; anything else fails like an unknown server command."""
        name = command if isinstance(command, str) else next(iter(command))
        async with self._client._round_trip(name, self.name, ""):
            if name != "ping":
                raise OperationFailure(f"no such command: '{name}'", 59)
            return {"ok": 1.0}

    async def list_collection_names(self) -> list[str]:
        async with self._client._round_trip("listCollections", self.name, ""):
            return list(self._mongomock.list_collection_names())


class EmbeddedCollection:
    """Stand-in for :class:`pymongo.asynchronous.collection.AsyncCollection`."""

    def __init__(self, database: EmbeddedDatabase, name: str) -> None:
        self._database = database
        self._client = database.client
        self._mongomock = database._mongomock.get_collection(name)
        self._mongomock._iter_documents = _iter_documents.__get__(self._mongomock)
        self.name = name

    def __repr__(self) -> str:
        return f"EmbeddedCollection({self.full_name!r})"

    @property
    def database(self) -> EmbeddedDatabase:
        return self._database

    @property
    def full_name(self) -> str:
        return f"{self._database.name}.{self.name}"

    def _round_trip(self, command_name: str, *, write: bool = False) -> AbstractAsyncContextManager[None]:
        return self._client._round_trip(command_name, self._database.name, self.name, write=write)

    # -- reads ---------------------------------------------------------------------------------

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int = 0,
        skip: int = 0,
    ) -> EmbeddedCursor:
        """Not a coroutine, like AsyncCollection.find: the query runs on first iteration."""
        if filter is not None and not isinstance(filter, Mapping):
            raise TypeError("filter must be a mapping")
        cursor = EmbeddedCursor(self, filter or {}, projection)
        if sort is not None:
            cursor.sort(sort)
        return cursor.limit(limit).skip(skip)

    async def find_one(
        self,
        filter: Any = None,
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        *,
        sort: SortSpec | None = None,
        skip: int = 0,
    ) -> Document | None:
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        docs = await self.find(filter, projection, sort=sort, skip=skip, limit=-1).to_list()
        return docs[0] if docs else None

    async def count_documents(
        self, filter: Mapping[str, Any], *, skip: int = 0, limit: int | None = None
    ) -> int:
        options: dict[str, int] = {"skip": skip} if limit is None else {"skip": skip, "limit": limit}
        async with self._round_trip("aggregate"):
            return int(self._mongomock.count_documents(filter, **options))

    async def estimated_document_count(self) -> int:
        async with self._round_trip("count"):
            return int(self._mongomock.estimated_document_count())

    async def distinct(self, key: str, filter: Mapping[str, Any] | None = None) -> list[Any]:
        async with self._round_trip("distinct"):
            return list(self._mongomock.distinct(key, filter))

    async def aggregate(self, pipeline: Sequence[Mapping[str, Any]]) -> EmbeddedCommandCursor:
        """A coroutine returning a cursor, like AsyncCollection.aggregate; runs eagerly.

        mongomock feeds a pipeline the whole collection; a leading ``$match`` is run here as a
        query instead, so it can use the indexes (``_FieldIndexes``) as a server would."""
        stages = list(pipeline)
        async with self._round_trip("aggregate"):
            if stages and list(stages[0]) == ["$match"]:
                matched = list(self._mongomock.find(stages[0]["$match"]))
                docs = list(process_pipeline(matched, self._mongomock.database, stages[1:], None))
            else:
                docs = list(self._mongomock.aggregate(stages))
        return EmbeddedCommandCursor(docs)

    # -- single writes -------------------------------------------------------------------------

    async def insert_one(self, document: Document) -> InsertOneResult:
        """Adds ``_id`` to ``document`` when missing, like pymongo."""
        async with self._round_trip("insert", write=True):
            return InsertOneResult(self._insert(document), acknowledged=True)

    async def insert_many(self, documents: Iterable[Document], ordered: bool = True) -> InsertManyResult:
        """Adds ``_id`` to each document; duplicates raise BulkWriteError after the inserts
        pymongo would have made (up to the first error if ordered, all others if not)."""
        if isinstance(documents, Mapping) or not isinstance(documents, Iterable):
            raise TypeError("documents must be a non-empty list")
        docs = list(documents)
        if not docs:
            raise TypeError("documents must be a non-empty list")
        await self._bulk([InsertOne(doc) for doc in docs], ordered)
        return InsertManyResult([doc["_id"] for doc in docs], acknowledged=True)

    async def update_one(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        upsert: bool = False,
        *,
        sort: SortSpec | None = None,
    ) -> UpdateResult:
        async with self._round_trip("update", write=True):
            return UpdateResult(self._update(UpdateOne(filter, update, upsert, sort=sort)), True)

    async def update_many(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        upsert: bool = False,
    ) -> UpdateResult:
        async with self._round_trip("update", write=True):
            return UpdateResult(self._update(UpdateMany(filter, update, upsert)), True)

    async def replace_one(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool = False,
        *,
        sort: SortSpec | None = None,
    ) -> UpdateResult:
        async with self._round_trip("update", write=True):
            request = ReplaceOne(filter, replacement, upsert, sort=sort)
            return UpdateResult(self._update(request), True)

    async def delete_one(self, filter: Mapping[str, Any]) -> DeleteResult:
        async with self._round_trip("delete", write=True):
            return DeleteResult({"n": self._delete(DeleteOne(filter)), "ok": 1.0}, True)

    async def delete_many(self, filter: Mapping[str, Any]) -> DeleteResult:
        async with self._round_trip("delete", write=True):
            return DeleteResult({"n": self._delete(DeleteMany(filter)), "ok": 1.0}, True)

    async def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        sort: SortSpec | None = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
    ) -> Document | None:
        request = UpdateOne(filter, update, upsert)
        return await self._find_and_modify(request, projection, sort, return_document)

    async def find_one_and_replace(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        sort: SortSpec | None = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
    ) -> Document | None:
        request = ReplaceOne(filter, replacement, upsert)
        return await self._find_and_modify(request, projection, sort, return_document)

    async def find_one_and_delete(
        self,
        filter: Mapping[str, Any],
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        sort: SortSpec | None = None,
    ) -> Document | None:
        request = DeleteOne(filter)
        return await self._find_and_modify(request, projection, sort, ReturnDocument.BEFORE)

    async def bulk_write(self, requests: Sequence[WriteRequest], ordered: bool = True) -> BulkWriteResult:
        """One insert/update/delete command per batch, batched as pymongo batches them."""
        if not isinstance(requests, list | tuple):
            raise TypeError("requests must be a list")
        return BulkWriteResult(await self._bulk(requests, ordered), acknowledged=True)

    # -- indexes and collection management -----------------------------------------------------

    async def create_index(self, keys: SortSpec, **kwargs: Any) -> str:
        """Idempotent for identical specs; existing duplicates make a unique index fail."""
        return (await self.create_indexes([IndexModel(keys, **kwargs)]))[0]

    async def create_indexes(self, indexes: Sequence[IndexModel]) -> list[str]:
        for index in indexes:
            if not isinstance(index, IndexModel):
                raise TypeError(f"{index!r} is not an instance of pymongo.operations.IndexModel")
        async with self._round_trip("createIndexes"):
            names = []
            for index in indexes:
                options = dict(index.document)
                keys = _key_list(options.pop("key"))
                names.append(self._mongomock.create_index(keys, **options))
            self._indexes.forget()
            return names

    async def index_information(self) -> dict[str, Any]:
        async with self._round_trip("listIndexes"):
            return {
                name: {**info, "key": list(info["key"])}
                for name, info in self._mongomock.index_information().items()
            }

    async def drop(self) -> None:
        async with self._round_trip("drop"):
            self._mongomock.drop()
            self._indexes.forget()

    # -- synchronous internals (always called inside a round trip) -----------------------------

    @property
    def _indexes(self) -> _FieldIndexes:
        return _indexes_of(self._mongomock._store)

    def _duplicate_key_error(self, document: Mapping[str, Any] | None) -> DuplicateKeyError:
        """Rebuild mongomock's bare DuplicateKeyError with the server's ``details``.

        When the offending document is known (inserts), name the violated unique index in
        ``keyPattern``/``keyValue`` so callers can tell "username taken" from "email taken".
        """
        details: Document = {
            "index": 0,
            "code": 11000,
            "errmsg": f"E11000 duplicate key error collection: {self.full_name}",
        }
        if document is not None:
            for name, info in self._mongomock.index_information().items():
                if name != "_id_" and not info.get("unique"):
                    continue
                key_value = {key: _dotted_get(document, key) for key, _ in info["key"]}
                if info.get("sparse") and all(v is None for v in key_value.values()):
                    continue  # a sparse index does not hold this document
                query: Mapping[str, Any] = key_value
                if "partialFilterExpression" in info:
                    query = {"$and": [info["partialFilterExpression"], key_value]}
                if self._mongomock.find_one(query, {"_id": 1}) is not None:
                    details["keyPattern"] = dict(info["key"])
                    details["keyValue"] = key_value
                    details["errmsg"] += f" index: {name} dup key: {key_value!r}"
                    break
        return DuplicateKeyError(details["errmsg"], 11000, details)

    def _insert(self, document: Document) -> Any:
        _ensure_id(document)
        self._indexes.add(document)
        try:
            self._mongomock.insert_one(document)
        except DuplicateKeyError:
            raise self._duplicate_key_error(document) from None
        return document["_id"]

    def _update(self, request: UpdateOne | UpdateMany | ReplaceOne[Any]) -> Document:
        """Apply one update/replace request; returns a server-shaped raw result."""
        if request._hint is not None or request._collation is not None:
            raise NotImplementedError("hint and collation are not supported by the embedded engine")
        indexes = self._indexes
        changing = _updated_fields(request)
        indexes.held = changing
        try:
            return self._apply_update(request)
        finally:
            indexes.held = set()
            indexes.forget(changing)

    def _apply_update(self, request: UpdateOne | UpdateMany | ReplaceOne[Any]) -> Document:
        flt: Mapping[str, Any] = request._filter
        if request._sort is not None:
            # mongomock has no sort for single updates: pin the first match in sort order.
            target = self._mongomock.find_one(flt, {"_id": 1}, sort=_key_list(request._sort))
            if target is not None:
                flt = self._pin(flt, target["_id"])
        upsert = bool(request._upsert)
        try:
            if isinstance(request, ReplaceOne):
                result = self._mongomock.replace_one(flt, request._doc, upsert=upsert)
            elif isinstance(request, UpdateMany):
                result = self._mongomock.update_many(
                    flt, request._doc, upsert=upsert, array_filters=request._array_filters
                )
            else:
                result = self._mongomock.update_one(
                    flt, request._doc, upsert=upsert, array_filters=request._array_filters
                )
        except DuplicateKeyError:
            raise self._duplicate_key_error(None) from None
        return _update_raw_result(result.raw_result)

    def _delete(self, request: DeleteOne | DeleteMany) -> int:
        if request._hint is not None or request._collation is not None:
            raise NotImplementedError("hint and collation are not supported by the embedded engine")
        if isinstance(request, DeleteMany):
            return int(self._mongomock.delete_many(request._filter).deleted_count)
        return int(self._mongomock.delete_one(request._filter).deleted_count)

    @staticmethod
    def _pin(filter: Mapping[str, Any], _id: Any) -> Mapping[str, Any]:
        """Narrow ``filter`` to one document while keeping its fields (for ``$`` updates)."""
        if "_id" in filter:
            return {"$and": [dict(filter), {"_id": _id}]}
        return {**filter, "_id": _id}

    async def _find_and_modify(
        self,
        request: UpdateOne | ReplaceOne[Any] | DeleteOne,
        projection: Mapping[str, Any] | Iterable[str] | None,
        sort: SortSpec | None,
        return_document: bool,
    ) -> Document | None:
        """findAndModify: pick the first match in ``sort`` order, modify it by ``_id``.

        Written here because mongomock's version re-finds the document by the original filter,
        which breaks AFTER when the update changes the matched fields or the projection drops
        ``_id``.
        """
        async with self._round_trip("findAndModify"):
            order = None if sort is None else _key_list(sort)
            target = self._mongomock.find_one(request._filter, {"_id": 1}, sort=order)
            if target is None:
                if isinstance(request, DeleteOne) or not request._upsert:
                    return None
                upserted_id = self._update(request)["upserted"]
                if return_document:  # ReturnDocument.AFTER is True
                    return self._mongomock.find_one({"_id": upserted_id}, projection)
                return None
            by_id = {"_id": target["_id"]}
            before = self._mongomock.find_one(by_id, projection)
            if isinstance(request, DeleteOne):
                self._mongomock.delete_one(by_id)
                return before
            pinned = self._pin(request._filter, target["_id"])
            if isinstance(request, ReplaceOne):
                self._update(ReplaceOne(pinned, request._doc))
            else:
                self._update(UpdateOne(pinned, request._doc))
            if return_document:
                return self._mongomock.find_one(by_id, projection)
            return before

    async def _bulk(self, requests: Sequence[WriteRequest], ordered: bool) -> Document:
        """Run write requests as pymongo batches them; raise BulkWriteError on write errors.

        Like the server, a batch with write errors is still a succeeded command; an ordered
        bulk stops at the first error, an unordered one carries on.
        """
        if not requests:
            raise InvalidOperation("No operations to execute")
        for request in requests:
            if isinstance(request, InsertOne):
                _ensure_id(request._doc)  # pymongo assigns every _id before sending anything
        result: Document = {
            "writeErrors": [],
            "writeConcernErrors": [],
            "nInserted": 0,
            "nUpserted": 0,
            "nMatched": 0,
            "nModified": 0,
            "nRemoved": 0,
            "upserted": [],
        }
        for batch in _batches(requests, ordered):
            async with self._round_trip(_operation_kind(batch[0][1]), write=True):
                for index, request in batch:
                    try:
                        self._apply(index, request, result)
                    except WriteError as exc:
                        details = dict(exc.details or {})
                        error = {"errmsg": str(exc), **details}
                        error.update(index=index, code=exc.code, op=_op_document(request))
                        result["writeErrors"].append(error)
                        if ordered:
                            break
            if ordered and result["writeErrors"]:
                break
        if result["writeErrors"]:
            raise BulkWriteError(result)
        return result

    def _apply(self, index: int, request: WriteRequest, result: Document) -> None:
        """Apply one bulk request and merge its counts into the bulk API ``result``."""
        if isinstance(request, InsertOne):
            self._insert(request._doc)
            result["nInserted"] += 1
        elif isinstance(request, DeleteOne | DeleteMany):
            result["nRemoved"] += self._delete(request)
        else:
            raw = self._update(request)
            upserted = "upserted" in raw
            if upserted:
                result["upserted"].append({"index": index, "_id": raw["upserted"]})
            result["nUpserted"] += int(upserted)
            result["nMatched"] += raw["n"] - int(upserted)
            result["nModified"] += raw["nModified"]


class EmbeddedCursor:
    """Stand-in for :class:`pymongo.asynchronous.cursor.AsyncCursor`.

    The query runs (one "find" event) on the first ``to_list``/iteration; results are then
    served from memory, so a cursor is exactly one round trip however it is consumed.
    """

    def __init__(
        self,
        collection: EmbeddedCollection,
        filter: Mapping[str, Any],
        projection: Mapping[str, Any] | Iterable[str] | None,
    ) -> None:
        self._collection = collection
        self._filter = filter
        self._projection = projection
        self._sort: list[tuple[str, Any]] | None = None
        self._limit = 0
        self._skip = 0
        self._buffer: deque[Document] | None = None

    def _check_okay_to_chain(self) -> None:
        if self._buffer is not None:
            raise InvalidOperation("cannot set options after executing query")

    def sort(self, key_or_list: SortSpec, direction: Any = None) -> Self:
        self._check_okay_to_chain()
        self._sort = _key_list(key_or_list, direction)
        return self

    def limit(self, limit: int) -> Self:
        if not isinstance(limit, int):
            raise TypeError("limit must be an integer")
        self._check_okay_to_chain()
        self._limit = limit
        return self

    def skip(self, skip: int) -> Self:
        if not isinstance(skip, int):
            raise TypeError("skip must be an integer")
        if skip < 0:
            raise ValueError("skip must be >= 0")
        self._check_okay_to_chain()
        self._skip = skip
        return self

    def batch_size(self, batch_size: int) -> Self:
        """Accepted for compatibility; everything arrives in one batch in-process."""
        if not isinstance(batch_size, int):
            raise TypeError("batch_size must be an integer")
        if batch_size < 0:
            raise ValueError("batch_size must be >= 0")
        self._check_okay_to_chain()
        return self

    async def _results(self) -> deque[Document]:
        if self._buffer is None:
            async with self._collection._round_trip("find"):
                docs = self._collection._mongomock.find(
                    self._filter,
                    self._projection,
                    sort=self._sort,
                    skip=self._skip,
                    limit=self._limit,
                )
                self._buffer = deque(docs)
        return self._buffer

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        results = await self._results()
        if not results:
            raise StopAsyncIteration
        return results.popleft()

    async def next(self) -> Document:
        return await self.__anext__()

    async def to_list(self, length: int | None = None) -> list[Document]:
        """Up to ``length`` remaining documents (all when None), like AsyncCursor.to_list."""
        if length is not None and length < 1:
            raise ValueError("to_list() length must be greater than 0")
        results = await self._results()
        count = len(results) if length is None else min(length, len(results))
        return [results.popleft() for _ in range(count)]

    async def close(self) -> None:
        """Discard remaining results; a cursor closed before use never queries."""
        self._buffer = deque()


class EmbeddedCommandCursor:
    """Stand-in for :class:`pymongo.asynchronous.command_cursor.AsyncCommandCursor`.

    Holds the already-computed aggregation results (its round trip was ``aggregate()``).
    """

    def __init__(self, documents: Iterable[Document]) -> None:
        self._buffer: deque[Document] = deque(documents)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        if not self._buffer:
            raise StopAsyncIteration
        return self._buffer.popleft()

    async def next(self) -> Document:
        return await self.__anext__()

    async def to_list(self, length: int | None = None) -> list[Document]:
        if length is not None and length < 1:
            raise ValueError("to_list() length must be greater than 0")
        count = len(self._buffer) if length is None else min(length, len(self._buffer))
        return [self._buffer.popleft() for _ in range(count)]

    async def close(self) -> None:
        self._buffer.clear()
