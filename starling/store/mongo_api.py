"""The part of the async MongoDB API Starling uses, as Protocols both engines satisfy.

Starling runs on PyMongo's ``AsyncMongoClient`` or on the embedded engine
(``store.embedded``), which mirrors it. The collection handles are typed with these
Protocols rather than with ``pymongo.AsyncCollection``: a Protocol is checked against both
engines structurally (``store.mongo`` hands each engine's database to ``MongoDatabase``, so
mypy proves that PyMongo's classes and the embedded ones have every method below with
compatible signatures), where typing the handles as PyMongo's class would need a cast that
hides every difference of the embedded engine. Each Protocol lists only what Starling
calls, so a call outside it (an option the embedded engine lacks) is a type error, and
growing it is a one-line change here plus, if need be, one in the embedded engine.

Collections are generic in their document type (``store.documents``); what a collection
holds is declared once, in ``store.mongo.Collections``.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, Protocol, TypeVar

from pymongo import IndexModel, UpdateOne
from pymongo.results import BulkWriteResult, DeleteResult, InsertOneResult, UpdateResult

from starling.store.documents import Document

D = TypeVar("D", bound=Mapping[str, Any])

Filter = Mapping[str, Any]
Projection = Mapping[str, Any]
Update = Mapping[str, Any] | Sequence[Mapping[str, Any]]  # update operators, or a pipeline
SortKeys = str | Sequence[tuple[str, int]]


class MongoCursor(Protocol[D]):
    """``find``'s result: options chain, the query runs on ``to_list``."""

    def sort(self, key_or_list: SortKeys, direction: int | None = None) -> MongoCursor[D]: ...

    def limit(self, limit: int) -> MongoCursor[D]: ...

    async def to_list(self, length: int | None = None) -> list[D]: ...


class MongoCommandCursor(Protocol[D]):
    """``aggregate``'s result."""

    async def to_list(self, length: int | None = None) -> list[D]: ...


class MongoCollection(Protocol[D]):
    def find(self, filter: Filter, projection: Projection | None = None) -> MongoCursor[D]: ...

    async def find_one(self, filter: Filter, projection: Projection | None = None) -> D | None: ...

    async def count_documents(self, filter: Filter) -> int: ...

    # Rows of an aggregation have the shape its pipeline gives them, not the collection's.
    async def aggregate(self, pipeline: Sequence[Mapping[str, Any]]) -> MongoCommandCursor[Any]: ...

    async def insert_one(self, document: D) -> InsertOneResult: ...

    async def update_one(self, filter: Filter, update: Update, upsert: bool = False) -> UpdateResult: ...

    async def update_many(self, filter: Filter, update: Update) -> UpdateResult: ...

    async def delete_one(self, filter: Filter) -> DeleteResult: ...

    async def delete_many(self, filter: Filter) -> DeleteResult: ...

    async def find_one_and_update(
        self,
        filter: Filter,
        update: Update,
        projection: Projection | None = None,
        *,
        upsert: bool = False,
        return_document: bool = False,
    ) -> D | None: ...

    async def bulk_write(self, requests: Sequence[UpdateOne], ordered: bool = True) -> BulkWriteResult: ...

    async def create_indexes(self, indexes: Sequence[IndexModel]) -> list[str]: ...

    async def index_information(self) -> MutableMapping[str, Any]: ...


class MongoDatabase(Protocol):
    def __getitem__(self, name: str) -> MongoCollection[Document]: ...

    async def command(self, command: str) -> Document: ...
