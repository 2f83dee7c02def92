"""The async collection API: client, database and collection, each mirroring its
PyMongo ``Async*`` counterpart over a mongomock store, one monitored round trip per
operation."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Self

import mongomock
from bson import ObjectId
from mongomock.aggregate import process_pipeline
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

from starling.store.embedded.bulk import WriteRequest, batches, op_document, operation_kind
from starling.store.embedded.cursors import (
    Document,
    EmbeddedCommandCursor,
    EmbeddedCursor,
    SortSpec,
    key_list,
)
from starling.store.embedded.events import EmbeddedCommandEvent
from starling.store.embedded.indexes import FieldIndexes, indexes_of, iter_documents, updated_fields

logger = logging.getLogger(__name__)

_request_ids = itertools.count(1)

# Commands that never change the store; every other one counts as a change (snapshots).
_READ_COMMANDS = frozenset(
    {"find", "getMore", "aggregate", "count", "distinct", "listIndexes", "listCollections", "ping"}
)


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


def grouped_fields(stages: Sequence[Mapping[str, Any]]) -> dict[str, int] | None:
    """The projection that keeps what ``stages`` read when they start with a ``$group``
    (whose output is all later stages see): the fields its expressions name. None (the
    whole documents) for any other pipeline, or a group that names a variable (``$$ROOT``)."""
    if not stages or list(stages[0]) != ["$group"]:
        return None
    names: set[str] = set()

    def walk(expression: Any) -> None:
        if isinstance(expression, str) and expression.startswith("$"):
            names.add(expression[1:].split(".")[0])
        elif isinstance(expression, Mapping):
            for value in expression.values():
                walk(value)
        elif isinstance(expression, list | tuple):
            for value in expression:
                walk(value)

    walk(stages[0]["$group"])
    if any(name.startswith("$") for name in names):
        return None
    return {"_id": 1, **{name: 1 for name in names}}


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


class EmbeddedMongoClient:
    """Stand-in for :class:`pymongo.AsyncMongoClient` backed by a private in-memory store.

    Each instance owns its own data, so tests are isolated by creating a new client.
    Only command listeners are honoured; other listener kinds (pool, server, topology) have
    nothing to observe in-process and are ignored. ``tz_aware`` means what it means for
    pymongo (stored datetimes are naive UTC; True returns them with ``tzinfo=UTC``).
    """

    def __init__(self, *, event_listeners: Sequence[object] = (), tz_aware: bool = False) -> None:
        # mongomock's stub declares its classes to be PyMongo's, which they are not (they
        # have no async API, and the engine reaches into their internals): untyped here.
        self._mongomock: Any = mongomock.MongoClient(tz_aware=tz_aware)
        self._listeners: tuple[CommandListener, ...] = tuple(
            listener for listener in event_listeners if isinstance(listener, CommandListener)
        )
        self._closed = False
        self.changes = 0
        """Commands that may have changed the store so far (how snapshots tell it moved)."""

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
            try:
                yield
            finally:
                # Counted once the command ran (even if it failed part-way), never before:
                # a snapshot taken during the await above must not claim this change.
                if command_name not in _READ_COMMANDS:
                    self.changes += 1
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
        self._mongomock: Any = client._mongomock.get_database(name)
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
        self._mongomock: Any = database._mongomock.get_collection(name)
        self._mongomock._iter_documents = iter_documents.__get__(self._mongomock)
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
        query instead, so it can use the indexes (``FieldIndexes``) as a server would, and
        reads only the fields a following ``$group`` uses (``grouped_fields``) instead of
        copying whole documents."""
        stages = list(pipeline)
        async with self._round_trip("aggregate"):
            if stages and list(stages[0]) == ["$match"]:
                matched = list(self._mongomock.find(stages[0]["$match"], grouped_fields(stages[1:])))
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
        sort: Mapping[str, Any] | None = None,
    ) -> UpdateResult:
        async with self._round_trip("update", write=True):
            request = UpdateOne(filter, update, upsert, sort=sort)
            return UpdateResult(self._update(request), True)

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
        sort: Mapping[str, Any] | None = None,
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
                keys = key_list(options.pop("key"))
                try:
                    names.append(self._mongomock.create_index(keys, **options))
                except DuplicateKeyError:  # existing duplicates under a new unique index
                    raise
                except OperationFailure as exc:  # an index of that name, with other options
                    raise self._index_conflict(options["name"], keys, exc) from None
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

    def _index_conflict(self, name: str, keys: Any, exc: OperationFailure) -> OperationFailure:
        """mongomock's code-less conflict as the server answers it: 85 when the existing
        index of that name has the same key (other options), 86 when another key."""
        existing = self._mongomock._store.indexes.get(name, {})
        same_key = [tuple(k) for k in existing.get("key", [])] == [tuple(k) for k in keys]
        code = 85 if same_key else 86  # IndexOptionsConflict, IndexKeySpecsConflict
        return OperationFailure(str(exc), code)

    @property
    def _indexes(self) -> FieldIndexes:
        return indexes_of(self._mongomock._store)

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
        changing = updated_fields(request)
        indexes.held = changing
        try:
            result = self._apply_update(request)
        finally:
            indexes.held = set()
            indexes.forget(changing)
        if "upserted" in result:
            indexes.add(self._mongomock._store[result["upserted"]])
        return result

    def _apply_update(self, request: UpdateOne | UpdateMany | ReplaceOne[Any]) -> Document:
        flt: Mapping[str, Any] = request._filter
        if request._sort is not None:
            # mongomock has no sort for single updates: pin the first match in sort order.
            target = self._mongomock.find_one(flt, {"_id": 1}, sort=key_list(request._sort))
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
            order = None if sort is None else key_list(sort)
            target = self._mongomock.find_one(request._filter, {"_id": 1}, sort=order)
            if target is None:
                if isinstance(request, DeleteOne) or not request._upsert:
                    return None
                upserted_id = self._update(request)["upserted"]
                if return_document:  # ReturnDocument.AFTER is True
                    return self._stored({"_id": upserted_id}, projection)
                return None
            by_id = {"_id": target["_id"]}
            before = self._stored(by_id, projection)
            if isinstance(request, DeleteOne):
                self._mongomock.delete_one(by_id)
                return before
            pinned = self._pin(request._filter, target["_id"])
            if isinstance(request, ReplaceOne):
                self._update(ReplaceOne(pinned, request._doc))
            else:
                self._update(UpdateOne(pinned, request._doc))
            if return_document:
                return self._stored(by_id, projection)
            return before

    def _stored(
        self, filter: Mapping[str, Any], projection: Mapping[str, Any] | Iterable[str] | None
    ) -> Document | None:
        found: Document | None = self._mongomock.find_one(filter, projection)
        return found

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
        for batch in batches(requests, ordered):
            async with self._round_trip(operation_kind(batch[0][1]), write=True):
                for index, request in batch:
                    try:
                        self._apply(index, request, result)
                    except WriteError as exc:
                        details = dict(exc.details or {})
                        error = {"errmsg": str(exc), **details}
                        error.update(index=index, code=exc.code, op=op_document(request))
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
