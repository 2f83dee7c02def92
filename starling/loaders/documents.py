"""Loaders that turn IDs into documents, one batch per tick of the event loop."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from starling.loaders.measured import MeasuredLoader
from starling.store import read_through, user_cache
from starling.store.documents import CachedTweetDoc, Document, UserDoc, decode_tweet, encode_tweet
from starling.store.mongo_api import MongoCollection, Projection
from starling.store.redis import DataPipeline
from starling.store.services import Services
from starling.store.tweets import LIVE

D = TypeVar("D", bound=Mapping[str, Any])


def _in_key_order(keys: Sequence[int], docs: Iterable[D]) -> list[D | None]:
    by_id = {doc["_id"]: doc for doc in docs}
    return [by_id.get(key) for key in keys]


class ByIdLoader(MeasuredLoader[int, D | None]):
    """Documents of one collection by ``_id``: one ``$in`` query per batch."""

    def __init__(self, collection: MongoCollection[D], projection: Projection | None = None) -> None:
        super().__init__()
        self._collection = collection
        self._projection = projection

    async def load_batch(self, keys: Sequence[int]) -> list[D | None]:
        docs = await self._collection.find({"_id": {"$in": list(keys)}}, self._projection).to_list()
        return _in_key_order(keys, docs)


class UserLoader(MeasuredLoader[int, UserDoc | None]):
    """Users by ID, without their password hash: one Redis round trip of cached blobs,
    then one MongoDB ``$in`` for the misses, which are cached (``store.user_cache``)."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services

    async def load_batch(self, keys: Sequence[int]) -> list[UserDoc | None]:
        services = self._services
        blobs = await read_through.read_blobs(
            services.redis, [services.keys.user_profile(key) for key in keys]
        )
        return await user_cache.load(services, keys, blobs)


class TweetLoader(MeasuredLoader[int, CachedTweetDoc | None]):
    """Live (not deleted) tweets by ID: one Redis ``MGET`` of cached blobs, then one
    MongoDB ``$in`` for the misses, which are written back to the cache in one pipeline.
    Redis unreachable: MongoDB answers for all of them, as for the user loader."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services

    async def load_batch(self, keys: Sequence[int]) -> list[CachedTweetDoc | None]:
        services = self._services
        blobs = await read_through.read_blobs(services.redis, [services.keys.tweet(key) for key in keys])
        return await cached_tweets(services, keys, blobs)


def queue_tweet_reads(services: Services, pipe: DataPipeline, tweet_ids: Sequence[int]) -> None:
    """Queue one ``GET`` per cached tweet blob, for ``cached_tweets`` (a caller's pipeline)."""
    read_through.queue_reads(pipe, [services.keys.tweet(tweet_id) for tweet_id in tweet_ids])


async def cached_tweets(
    services: Services, keys: Sequence[int], blobs: Sequence[bytes | None]
) -> list[CachedTweetDoc | None]:
    """The live tweets from their cached ``blobs`` (in step with ``keys``); the misses are
    read from MongoDB in one ``$in`` and written back to the cache in one pipeline."""

    async def live(missing: list[int]) -> list[CachedTweetDoc]:
        docs = await services.db.tweets.find({"_id": {"$in": missing}, **LIVE}).to_list()
        return list(docs)

    return await read_through.fill(
        services.redis,
        keys,
        blobs,
        key=services.keys.tweet,
        encode=encode_tweet,
        decode=decode_tweet,
        fetch=live,
        ttl_seconds=services.settings.tweet_cache_ttl_seconds,
        what="tweet",
    )


class EdgeExistsLoader(MeasuredLoader[int, bool]):
    """Whether an edge document exists from a fixed node to each key, in one query.

    ``EdgeExistsLoader(follows, "follower_id", viewer, "followee_id")`` answers "does the
    viewer follow user X?" for every X on a page at once.
    """

    def __init__(
        self, collection: MongoCollection[Any], fixed_field: str, fixed_value: int, key_field: str
    ) -> None:
        super().__init__()
        self._collection = collection
        self._fixed: Document = {fixed_field: fixed_value}
        self._key_field = key_field

    async def load_batch(self, keys: Sequence[int]) -> list[bool]:
        return await self._exist(keys)

    async def _exist(self, values: Sequence[object]) -> list[bool]:
        """For each value, whether an edge holds it in ``key_field``."""
        docs = await self._collection.find(
            {**self._fixed, self._key_field: {"$in": list(values)}}, {self._key_field: 1}
        ).to_list()
        present = {doc[self._key_field] for doc in docs}
        return [value in present for value in values]
