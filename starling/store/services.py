"""The long-lived connections a process holds, opened and closed together.

The API and the worker both build one ``Services``; in ``starling dev`` they share the
same instance, which is what lets the embedded (in-process) MongoDB engine serve both.
Each Redis role has its own connection pool (``store.redis``, ``store.keys``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from arq import ArqRedis
from redis.asyncio import Redis

from starling.config import ConfigError, Settings
from starling.lru import BoundedLRU
from starling.store.ids import MAX_WORKER, SnowflakeGenerator
from starling.store.keys import Keys
from starling.store.media import MediaStore, open_media_store
from starling.store.mongo import Collections, Mongo, connect_mongo, ensure_indexes
from starling.store.redis import (
    DataRedis,
    check_listpack_limit,
    connect_data_redis,
    connect_redis,
    is_cluster,
)
from starling.store.timelines import Timelines

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Services:
    settings: Settings
    mongo: Mongo
    redis: DataRedis
    """The data role: timelines, author lists, caches, counters."""
    queue_redis: Redis
    """The queue role: pub/sub, presence, locks, coordination."""
    queue: ArqRedis
    """The arq queue, on the queue role's pool."""
    cluster: bool
    keys: Keys
    ids: SnowflakeGenerator
    timelines: Timelines
    media: MediaStore
    """Object storage for media (``MEDIA_STORE``)."""
    followed_hints: BoundedLRU[int, tuple[int, ...]]
    """Reader -> the celebrities their last feed page merged (``followed_celebrity_hints``): the
    next page reads those authors' lists speculatively in its first round trip."""
    rebuild_slots: asyncio.Semaphore
    """Timeline rebuilds this process runs at once (``rebuild_concurrency_max``): after a
    Redis flush every reader rebuilds, and this bounds what they ask of MongoDB at a time."""

    @property
    def db(self) -> Collections:
        """The collections (``services.db.tweets``...)."""
        return self.mongo.collections

    @classmethod
    async def open(cls, settings: Settings, mongo: Mongo | None = None) -> Services:
        redis_url = settings.redis_url
        if redis_url is None:
            raise ConfigError("REDIS_URL is unset (`starling dev` starts a private Redis itself)")
        cluster = settings.redis_cluster
        if cluster is None:
            cluster = await is_cluster(redis_url)
        queue_url = settings.queue_redis_url
        if queue_url is None:
            if cluster:
                raise ConfigError(
                    "REDIS_URL is a Redis Cluster: set QUEUE_REDIS_URL to a standalone Redis for "
                    "the job queue, pub/sub and locks (arq and pub/sub need one server)"
                )
            queue_url = redis_url
        mongo = mongo or connect_mongo(settings)
        await ensure_indexes(mongo)
        redis = connect_data_redis(redis_url, cluster=cluster)
        await check_listpack_limit(redis, settings.timeline_max + 1)
        queue_redis = connect_redis(queue_url)
        queue = ArqRedis(queue_redis.connection_pool, default_queue_name=settings.queue_name)
        keys = Keys(settings.redis_key_prefix)
        worker_id = settings.worker_id
        if worker_id is None:
            # Unique among the last 1024 processes started against this Redis: enough for
            # snowflakes, with no per-process configuration.
            worker_id = (await queue_redis.incr(keys.worker_sequence()) - 1) % (MAX_WORKER + 1)
        return cls(
            settings=settings,
            mongo=mongo,
            redis=redis,
            queue_redis=queue_redis,
            queue=queue,
            cluster=cluster,
            keys=keys,
            ids=SnowflakeGenerator(worker_id),
            timelines=Timelines(
                redis,
                cluster=cluster,
                timeline_max=settings.timeline_max,
                author_max=settings.author_tweets_max,
                ttl_seconds=settings.timeline_ttl_seconds,
            ),
            media=open_media_store(settings),
            followed_hints=BoundedLRU(
                settings.followed_celebrity_hints, settings.followed_celebrity_hints, 1
            ),
            rebuild_slots=asyncio.Semaphore(settings.rebuild_concurrency_max),
        )

    async def close(self, *, close_mongo: bool = True) -> None:
        await self.redis.aclose()
        await self.queue_redis.aclose()  # the queue's pool too
        await self.media.close()
        if close_mongo:
            await self.mongo.close()
