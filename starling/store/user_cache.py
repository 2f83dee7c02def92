"""Users as Redis caches them: one JSON blob per user (``Keys.user_profile``), the user
document without its password hash, counters included.

**Invalidation.** Counters live in the blob rather than in keys of their own: they change
on follows and posts, far less often than feeds are read, and one blob keeps a page's
authors one ``GET`` each. Every write to a user document (profile, password, counters)
deletes the blob afterwards (``forget``); the next read fills it from MongoDB. A read that
loaded MongoDB just before a write and stores after its delete leaves a stale blob for at
most ``user_cache_ttl_seconds``; that is the bound on how stale a profile shown in a feed
may be.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import orjson

from starling.store import read_through
from starling.store.degrade import best_effort
from starling.store.documents import UserDoc, as_utc
from starling.store.redis import DataPipeline
from starling.store.services import Services


def encode_user(doc: UserDoc) -> bytes:
    blob = {name: value for name, value in doc.items() if name != "password_hash"}
    blob["created_at"] = int(as_utc(doc["created_at"]).timestamp() * 1000)
    return orjson.dumps(blob)


def decode_user(blob: bytes) -> UserDoc:
    doc = orjson.loads(blob)
    doc["created_at"] = datetime.fromtimestamp(doc["created_at"] / 1000, tz=UTC)
    result: UserDoc = doc
    return result


def queue_read(services: Services, pipe: DataPipeline, user_ids: Iterable[int]) -> None:
    """Queue one ``GET`` per user; ``load`` turns the replies into documents."""
    read_through.queue_reads(pipe, [services.keys.user_profile(user_id) for user_id in user_ids])


async def load(
    services: Services, user_ids: Sequence[int], blobs: Sequence[bytes | None]
) -> list[UserDoc | None]:
    """The users, from their cached ``blobs`` (in step with ``user_ids``); the misses are
    read from MongoDB in one query and cached (``store.read_through``)."""

    async def from_mongo(missing: list[int]) -> list[UserDoc]:
        return await services.db.users.find({"_id": {"$in": missing}}, {"password_hash": 0}).to_list()

    return await read_through.fill(
        services.redis,
        user_ids,
        blobs,
        key=services.keys.user_profile,
        encode=encode_user,
        decode=decode_user,
        fetch=from_mongo,
        ttl_seconds=services.settings.user_cache_ttl_seconds,
        what="user",
    )


async def forget(services: Services, *user_ids: int) -> None:
    """Delete the users' cached blobs after a write to their documents (one ``DEL`` per
    user: on a cluster they live in different slots). With Redis unreachable a blob may
    outlive the write by ``user_cache_ttl_seconds`` (module doc)."""

    async def delete() -> None:
        async with services.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.delete(services.keys.user_profile(user_id))
            await pipe.execute()

    await best_effort("user cache invalidation", delete())
