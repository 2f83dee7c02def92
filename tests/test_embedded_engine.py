"""Unit tests for the embedded (mongomock-backed) engine behind the PyMongo async API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import (
    ASCENDING,
    DESCENDING,
    DeleteMany,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
)
from pymongo.errors import BulkWriteError, DuplicateKeyError, InvalidOperation, OperationFailure
from pymongo.monitoring import CommandListener
from pymongo.results import BulkWriteResult, InsertOneResult, UpdateResult

from starling.store.embedded import (
    EmbeddedCollection,
    EmbeddedCommandEvent,
    EmbeddedCursor,
    EmbeddedDatabase,
    EmbeddedMongoClient,
)


class RecordingListener(CommandListener):
    """Keeps every published (phase, event) pair."""

    def __init__(self) -> None:
        self.events: list[tuple[str, EmbeddedCommandEvent]] = []

    def started(self, event: Any) -> None:
        self.events.append(("started", event))

    def succeeded(self, event: Any) -> None:
        self.events.append(("succeeded", event))

    def failed(self, event: Any) -> None:
        self.events.append(("failed", event))

    def started_names(self) -> list[str]:
        return [event.command_name for phase, event in self.events if phase == "started"]

    def clear(self) -> None:
        self.events.clear()


@pytest.fixture
def listener() -> RecordingListener:
    return RecordingListener()


@pytest.fixture
async def client(listener: RecordingListener) -> AsyncIterator[EmbeddedMongoClient]:
    client = EmbeddedMongoClient(event_listeners=[listener])
    yield client
    await client.close()


@pytest.fixture
def db(client: EmbeddedMongoClient) -> EmbeddedDatabase:
    return client["starling_test"]


@pytest.fixture
async def numbers(db: EmbeddedDatabase, listener: RecordingListener) -> EmbeddedCollection:
    """Documents {_id: i, n: i % 3, tag: "even"/"odd"} for i in 1..10; events cleared."""
    await db.numbers.insert_many(
        [{"_id": i, "n": i % 3, "tag": "even" if i % 2 == 0 else "odd"} for i in range(1, 11)]
    )
    listener.clear()
    return db.numbers


# -- client and database ------------------------------------------------------------------------


async def test_ping_and_accessors(client: EmbeddedMongoClient) -> None:
    assert await client.admin.command("ping") == {"ok": 1.0}
    db = client.get_database("app")
    assert await db.command({"ping": 1}) == {"ok": 1.0}
    assert db.name == "app"
    assert client["app"].name == "app"
    assert isinstance(db.users, EmbeddedCollection)
    assert db["users"].name == db.get_collection("users").name == "users"
    assert db.users.full_name == "app.users"
    with pytest.raises(OperationFailure):
        await db.command("frobnicate")


async def test_list_collections_and_drops(client: EmbeddedMongoClient) -> None:
    db = client.app
    await db.a.insert_one({"x": 1})
    await db.b.insert_one({"x": 1})
    assert sorted(await db.list_collection_names()) == ["a", "b"]
    await db.a.drop()
    assert await db.list_collection_names() == ["b"]
    await client.drop_database("app")
    assert await db.list_collection_names() == []


async def test_clients_are_isolated() -> None:
    first, second = EmbeddedMongoClient(), EmbeddedMongoClient()
    await first.app.users.insert_one({"_id": 1})
    assert await second.app.users.find_one({"_id": 1}) is None


async def test_closed_client_refuses_operations(client: EmbeddedMongoClient) -> None:
    await client.close()
    with pytest.raises(InvalidOperation):
        await client.app.users.find_one({})


# -- CRUD ---------------------------------------------------------------------------------------


async def test_crud_round_trip(db: EmbeddedDatabase) -> None:
    doc: dict[str, Any] = {"handle": "ada", "followers": 0}
    result = await db.users.insert_one(doc)
    assert isinstance(result, InsertOneResult)
    assert doc["_id"] == result.inserted_id  # pymongo adds _id to the caller's document

    found = await db.users.find_one({"handle": "ada"})
    assert found == {"_id": result.inserted_id, "handle": "ada", "followers": 0}
    assert await db.users.find_one(result.inserted_id) == found  # find_one(<_id>)
    assert await db.users.find_one({"handle": "ada"}, {"_id": 0, "handle": 1}) == {"handle": "ada"}

    updated = await db.users.update_one({"handle": "ada"}, {"$inc": {"followers": 2}})
    assert isinstance(updated, UpdateResult)
    assert (updated.matched_count, updated.modified_count, updated.upserted_id) == (1, 1, None)
    assert not updated.did_upsert

    missed = await db.users.update_one({"handle": "bob"}, {"$set": {"x": 1}})
    assert (missed.matched_count, missed.modified_count) == (0, 0)

    upserted = await db.users.update_many({"handle": "bob"}, {"$set": {"x": 1}}, upsert=True)
    assert upserted.did_upsert
    assert upserted.upserted_id is not None
    assert upserted.matched_count == 0
    assert (await db.users.find_one({"_id": upserted.upserted_id}))["handle"] == "bob"

    many = await db.users.update_many({}, {"$set": {"active": True}})
    assert (many.matched_count, many.modified_count) == (2, 2)

    replaced = await db.users.replace_one({"handle": "bob"}, {"handle": "bobby"})
    assert replaced.modified_count == 1
    assert await db.users.find_one({"handle": "bobby"}, {"_id": 0}) == {"handle": "bobby"}

    assert await db.users.count_documents({}) == 2
    assert await db.users.count_documents({"active": True}) == 1
    assert await db.users.estimated_document_count() == 2
    assert sorted(await db.users.distinct("handle")) == ["ada", "bobby"]

    assert (await db.users.delete_one({"handle": "ada"})).deleted_count == 1
    assert (await db.users.delete_many({})).deleted_count == 1
    assert await db.users.count_documents({}) == 0


async def test_returned_and_inserted_documents_are_copies(db: EmbeddedDatabase) -> None:
    doc: dict[str, Any] = {"_id": 1, "tags": ["a"]}
    await db.posts.insert_one(doc)
    doc["tags"].append("mutated-after-insert")

    found = await db.posts.find_one({"_id": 1})
    assert found is not None
    found["tags"].append("mutated-after-read")
    listed = await db.posts.find({}).to_list()
    listed[0]["tags"].clear()

    assert await db.posts.find_one({"_id": 1}) == {"_id": 1, "tags": ["a"]}


async def test_in_query_on_int_ids(numbers: EmbeddedCollection) -> None:
    docs = await numbers.find({"_id": {"$in": [2, 5, 42, 7]}}, sort=[("_id", ASCENDING)]).to_list()
    assert [doc["_id"] for doc in docs] == [2, 5, 7]


# -- cursors ------------------------------------------------------------------------------------


async def test_find_sort_skip_limit_and_to_list_length(numbers: EmbeddedCollection) -> None:
    cursor = numbers.find({"tag": "even"}).sort("_id", DESCENDING).skip(1).limit(3)
    assert isinstance(cursor, EmbeddedCursor)
    assert [doc["_id"] for doc in await cursor.to_list()] == [8, 6, 4]

    kw = numbers.find({}, {"tag": 0}, sort={"n": 1, "_id": -1}, skip=2, limit=4)
    assert await kw.to_list() == [
        {"_id": 3, "n": 0},
        {"_id": 10, "n": 1},
        {"_id": 7, "n": 1},
        {"_id": 4, "n": 1},
    ]

    paged = numbers.find({}).sort([("_id", ASCENDING)])
    assert [doc["_id"] for doc in await paged.to_list(3)] == [1, 2, 3]
    assert [doc["_id"] for doc in await paged.to_list(3)] == [4, 5, 6]
    assert [doc["_id"] for doc in await paged.to_list()] == [7, 8, 9, 10]
    assert await paged.to_list() == []
    with pytest.raises(ValueError):
        await paged.to_list(0)


async def test_async_iteration_and_chaining_rules(numbers: EmbeddedCollection) -> None:
    cursor = numbers.find({"n": 0}).sort("_id").batch_size(2)
    assert [doc["_id"] async for doc in cursor] == [3, 6, 9]
    with pytest.raises(InvalidOperation):
        cursor.limit(1)  # like pymongo: no options after the query ran


async def test_find_one_honours_sort_and_skip(numbers: EmbeddedCollection) -> None:
    assert (await numbers.find_one({"tag": "odd"}, sort=[("_id", -1)]))["_id"] == 9
    assert (await numbers.find_one({"tag": "odd"}, sort=[("_id", 1)], skip=1))["_id"] == 3
    assert await numbers.find_one({"tag": "none"}) is None


async def test_aggregate_match_group_sort(numbers: EmbeddedCollection) -> None:
    cursor = await numbers.aggregate(
        [
            {"$match": {"_id": {"$lte": 9}}},
            {"$group": {"_id": "$n", "count": {"$sum": 1}, "ids": {"$push": "$_id"}}},
            {"$sort": {"_id": -1}},
        ]
    )
    assert await cursor.to_list(1) == [{"_id": 2, "count": 3, "ids": [2, 5, 8]}]
    rest = [doc async for doc in cursor]
    assert rest == [
        {"_id": 1, "count": 3, "ids": [1, 4, 7]},
        {"_id": 0, "count": 3, "ids": [3, 6, 9]},
    ]


# -- indexes and duplicate keys -----------------------------------------------------------------


async def test_unique_compound_index(db: EmbeddedDatabase) -> None:
    model = IndexModel([("follower", ASCENDING), ("followee", ASCENDING)], unique=True)
    assert await db.follows.create_indexes([model]) == ["follower_1_followee_1"]
    assert await db.follows.create_indexes([model]) == ["follower_1_followee_1"]  # idempotent
    assert await db.follows.create_index("followee") == "followee_1"
    info = await db.follows.index_information()
    assert info["follower_1_followee_1"]["unique"] is True
    assert info["follower_1_followee_1"]["key"] == [("follower", 1), ("followee", 1)]

    await db.follows.insert_one({"follower": 1, "followee": 2})
    await db.follows.insert_one({"follower": 2, "followee": 1})  # other order is fine
    with pytest.raises(DuplicateKeyError) as caught:
        await db.follows.insert_one({"follower": 1, "followee": 2})
    assert caught.value.code == 11000
    assert caught.value.details is not None
    assert caught.value.details["keyPattern"] == {"follower": 1, "followee": 1}
    assert await db.follows.count_documents({}) == 2

    with pytest.raises(DuplicateKeyError):
        await db.follows.update_one({"follower": 2}, {"$set": {"followee": 2, "follower": 1}})
    assert await db.follows.count_documents({"follower": 2, "followee": 1}) == 1  # rolled back


async def test_duplicate_id_and_unique_index_over_existing_duplicates(db: EmbeddedDatabase) -> None:
    await db.users.insert_one({"_id": 1, "email": "a@x"})
    with pytest.raises(DuplicateKeyError) as caught:
        await db.users.insert_one({"_id": 1, "email": "b@x"})
    assert caught.value.details["keyPattern"] == {"_id": 1}

    await db.users.insert_one({"_id": 2, "email": "a@x"})
    with pytest.raises(DuplicateKeyError):
        await db.users.create_index("email", unique=True)


async def test_duplicate_key_details_skip_sparse_indexes(db: EmbeddedDatabase) -> None:
    await db.tweets.create_indexes(
        [
            IndexModel("retweet_key", unique=True, sparse=True),
            IndexModel("slug", unique=True),
        ]
    )
    await db.tweets.insert_many([{"slug": "a"}, {"slug": "b"}])  # no retweet_key: not indexed
    await db.tweets.insert_many([{"slug": "c", "retweet_key": "k"}])
    with pytest.raises(DuplicateKeyError) as caught:
        await db.tweets.insert_one({"slug": "a"})
    assert caught.value.details["keyPattern"] == {"slug": 1}
    with pytest.raises(DuplicateKeyError) as caught:
        await db.tweets.insert_one({"slug": "d", "retweet_key": "k"})
    assert caught.value.details["keyPattern"] == {"retweet_key": 1}


async def test_insert_many_ordered_duplicate_raises_bulk_write_error(db: EmbeddedDatabase) -> None:
    docs = [{"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}]
    with pytest.raises(BulkWriteError) as caught:
        await db.items.insert_many(docs)
    details = caught.value.details
    assert details["nInserted"] == 2
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(2, 11000)]
    assert await db.items.distinct("_id") == [1, 2]  # stopped at the first error


async def test_insert_many_unordered_continues_past_duplicates(db: EmbeddedDatabase) -> None:
    docs: list[dict[str, Any]] = [{"_id": 1}, {"_id": 1}, {"x": 1}, {"_id": 2}]
    with pytest.raises(BulkWriteError) as caught:
        await db.items.insert_many(docs, ordered=False)
    assert caught.value.details["nInserted"] == 3
    assert [e["index"] for e in caught.value.details["writeErrors"]] == [1]
    assert "_id" in docs[2]
    assert await db.items.count_documents({}) == 3

    result = await db.items.insert_many([{"_id": 10}, {"_id": 11}])
    assert result.inserted_ids == [10, 11]


# -- bulk_write ---------------------------------------------------------------------------------


async def test_bulk_write_inc_with_upsert_counts(db: EmbeddedDatabase) -> None:
    await db.counters.insert_one({"_id": "a", "n": 1})
    result = await db.counters.bulk_write(
        [
            UpdateOne({"_id": "a"}, {"$inc": {"n": 1}}, upsert=True),
            UpdateOne({"_id": "b"}, {"$inc": {"n": 5}}, upsert=True),
            UpdateOne({"_id": "c"}, {"$inc": {"n": 1}}),
        ]
    )
    assert isinstance(result, BulkWriteResult)
    assert result.matched_count == 1
    assert result.modified_count == 1
    assert result.upserted_count == 1
    assert result.upserted_ids == {1: "b"}
    assert (result.inserted_count, result.deleted_count) == (0, 0)
    docs = await db.counters.find({}, sort=[("_id", 1)]).to_list()
    assert docs == [{"_id": "a", "n": 2}, {"_id": "b", "n": 5}]


async def test_bulk_write_mixed_requests(db: EmbeddedDatabase) -> None:
    result = await db.posts.bulk_write(
        [
            InsertOne({"_id": 1, "likes": 0}),
            InsertOne({"_id": 2, "likes": 0}),
            InsertOne({"_id": 3, "likes": 9}),
            UpdateMany({"likes": 0}, {"$inc": {"likes": 1}}),
            ReplaceOne({"_id": 3}, {"likes": 100}),
            ReplaceOne({"_id": 4}, {"likes": 4}, upsert=True),
            DeleteOne({"_id": 1}),
            DeleteMany({"likes": {"$gte": 100}}),
        ]
    )
    assert result.inserted_count == 3
    assert result.matched_count == 3
    assert result.modified_count == 3
    assert result.upserted_count == 1
    assert result.deleted_count == 2
    assert await db.posts.find({}, sort=[("_id", 1)]).to_list() == [
        {"_id": 2, "likes": 1},
        {"_id": 4, "likes": 4},
    ]


async def test_bulk_write_duplicate_and_invalid_requests(db: EmbeddedDatabase) -> None:
    with pytest.raises(BulkWriteError) as caught:
        await db.items.bulk_write([InsertOne({"_id": 1}), InsertOne({"_id": 1})])
    assert caught.value.details["writeErrors"][0]["code"] == 11000
    assert caught.value.details["nInserted"] == 1
    with pytest.raises(InvalidOperation):
        await db.items.bulk_write([])
    with pytest.raises(TypeError):
        await db.items.bulk_write([{"insertOne": {"_id": 2}}])  # type: ignore[list-item]


# -- find_one_and_* -----------------------------------------------------------------------------


async def test_find_one_and_update(numbers: EmbeddedCollection) -> None:
    after = await numbers.find_one_and_update(
        {"tag": "odd"},
        {"$set": {"tag": "claimed"}},
        projection={"_id": 0},
        sort=[("_id", -1)],
        return_document=ReturnDocument.AFTER,
    )
    assert after == {"n": 0, "tag": "claimed"}  # _id 9: highest odd id
    before = await numbers.find_one_and_update({"_id": 2}, {"$inc": {"n": 10}})
    assert before == {"_id": 2, "n": 2, "tag": "even"}
    assert (await numbers.find_one({"_id": 2}))["n"] == 12

    assert await numbers.find_one_and_update({"_id": 99}, {"$set": {"n": 1}}) is None
    created = await numbers.find_one_and_update(
        {"_id": 99}, {"$set": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert created == {"_id": 99, "n": 1}


async def test_find_one_and_delete_and_replace(numbers: EmbeddedCollection) -> None:
    deleted = await numbers.find_one_and_delete({"n": 1}, sort=[("_id", 1)])
    assert deleted == {"_id": 1, "n": 1, "tag": "odd"}
    assert await numbers.count_documents({"_id": 1}) == 0
    replaced = await numbers.find_one_and_replace({"_id": 2}, {"n": 7}, return_document=ReturnDocument.AFTER)
    assert replaced == {"_id": 2, "n": 7}


# -- command monitoring -------------------------------------------------------------------------


async def test_find_fires_one_event_on_first_fetch(
    numbers: EmbeddedCollection, listener: RecordingListener
) -> None:
    cursor = numbers.find({}).sort("_id")
    assert listener.events == []  # find() itself does not talk to the server
    await cursor.to_list(2)
    await cursor.to_list()
    assert [doc async for doc in cursor] == []
    assert listener.started_names() == ["find"]
    (phase, started), (phase2, succeeded) = listener.events
    assert (phase, phase2) == ("started", "succeeded")
    assert started is succeeded
    assert (started.database_name, started.collection_name) == ("starling_test", "numbers")


async def test_closed_cursor_never_queries(numbers: EmbeddedCollection, listener: RecordingListener) -> None:
    cursor = numbers.find({})
    await cursor.close()
    assert await cursor.to_list() == []
    assert listener.events == []


async def test_command_names(
    client: EmbeddedMongoClient, numbers: EmbeddedCollection, listener: RecordingListener
) -> None:
    await client.admin.command("ping")
    await numbers.find_one({})
    await numbers.count_documents({})
    await numbers.distinct("n")
    await numbers.aggregate([])
    await numbers.insert_one({"_id": 100})
    await numbers.insert_many([{"_id": 101}, {"_id": 102}])
    await numbers.update_one({"_id": 100}, {"$set": {"n": 1}})
    await numbers.replace_one({"_id": 100}, {"n": 2})
    await numbers.delete_many({"_id": {"$gte": 100}})
    await numbers.find_one_and_update({"_id": 1}, {"$set": {"n": 5}})
    await numbers.find_one_and_delete({"_id": 1})
    await numbers.create_index("n")
    assert listener.started_names() == [
        "ping",
        "find",
        "aggregate",
        "distinct",
        "aggregate",
        "insert",
        "insert",
        "update",
        "update",
        "delete",
        "findAndModify",
        "findAndModify",
        "createIndexes",
    ]
    request_ids = [event.request_id for phase, event in listener.events if phase == "started"]
    assert len(set(request_ids)) == len(request_ids)


async def test_bulk_write_events_follow_pymongo_batching(
    db: EmbeddedDatabase, listener: RecordingListener
) -> None:
    await db.c.bulk_write([UpdateOne({"_id": i}, {"$inc": {"n": 1}}, upsert=True) for i in range(3)])
    assert listener.started_names() == ["update"]

    listener.clear()
    mixed = [
        InsertOne({"_id": 10}),
        UpdateOne({"_id": 10}, {"$set": {"a": 1}}),
        InsertOne({"_id": 11}),
        DeleteOne({"_id": 0}),
    ]
    await db.c.bulk_write(mixed)
    assert listener.started_names() == ["insert", "update", "insert", "delete"]

    listener.clear()
    unordered = [
        InsertOne({"_id": 20}),
        UpdateOne({"_id": 20}, {"$set": {"a": 1}}),
        InsertOne({"_id": 21}),
        DeleteOne({"_id": 1}),
    ]
    await db.c.bulk_write(unordered, ordered=False)
    assert listener.started_names() == ["insert", "update", "delete"]


async def test_failures_and_write_errors_are_reported_like_pymongo(
    db: EmbeddedDatabase, listener: RecordingListener
) -> None:
    with pytest.raises(OperationFailure):
        await db.command("frobnicate")
    assert [phase for phase, _ in listener.events] == ["started", "failed"]

    await db.users.insert_one({"_id": 1})
    listener.clear()
    with pytest.raises(DuplicateKeyError):
        await db.users.insert_one({"_id": 1})
    # The server answers a write error with ok: 1, so pymongo publishes "succeeded".
    assert [phase for phase, _ in listener.events] == ["started", "succeeded"]


async def test_broken_listener_does_not_break_operations(listener: RecordingListener) -> None:
    class Broken(CommandListener):
        def started(self, event: Any) -> None:
            raise RuntimeError("boom")

        def succeeded(self, event: Any) -> None:
            raise RuntimeError("boom")

        def failed(self, event: Any) -> None:
            raise RuntimeError("boom")

    client = EmbeddedMongoClient(event_listeners=[Broken(), listener])
    assert await client.admin.command("ping") == {"ok": 1.0}
    assert listener.started_names() == ["ping"]


async def test_datetimes_round_trip_like_pymongo() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    naive = EmbeddedMongoClient()
    await naive.app.t.insert_one({"_id": 1, "at": moment})
    assert (await naive.app.t.find_one({"at": {"$lte": moment}}))["at"] == datetime(
        2024, 5, 1, 12, 0, 0, 123000
    )  # default tz_aware=False: naive UTC, millisecond precision

    aware = EmbeddedMongoClient(tz_aware=True)
    await aware.app.t.insert_one({"_id": 1, "at": moment})
    found = await aware.app.t.find_one_and_update(
        {"_id": 1}, {"$set": {"x": 1}}, return_document=ReturnDocument.AFTER
    )
    assert found["at"] == moment.replace(microsecond=123000)
    assert found["at"].tzinfo is not None
    [grouped] = await (
        await aware.app.t.aggregate([{"$group": {"_id": None, "at": {"$max": "$at"}}}])
    ).to_list()
    assert grouped["at"].tzinfo is not None


async def test_each_operation_suspends_like_a_network_call(
    numbers: EmbeddedCollection, listener: RecordingListener
) -> None:
    await asyncio.gather(numbers.find_one({"_id": 1}), numbers.find_one({"_id": 2}))
    assert [phase for phase, _ in listener.events] == [
        "started",
        "started",
        "succeeded",
        "succeeded",
    ]
