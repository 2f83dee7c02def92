"""Index emulation: hash lookups on ``_id`` and the leading field of each declared index,
so a query that pins them reads only the matching documents instead of scanning the
collection."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bson import ObjectId
from mongomock import filtering
from mongomock.collection import Collection as MockCollection
from mongomock.filtering import filter_applies
from pymongo.operations import ReplaceOne, UpdateMany, UpdateOne

from starling.store.embedded.cursors import Document

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


def updated_fields(request: UpdateOne | UpdateMany | ReplaceOne[Any]) -> set[str] | None:
    """Top-level fields an update may change in the documents it matches; None when any may
    (replacements, pipelines, renames). An upsert's inserted document is indexed after it
    is stored (``FieldIndexes.add``), so its filter's fields stay usable for the lookup."""
    if isinstance(request, ReplaceOne) or not isinstance(request._doc, Mapping):
        return None
    if "$rename" in request._doc:
        return None
    return {
        path.split(".")[0] for spec in request._doc.values() if isinstance(spec, Mapping) for path in spec
    }


class FieldIndexes:
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
        # Of the indexed fields the filter pins, the one with the fewest candidates: a unique
        # check on (followee_id, follower_id) must not walk a celebrity's every follower
        # when the follower's own edges are a handful.
        best: tuple[int, dict[Any, dict[Any, None]], list[Any]] | None = None
        for name in self._indexed_fields(store):
            if name in filter and name not in self.held:
                values = _lookup_values(filter[name])
                if values is not None:
                    entries = self._field(store, name)
                    size = sum(len(entries.get(value, ())) for value in values)
                    if best is None or size < best[0]:
                        best = (size, entries, values)
        if best is None:
            return None
        _, entries, values = best
        found: dict[Any, None] = {}
        for value in values:
            found.update(entries.get(value, {}))
        return list(found)

    def add(self, document: Mapping[str, Any]) -> None:
        """Index a document about to be inserted (before mongomock checks unique indexes), or
        one an upsert has just inserted."""
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


def _in_condition(document_value: Any, values: Any) -> bool:
    """mongomock's ``$in``, with its check for regexes among the values done at C speed: it
    runs for every candidate, so a ``$in`` over a batch of 500 IDs otherwise spends
    500 Python steps on each document it checks."""
    if isinstance(values, list | tuple) and not any(
        issubclass(kind, filtering._RE_TYPES) for kind in set(map(type, values))
    ):
        if document_value is filtering.NOTHING:
            return None in values
        return any(element in values for element in filtering._force_list(document_value))
    return bool(_MOCK_IN(document_value, values))


_MOCK_IN: Callable[[Any, Any], Any] = filtering._in_op
filtering._filterer_inst._operator_map["$in"] = _in_condition
filtering._filterer_inst._operator_map["$nin"] = lambda value, values: not _in_condition(value, values)


_INDEXES: weakref.WeakKeyDictionary[Any, FieldIndexes] = weakref.WeakKeyDictionary()
_SCAN: Callable[[MockCollection, Any], Iterable[Document]] = MockCollection._iter_documents


def indexes_of(store: Any) -> FieldIndexes:
    """The indexes of a mongomock collection store (a dropped collection gets a new store)."""
    indexes = _INDEXES.get(store)
    if indexes is None:
        indexes = _INDEXES[store] = FieldIndexes()
    return indexes


def iter_documents(collection: MockCollection, filter: Any) -> Iterable[Document]:
    """mongomock's one scanning primitive (find, update, delete, unique checks), narrowed to
    index candidates when the filter allows."""
    store = collection._store
    ids = indexes_of(store).candidates(store, filter)
    if ids is None or store.is_empty:  # is_empty also expires TTL documents
        return _SCAN(collection, filter)
    documents = store._documents
    found = [documents[_id] for _id in ids if _id in documents]
    return (document for document in found if filter_applies(filter, document))
