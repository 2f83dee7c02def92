"""The one read-through cache Starling keeps in Redis for documents (tweets, users): blobs
read by the caller's pipeline, the misses read from MongoDB in one query and written back
in one pipeline, best effort (a Redis failure only costs the next reader the same query)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from redis.exceptions import RedisError

from starling.store.degrade import best_effort
from starling.store.redis import DataPipeline, DataRedis, get_many

D = TypeVar("D", bound=Mapping[str, Any])


def queue_reads(pipe: DataPipeline, keys: Sequence[str]) -> None:
    """Queue one ``GET`` per blob (one round trip per node with the caller's other reads)."""
    for key in keys:
        pipe.get(key)


async def read_blobs(redis: DataRedis, keys: Sequence[str]) -> list[bytes | None]:
    """The blobs of ``keys`` in one round trip per node (``get_many``); all misses when
    Redis is unreachable, so that MongoDB answers (and ``fill``'s write-back fails quietly)."""
    try:
        return await get_many(redis, keys)
    except (RedisError, OSError):
        return [None] * len(keys)


async def fill(
    redis: DataRedis,
    ids: Sequence[int],
    blobs: Sequence[bytes | None],
    *,
    key: Callable[[int], str],
    encode: Callable[[D], bytes],
    decode: Callable[[bytes], D],
    fetch: Callable[[list[int]], Awaitable[list[D]]],
    ttl_seconds: int,
    what: str,
) -> list[D | None]:
    """The documents of ``ids`` from their ``blobs`` (in step with them); misses come from
    ``fetch`` (one query) and are cached. A fetched document is returned as the cache would
    give it back (encoded and decoded), so a hit and a miss read alike."""
    found = {entity_id: decode(blob) for entity_id, blob in zip(ids, blobs, strict=True) if blob}
    missing = [entity_id for entity_id in ids if entity_id not in found]
    if missing:
        docs = await fetch(missing)
        encoded = {doc["_id"]: encode(doc) for doc in docs}
        if encoded:
            await best_effort(f"{what} cache fill", _store(redis, encoded, key, ttl_seconds))
        found.update((entity_id, decode(blob)) for entity_id, blob in encoded.items())
    return [found.get(entity_id) for entity_id in ids]


async def _store(redis: DataRedis, encoded: dict[int, bytes], key: Callable[[int], str], ttl: int) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for entity_id, blob in encoded.items():
            pipe.set(key(entity_id), blob, ex=ttl)
        await pipe.execute()
