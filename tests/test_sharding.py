"""MongoDB ready to shard: the declared shard keys fit every unique index, start-up survives
a database with the old indexes, and the reservations that carry the uniqueness no shard
key can are reclaimed after a crash."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from pymongo import ASCENDING, IndexModel
from starlette.applications import Starlette

from starling.config import Settings
from starling.loaders.engagement import retweet_key
from starling.store import reservations
from starling.store.ids import lowest_id_at
from starling.store.mongo import (
    HASHED,
    INDEXES,
    SHARD_KEYS,
    Collections,
    connect_mongo,
    ensure_indexes,
    unique_indexes,
)
from tests.api import PASSWORD, Api
from tests.test_retweets import RETWEET, UNDO, retweet

SIGN_UP = "mutation($h: String!, $p: String!) { signUp(handle: $h, password: $p) { token } }"
LONG_AGO_MS = 10 * reservations.ORPHAN_AFTER_MS


def test_every_collection_has_a_shard_key_and_its_indexes() -> None:
    assert set(SHARD_KEYS) == set(INDEXES) == set(Collections.__slots__)


@pytest.mark.parametrize("collection", sorted(SHARD_KEYS))
def test_each_unique_index_starts_with_the_whole_shard_key(collection: str) -> None:
    shard_key = SHARD_KEYS[collection]
    uniques = unique_indexes(collection)
    if HASHED in shard_key.values():
        # A hashed shard key can back no unique index but _id's.
        assert shard_key == {"_id": HASHED} and not uniques
        return
    assert all(direction == 1 for direction in shard_key.values())
    for fields in uniques:
        assert fields[: len(shard_key)] == list(shard_key), f"{collection}: {fields} vs {shard_key}"


def test_the_outbox_indexes_are_partial() -> None:
    outboxes = {
        model.document["name"]: model.document.get("partialFilterExpression")
        for model in INDEXES["tweets"]
        if "pending" in model.document["name"]
    }
    assert outboxes == {
        "fanout_pending_1__id_1": {"fanout_pending": True},
        "retweets_pending_1__id_1": {"retweets_pending": True},
    }


async def test_start_up_over_the_old_indexes_logs_how_to_drop_them(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    mongo = connect_mongo(settings)
    db = mongo.db
    # Indexes of the release before the shard keys.
    await db.users.create_indexes([IndexModel([("handle_lower", ASCENDING)], unique=True)])
    await db.likes.create_indexes(
        [IndexModel([("user_id", ASCENDING), ("tweet_id", ASCENDING)], unique=True)]
    )
    await db.tweets.create_indexes(
        [IndexModel([("fanout_pending", ASCENDING), ("_id", ASCENDING)], sparse=True)]
    )
    with caplog.at_level(logging.WARNING, logger="starling.store.mongo"):
        drops = await ensure_indexes(mongo)
    assert sorted(drops) == [
        'db.likes.dropIndex("user_id_1_tweet_id_1")',
        'db.tweets.dropIndex("fanout_pending_1__id_1")',
        'db.users.dropIndex("handle_lower_1")',
    ]
    assert all(command in caplog.text for command in drops)
    # Everything else declared was created; a second start-up says the same, no more.
    assert "tweet_id_1_user_id_1" in await db.likes.index_information()
    assert "retweets_pending_1__id_1" in await db.tweets.index_information()
    assert sorted(await ensure_indexes(mongo)) == sorted(drops)
    await mongo.close()


async def test_a_fresh_database_gets_exactly_the_declared_indexes(settings: Settings) -> None:
    mongo = connect_mongo(settings)
    assert await ensure_indexes(mongo) == []
    for name, models in INDEXES.items():
        existing = set(await mongo.db[name].index_information()) - {"_id_"}
        assert existing == {model.document["name"] for model in models}
    await mongo.close()


def _minted_ms_ago(ms: int) -> int:
    return lowest_id_at(int(time.time() * 1000) - ms)


async def test_an_orphaned_handle_reservation_is_taken_over(app: Starlette, api: Api) -> None:
    handles = app.state.services.db.handles
    # A sign-up that crashed between its reservation and its user, long ago.
    await handles.insert_one({"_id": "ghost", "user_id": _minted_ms_ago(LONG_AGO_MS)})
    account = await api.sign_up("Ghost")
    assert await handles.find_one({"_id": "ghost"}) == {"_id": "ghost", "user_id": int(account.id)}
    # The handle is now live: nobody else gets it.
    body = await api.raw(SIGN_UP, {"h": "GHOST", "p": PASSWORD})
    assert [error["extensions"]["code"] for error in body["errors"]] == ["CONFLICT"]


async def test_a_fresh_reservation_without_its_user_is_not_stolen(app: Starlette, api: Api) -> None:
    """Its sign-up may be between its two writes: the claimant is told to try again."""
    handles = app.state.services.db.handles
    await handles.insert_one({"_id": "busy", "user_id": _minted_ms_ago(0)})
    body = await api.raw(SIGN_UP, {"h": "busy", "p": PASSWORD})
    assert [error["extensions"]["code"] for error in body["errors"]] == ["CONFLICT"]
    assert "try again" in body["errors"][0]["message"]


async def test_retweet_reservations_left_by_crashes_are_reclaimed(
    app: Starlette, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = app.state.services.db.retweet_keys
    author, fan = await api.sign_up("author"), await api.sign_up("fan")
    first, second = await api.post(author, "first"), await api.post(author, "second")

    # A retweet that crashed between its reservation and its tweet.
    orphan_key = retweet_key(int(fan.id), int(first["id"]))
    await keys.insert_one({"_id": orphan_key, "tweet_id": _minted_ms_ago(LONG_AGO_MS)})
    made = await retweet(api, fan, first["id"])
    assert await keys.find_one({"_id": orphan_key}) == {"_id": orphan_key, "tweet_id": int(made["id"])}
    assert (await retweet(api, fan, first["id"]))["id"] == made["id"]  # idempotent again

    # An undo that crashed after taking the retweet back, before freeing its reservation.
    before = await retweet(api, fan, second["id"])

    async def crash(*args: object) -> None:
        return None

    monkeypatch.setattr(reservations, "release", crash)
    assert (await api.gql(UNDO, {"id": second["id"]}, fan.token))["undoRetweet"] is True
    monkeypatch.undo()
    stale_key = retweet_key(int(fan.id), int(second["id"]))
    assert (await keys.find_one({"_id": stale_key}))["tweet_id"] == int(before["id"])
    again = await retweet(api, fan, second["id"])
    assert again["id"] != before["id"]
    assert (await keys.find_one({"_id": stale_key}))["tweet_id"] == int(again["id"])

    # A normal undo frees the reservation.
    assert (await api.gql(UNDO, {"id": second["id"]}, fan.token))["undoRetweet"] is True
    assert await keys.find_one({"_id": stale_key}) is None


async def test_concurrent_claims_leave_one_holder(app: Starlette, api: Api) -> None:
    db = app.state.services.db
    answers = await asyncio.gather(*[api.raw(SIGN_UP, {"h": "Twin", "p": PASSWORD}) for _ in range(4)])
    assert sum("errors" not in answer for answer in answers) == 1
    assert {error["extensions"]["code"] for a in answers for error in a.get("errors", [])} == {"CONFLICT"}
    assert await db.users.count_documents({"handle_lower": "twin"}) == 1

    author, fan = await api.sign_up("author"), await api.sign_up("fan")
    original = (await api.post(author, "retweet me"))["id"]
    bodies = await asyncio.gather(*[api.raw(RETWEET, {"id": original}, fan.token) for _ in range(4)])
    made = {body["data"]["retweet"]["id"] for body in bodies if not body.get("errors")}
    assert len(made) == 1
    live = {"author_id": int(fan.id), "retweet_of": int(original), "retweet_key": {"$exists": True}}
    assert await db.tweets.count_documents(live) == 1
