"""The embedded engine's index lookups: same answers as a full scan, without the scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import DuplicateKeyError

from starling.store.embedded import indexes
from starling.store.embedded.client import EmbeddedCollection, EmbeddedMongoClient


@pytest.fixture
async def edges() -> EmbeddedCollection:
    collection = EmbeddedMongoClient(tz_aware=True)["db"]["edges"]
    await collection.create_indexes(
        [
            IndexModel([("a", ASCENDING), ("b", ASCENDING)], unique=True),
            IndexModel([("tags", ASCENDING)]),
        ]
    )
    return collection


async def ids(collection: EmbeddedCollection, filter: dict[str, Any]) -> set[Any]:
    return {doc["_id"] for doc in await collection.find(filter).to_list()}


@dataclass
class FilterChecks:
    count: int = 0


def count_filter_checks(monkeypatch: pytest.MonkeyPatch) -> FilterChecks:
    """From now on, count the documents the engine reads and checks against a filter."""
    checks = FilterChecks()
    real = indexes.filter_applies

    def counting(filter: Any, document: Any) -> bool:
        checks.count += 1
        return real(filter, document)

    monkeypatch.setattr(indexes, "filter_applies", counting)
    return checks


async def test_lookups_answer_like_a_scan(edges: EmbeddedCollection) -> None:
    await edges.insert_many(
        [{"_id": n, "a": n % 7, "b": n, "tags": [f"t{n % 3}", "all"]} for n in range(1, 200)]
        + [{"_id": 500, "b": 500, "tags": []}]  # no "a": matches {"a": None}
    )
    filters: list[dict[str, Any]] = [
        {"a": 3},
        {"a": {"$in": [1, 2, 99]}},
        {"a": 3, "b": {"$gt": 100}},
        {"a": None},
        {"tags": "t1"},
        {"tags": {"$in": ["t2", "none"]}},
        {"_id": {"$in": [5, 6, 999]}},
        {"_id": 7, "a": 0},
    ]
    for filter in filters:
        expected = {doc["_id"] for doc in edges._mongomock.find() if indexes.filter_applies(filter, doc)}
        assert await ids(edges, filter) == expected, filter


async def test_a_lookup_reads_only_its_candidates(
    edges: EmbeddedCollection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await edges.insert_many([{"_id": n, "a": n % 100, "b": n} for n in range(1, 2001)])
    checked = count_filter_checks(monkeypatch)
    assert len(await ids(edges, {"a": 42})) == 20
    assert await ids(edges, {"_id": {"$in": [1, 2]}}) == {1, 2}
    assert checked.count == 22


async def test_unique_indexes_still_hold(edges: EmbeddedCollection) -> None:
    await edges.insert_many([{"_id": n, "a": 1, "b": n} for n in range(1, 50)])
    with pytest.raises(DuplicateKeyError):
        await edges.insert_one({"_id": 100, "a": 1, "b": 7})
    with pytest.raises(DuplicateKeyError):
        await edges.update_one({"_id": 2}, {"$set": {"b": 3}})
    assert await ids(edges, {"a": 1, "b": 7}) == {7}


async def test_updates_deletes_and_upserts_are_seen(edges: EmbeddedCollection) -> None:
    await edges.insert_many([{"_id": n, "a": 1, "b": n} for n in range(1, 10)])
    assert await ids(edges, {"a": 1}) == set(range(1, 10))  # builds the index
    await edges.update_one({"_id": 3}, {"$set": {"a": 2}})
    await edges.update_many({"b": {"$gt": 7}}, {"$set": {"a": 2}})
    await edges.delete_one({"_id": 4})
    await edges.bulk_write([UpdateOne({"a": 5, "b": 5}, {"$set": {"tags": ["x"]}}, upsert=True)])
    assert await ids(edges, {"a": 1}) == {1, 2, 5, 6, 7}
    assert await ids(edges, {"a": 2}) == {3, 8, 9}
    assert len(await ids(edges, {"a": 5})) == 1
    assert len(await ids(edges, {"tags": "x"})) == 1
    await edges.insert_one({"_id": 4, "a": 3, "b": 4})  # a deleted ID comes back
    assert await ids(edges, {"a": 3}) == {4}
    assert 4 not in await ids(edges, {"a": 1})
    await edges.drop()
    assert await ids(edges, {"a": 1}) == set()


async def test_a_leading_match_uses_the_indexes(
    edges: EmbeddedCollection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await edges.insert_many([{"_id": n, "a": n % 10, "b": n} for n in range(1, 1001)])
    checked = count_filter_checks(monkeypatch)
    cursor = await edges.aggregate(
        [{"$match": {"a": {"$in": [1, 2]}}}, {"$group": {"_id": "$a", "n": {"$sum": 1}}}]
    )
    assert {row["_id"]: row["n"] for row in await cursor.to_list()} == {1: 100, 2: 100}
    assert checked.count == 200


async def test_an_update_uses_the_indexes_of_fields_it_does_not_change(
    edges: EmbeddedCollection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await edges.insert_many([{"_id": n, "a": n % 100, "b": n, "hits": 0} for n in range(1, 2001)])
    checked = count_filter_checks(monkeypatch)
    # Matching by "a" and the unique (a, b) check afterwards: both through the index.
    await edges.update_one({"a": 7, "b": 7}, {"$inc": {"hits": 1}})
    assert checked.count < 100
    assert await ids(edges, {"a": 7, "hits": 1}) == {7}
