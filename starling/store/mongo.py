"""The one way to get MongoDB collections, and the indexes they need.

With ``MONGODB_URL`` set this is a real ``pymongo.AsyncMongoClient``; without it, the
embedded mongomock engine behind the same async API. Callers never learn which.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.errors import OperationFailure

from starling.config import Settings
from starling.store.documents import (
    BookmarkDoc,
    CommentDoc,
    Document,
    FollowDoc,
    HandleDoc,
    LikeDoc,
    MarkerDoc,
    MediaDoc,
    NotificationDoc,
    NotificationGroupDoc,
    RelationDoc,
    RetweetKeyDoc,
    RevokedTokenDoc,
    TweetDoc,
    UserDoc,
)
from starling.store.embedded.client import EmbeddedMongoClient
from starling.store.mongo_api import MongoCollection, MongoDatabase
from starling.store.monitoring import MongoCommandCounter

log = logging.getLogger(__name__)

ShardKey = dict[str, int | str]
"""A shard key as ``sh.shardCollection`` takes it: field -> 1 (range) or "hashed"."""

HASHED = "hashed"

# One shard key per collection, for the day MongoDB is sharded (README "Sharding MongoDB").
# A sharded collection can only enforce a unique index that starts with its whole shard
# key (and none at all besides ``_id`` on a hashed key), so each key is chosen with the
# collection's uniqueness rules; a uniqueness no key can carry lives in a reservation
# collection keyed by the unique value (``store.reservations``). tests/test_sharding.py
# checks every unique index of INDEXES against these.
SHARD_KEYS: dict[str, ShardKey] = {
    # Users are read by _id (loaders, counters); hashed spreads new (time-ordered) IDs
    # evenly. Handle lookups go to every shard through the non-unique handle_lower index.
    "users": {"_id": HASHED},
    # A handle's reservation: _id = handle_lower. Sign-up is one targeted insert.
    "handles": {"_id": HASHED},
    # A followee's followers (the fan-out, followers pages) are one targeted range; the
    # unique edge (followee_id, follower_id) is the shard key itself. Following pages
    # (by follower_id) are scatter-gather.
    "follows": {"followee_id": 1, "follower_id": 1},
    # Author pages and the author's own retweet lookups are targeted; the _id suffix lets a
    # prolific author's tweets split into chunks. Loads by _id alone are scatter-gather
    # (the tweet cache in Redis serves most of them).
    "tweets": {"author_id": 1, "_id": 1},
    # A user's one live retweet of a tweet: _id = "author:original" (``retweet_key``).
    "retweet_keys": {"_id": HASHED},
    # A tweet's comments page by (tweet_id, _id): the shard key's own order.
    "comments": {"tweet_id": 1, "_id": 1},
    # A tweet's likes and a viewer's likes of one page's tweets are targeted by tweet_id.
    "likes": {"tweet_id": 1, "user_id": 1},
    # A recipient's notifications and their collapse rule (unique per recipient).
    "notifications": {"user_id": 1, "dedupe_key": 1},
    # A recipient's notification groups: one per (user, group key), read per user.
    "notification_groups": {"user_id": 1, "group_key": 1},
    # Read markers by _id = "user:timeline", read with the user's others (one $in).
    "markers": {"_id": HASHED},
    # Media items by _id (finalize, attach, the crons scan their outbox and expiry indexes).
    "media": {"_id": HASHED},
    # A viewer's bookmarks, blocks and mutes: one per (user, tweet or target).
    "bookmarks": {"user_id": 1, "tweet_id": 1},
    "blocks": {"user_id": 1, "target_id": 1},
    "mutes": {"user_id": 1, "target_id": 1},
    # A token check reads its revocation by _id (the token's jti).
    "revoked_tokens": {"_id": HASHED},
}

INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        # Not unique (a sharded collection cannot enforce it): the ``handles`` reservation
        # is the uniqueness; this serves log-in, mentions and searchUsers' prefix range.
        IndexModel([("handle_lower", ASCENDING)]),
        IndexModel([("display_name_lower", ASCENDING), ("_id", ASCENDING)]),  # searchUsers: prefix, order
        # Password changes the revocation re-sync copies into Redis again (resolvers.tokens).
        IndexModel([("tokens_revoked_at", ASCENDING)], sparse=True),
    ],
    "handles": [],
    "follows": [
        IndexModel([("followee_id", ASCENDING), ("follower_id", ASCENDING)], unique=True),
        IndexModel([("followee_id", ASCENDING), ("_id", ASCENDING)]),
        # The fan-out's walk: followers in shard order (store.follows).
        IndexModel([("followee_id", ASCENDING), ("follower_shard", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("follower_id", ASCENDING), ("_id", ASCENDING)]),
    ],
    "tweets": [
        IndexModel([("author_id", ASCENDING), ("_id", DESCENDING)]),
        # Live tweets of a set of authors, newest first: a rebuild's lost author lists.
        IndexModel([("author_id", ASCENDING), ("deleted", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("hashtags", ASCENDING)]),
        # `search`: one of the query's words picks the candidates, already newest first.
        IndexModel([("words", ASCENDING), ("_id", DESCENDING)]),
        # A viewer's live retweets (only they hold a ``retweet_key``); their uniqueness is
        # the ``retweet_keys`` reservation's.
        IndexModel(
            [("author_id", ASCENDING), ("retweet_key", ASCENDING)],
            partialFilterExpression={"retweet_key": {"$exists": True}},
        ),
        # The retweets of a tweet: recounting them, taking them back when it is deleted.
        IndexModel([("retweet_of", ASCENDING)], sparse=True),
        # A tweet's quotes, newest first, and their count (store.counters).
        IndexModel([("quote_of", ASCENDING), ("_id", DESCENDING)], sparse=True),
        # The outboxes, partial so they hold only the marked tweets (a sparse compound index
        # would hold every tweet: each has an _id): tweets whose delivery has not been
        # confirmed yet, and deleted originals whose retweets are not all retracted yet.
        IndexModel(
            [("fanout_pending", ASCENDING), ("_id", ASCENDING)],
            partialFilterExpression={"fanout_pending": True},
        ),
        IndexModel(
            [("retweets_pending", ASCENDING), ("_id", ASCENDING)],
            partialFilterExpression={"retweets_pending": True},
        ),
    ],
    "retweet_keys": [],
    "comments": [IndexModel([("tweet_id", ASCENDING), ("_id", ASCENDING)])],
    "likes": [
        IndexModel([("tweet_id", ASCENDING), ("user_id", ASCENDING)], unique=True),
        IndexModel([("tweet_id", ASCENDING), ("_id", ASCENDING)]),
        # A user's recent likes: rebuilding their engagement set (store.viewer_engagement).
        IndexModel([("user_id", ASCENDING), ("tweet_id", DESCENDING)]),
    ],
    "bookmarks": [
        IndexModel([("user_id", ASCENDING), ("tweet_id", ASCENDING)], unique=True),
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)]),  # the viewer's, newest first
    ],
    # Blocks and mutes (store.relations): one per (user, target); the user's list newest
    # first; who blocked a user (both directions of a block hide).
    **{
        name: [
            IndexModel([("user_id", ASCENDING), ("target_id", ASCENDING)], unique=True),
            IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)]),
            IndexModel([("target_id", ASCENDING), ("user_id", ASCENDING)]),
        ]
        for name in ("blocks", "mutes")
    },
    "notifications": [
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("user_id", ASCENDING), ("read", ASCENDING)]),  # the unread count
        # The collapse rule (store.notifications): one notification per recipient and key.
        IndexModel([("user_id", ASCENDING), ("dedupe_key", ASCENDING)], unique=True),
    ],
    "notification_groups": [
        IndexModel([("user_id", ASCENDING), ("group_key", ASCENDING)], unique=True),
        # groupedNotifications: a user's groups, most recently active first.
        IndexModel([("user_id", ASCENDING), ("latest_id", DESCENDING)]),
    ],
    "markers": [],
    "media": [
        IndexModel([("tweet_id", ASCENDING)], sparse=True),
        # The expiry cron: unattached uploads past their time (resolvers.media).
        IndexModel([("expires_at", ASCENDING)], sparse=True),
        # The deletion outbox: media of deleted tweets whose objects are not deleted yet.
        IndexModel([("delete_pending", ASCENDING), ("delete_marked_at", ASCENDING)], sparse=True),
    ],
    "revoked_tokens": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        # A user's unexpired revocations: what a token check copies into Redis after a loss.
        IndexModel([("user_id", ASCENDING), ("expires_at", ASCENDING)]),
    ],
}


@dataclass(frozen=True, slots=True)
class Collections:
    """The collections of DESIGN.md §3 and the documents each holds (real or embedded
    engine alike: ``store.mongo_api``)."""

    users: MongoCollection[UserDoc]
    handles: MongoCollection[HandleDoc]
    follows: MongoCollection[FollowDoc]
    tweets: MongoCollection[TweetDoc]
    retweet_keys: MongoCollection[RetweetKeyDoc]
    comments: MongoCollection[CommentDoc]
    likes: MongoCollection[LikeDoc]
    bookmarks: MongoCollection[BookmarkDoc]
    blocks: MongoCollection[RelationDoc]
    mutes: MongoCollection[RelationDoc]
    notifications: MongoCollection[NotificationDoc]
    notification_groups: MongoCollection[NotificationGroupDoc]
    markers: MongoCollection[MarkerDoc]
    revoked_tokens: MongoCollection[RevokedTokenDoc]
    media: MongoCollection[MediaDoc]


MongoClient = AsyncMongoClient[Document] | EmbeddedMongoClient


@dataclass(slots=True)
class Mongo:
    client: MongoClient
    db: MongoDatabase
    collections: Collections
    embedded: bool

    async def ping(self) -> None:
        await self.db.command("ping")

    async def close(self) -> None:
        await self.client.close()


def connect_mongo(settings: Settings) -> Mongo:
    listeners = [MongoCommandCounter()]
    if settings.mongodb_url:
        client: MongoClient = AsyncMongoClient(
            settings.mongodb_url,
            event_listeners=listeners,
            tz_aware=True,
            uuidRepresentation="standard",
        )
        embedded = False
    else:
        client = EmbeddedMongoClient(event_listeners=listeners, tz_aware=True)
        embedded = True
    db: MongoDatabase = client[settings.mongodb_db]
    collections = Collections(**{name: _collection(db, name) for name in Collections.__slots__})
    return Mongo(client=client, db=db, collections=collections, embedded=embedded)


def _collection(db: MongoDatabase, name: str) -> MongoCollection[Any]:
    # The one place a collection's document type is declared rather than checked: what a
    # collection holds is data, which no type checker sees (``Collections``).
    return db[name]


# The server's answers to an index whose name or key exists already with other options.
INDEX_OPTIONS_CONFLICT = 85
INDEX_KEY_SPECS_CONFLICT = 86


async def ensure_indexes(mongo: Mongo) -> list[str]:
    """Create the indexes of DESIGN.md §3 that are missing (creating an existing index is a
    no-op). An existing index that is no longer declared, or that conflicts with a declared
    one (same name or key, other options), is left in place: dropping an index on a live
    database is the operator's call, and an old index only costs writes. Its drop command
    is logged, and returned; start-up goes on."""
    drops: list[str] = []
    for name, models in INDEXES.items():
        collection = mongo.db[name]
        for model in models:
            try:
                await collection.create_indexes([model])
            except OperationFailure as exc:
                if exc.code not in (INDEX_OPTIONS_CONFLICT, INDEX_KEY_SPECS_CONFLICT):
                    raise
                existing = await collection.index_information()
                drops += [drop_command(name, old) for old in _conflicting(existing, model)]
        declared = {model.document["name"] for model in models} | {"_id_"}
        existing = await collection.index_information()
        drops += [drop_command(name, old) for old in existing if old not in declared]
    drops = list(dict.fromkeys(drops))
    for command in drops:
        log.warning("index not as declared (store.mongo.INDEXES), left in place; drop it with: %s", command)
    log.debug("indexes ensured")
    return drops


def _conflicting(existing: Mapping[str, Any], model: IndexModel) -> list[str]:
    """The existing indexes in the way of ``model``: its name, or its key under another name."""
    name, key = model.document["name"], list(model.document["key"].items())
    return [old for old, info in existing.items() if old == name or [tuple(k) for k in info["key"]] == key]


def drop_command(collection: str, index: str) -> str:
    """The mongosh command that drops one index."""
    return f"db.{collection}.dropIndex({json.dumps(index)})"


def unique_indexes(collection: str) -> list[list[str]]:
    """The fields of each unique index declared for ``collection`` (``_id`` always is)."""
    return [list(model.document["key"]) for model in INDEXES[collection] if model.document.get("unique")]
