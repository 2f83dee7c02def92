"""The one way to get MongoDB collections, and the indexes they need.

With ``MONGODB_URL`` set this is a real ``pymongo.AsyncMongoClient``; without it, the
embedded mongomock engine behind the same async API. Callers never learn which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel

from starling.config import Settings
from starling.store.documents import (
    CommentDoc,
    Document,
    FollowDoc,
    LikeDoc,
    NotificationDoc,
    RevokedTokenDoc,
    TweetDoc,
    UserDoc,
)
from starling.store.embedded.client import EmbeddedMongoClient
from starling.store.mongo_api import MongoCollection, MongoDatabase
from starling.store.monitoring import MongoCommandCounter

log = logging.getLogger(__name__)

INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel([("handle_lower", ASCENDING)], unique=True),
        IndexModel([("display_name_lower", ASCENDING), ("_id", ASCENDING)]),  # searchUsers: prefix, order
        # Password changes the revocation re-sync copies into Redis again (resolvers.tokens).
        IndexModel([("tokens_revoked_at", ASCENDING)], sparse=True),
    ],
    "follows": [
        IndexModel([("follower_id", ASCENDING), ("followee_id", ASCENDING)], unique=True),
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
        # One retweet per (author, original). Spelled as a sparse unique index on a key only
        # retweets carry, because a compound index over (author_id, retweet_of) would index
        # every plain tweet too, and partial indexes are beyond the embedded engine.
        IndexModel([("retweet_key", ASCENDING)], unique=True, sparse=True),
        # The retweets of a tweet: recounting them, taking them back when it is deleted.
        IndexModel([("retweet_of", ASCENDING)], sparse=True),
        # The fan-out outbox: tweets whose delivery has not been confirmed yet.
        IndexModel([("fanout_pending", ASCENDING), ("_id", ASCENDING)], sparse=True),
        # Deleted originals whose retweets have not all been retracted yet.
        IndexModel([("retweets_pending", ASCENDING), ("_id", ASCENDING)], sparse=True),
    ],
    "comments": [IndexModel([("tweet_id", ASCENDING), ("_id", ASCENDING)])],
    "likes": [
        IndexModel([("user_id", ASCENDING), ("tweet_id", ASCENDING)], unique=True),
        IndexModel([("tweet_id", ASCENDING), ("_id", ASCENDING)]),
    ],
    "notifications": [
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("user_id", ASCENDING), ("read", ASCENDING)]),  # the unread count
        # The collapse rule (store.notifications): one notification per dedupe key.
        IndexModel([("dedupe_key", ASCENDING)], unique=True),
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
    follows: MongoCollection[FollowDoc]
    tweets: MongoCollection[TweetDoc]
    comments: MongoCollection[CommentDoc]
    likes: MongoCollection[LikeDoc]
    notifications: MongoCollection[NotificationDoc]
    revoked_tokens: MongoCollection[RevokedTokenDoc]


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


async def ensure_indexes(mongo: Mongo) -> None:
    """Create the indexes of DESIGN.md §3; creating an existing index is a no-op."""
    for name, models in INDEXES.items():
        await mongo.db[name].create_indexes(models)
    log.debug("indexes ensured")
