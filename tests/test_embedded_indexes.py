"""The embedded engine's index lookups: same answers as a full scan, without the scan."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from mongomock import filtering
from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import DuplicateKeyError

from starling.store.embedded import indexes
from starling.store.embedded.client import EmbeddedCollection, EmbeddedMongoClient, grouped_fields


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


async def test_an_upsert_uses_the_indexes_and_indexes_what_it_inserts(
    edges: EmbeddedCollection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await edges.insert_many([{"_id": n, "a": n % 100, "b": n, "hits": 0} for n in range(1, 2001)])
    assert len(await ids(edges, {"a": 7})) == 20  # builds the index on "a"
    checked = count_filter_checks(monkeypatch)
    update = {"$inc": {"hits": 1}, "$setOnInsert": {"tags": ["new"]}}
    await edges.update_one({"a": 7, "b": 7}, update, upsert=True)  # an update in place
    await edges.update_one({"a": 7, "b": 5000}, update, upsert=True)  # an insert
    assert checked.count < 100
    assert await ids(edges, {"a": 7, "hits": 1}) == {7, (await edges.find_one({"b": 5000}))["_id"]}
    assert len(await ids(edges, {"a": 7})) == 21


def test_in_and_nin_answer_as_mongomock_does() -> None:
    values: list[Any] = [[1, 2, "x"], [None, 3], (4,), [re.compile("^ab"), 7], []]
    documents: list[Any] = [1, 3, "x", "abc", None, filtering.NOTHING, [2, 9], [], 7.0, True]
    for search in values:
        for document in documents:
            expected = filtering._in_op(document, search)
            assert indexes._in_condition(document, search) == expected, (document, search)
            assert filter_check({"f": {"$nin": search}}, document) is not expected
    with pytest.raises(filtering.OperationFailure):
        indexes._in_condition(1, 5)


def filter_check(filter: dict[str, Any], value: Any) -> bool:
    return bool(indexes.filter_applies(filter, {} if value is filtering.NOTHING else {"f": value}))


async def test_a_match_then_group_reads_only_the_grouped_fields(edges: EmbeddedCollection) -> None:
    await edges.insert_many([{"_id": n, "a": n % 3, "b": n, "tags": ["t"] * 50} for n in range(1, 31)])
    pipeline: list[dict[str, Any]] = [
        {"$match": {"a": {"$in": [1, 2]}}},
        {"$group": {"_id": "$a", "n": {"$sum": 1}, "top": {"$max": "$b"}}},
    ]
    assert grouped_fields(pipeline[1:]) == {"_id": 1, "a": 1, "b": 1}
    rows = await (await edges.aggregate(pipeline)).to_list()
    assert {row["_id"]: (row["n"], row["top"]) for row in rows} == {1: (10, 28), 2: (10, 29)}
    whole = [{"$group": {"_id": "$a", "docs": {"$push": "$$ROOT"}}}]
    assert grouped_fields(whole) is None
    rows = await (await edges.aggregate([pipeline[0], *whole])).to_list()
    assert all(len(doc["tags"]) == 50 for row in rows for doc in row["docs"])
