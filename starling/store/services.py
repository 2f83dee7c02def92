"""The long-lived connections a process holds, opened and closed together.

The API and the worker both build one ``Services``; in ``starling dev`` they share the
same instance, which is what lets the embedded (in-process) MongoDB engine serve both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from arq import ArqRedis
from redis.asyncio import Redis

from starling.config import Settings
from starling.store.ids import MAX_WORKER, SnowflakeGenerator
from starling.store.keys import Keys
from starling.store.mongo import Collections, Mongo, connect_mongo, ensure_indexes
from starling.store.redis import connect_redis
from starling.store.timelines import Timelines

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Services:
    settings: Settings
    mongo: Mongo
    redis: Redis
    queue: ArqRedis
    keys: Keys
    ids: SnowflakeGenerator
    timelines: Timelines

    @property
    def db(self) -> Collections:
        """The collections (``services.db.tweets``...)."""
        return self.mongo.collections

    @classmethod
    async def open(cls, settings: Settings, redis_url: str, mongo: Mongo | None = None) -> Services:
        mongo = mongo or connect_mongo(settings)
        await ensure_indexes(mongo)
        redis = connect_redis(redis_url)
        queue = ArqRedis(redis.connection_pool, default_queue_name=settings.queue_name)
        keys = Keys(settings.redis_key_prefix)
        worker_id = settings.worker_id
        if worker_id is None:
            # Unique among the last 1024 processes started against this Redis: enough for
            # snowflakes, with no per-process configuration.
            worker_id = (await redis.incr(keys.worker_sequence()) - 1) % (MAX_WORKER + 1)
        return cls(
            settings=settings,
            mongo=mongo,
            redis=redis,
            queue=queue,
            keys=keys,
            ids=SnowflakeGenerator(worker_id),
            timelines=Timelines(
                redis,
                timeline_max=settings.timeline_max,
                author_max=settings.author_tweets_max,
                ttl_seconds=settings.timeline_ttl_seconds,
            ),
        )

    async def close(self, *, close_mongo: bool = True) -> None:
        await self.redis.aclose()
        if close_mongo:
            await self.mongo.close()
