"""Rate limits in Redis: GCRA (the generic cell rate algorithm), one script call per check.

A limit of ``amount`` per ``period_seconds`` lets a quiet subject spend ``amount`` at once,
then gives one unit back every ``period / amount`` seconds (no fixed window whose edge lets
twice the amount through). The whole state of a bucket is one number in one key: the
*theoretical arrival time* (TAT), the moment the bucket would be full again. A check reads
it, decides and writes it in one ``EVAL`` on one key, so it is atomic, costs one round trip,
and is slot-safe on a Redis Cluster whatever the key (``Keys.rate_limit`` still tags the
subject so that a subject's buckets share a slot). The script uses the Redis clock, so the
API processes' clocks never matter. A refused request consumes nothing.

Why not the ``limits`` package: its ``hit`` answers yes or no, and what the ``RateLimit-*``
headers need (remaining, reset) takes a second call that is not atomic with the first; it
also opens a connection pool of its own instead of using the process's counted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starling.store.redis import DataPipeline, DataRedis, queue_script

# KEYS[1] the bucket; ARGV[1] amount per period (also the burst); ARGV[2] period in seconds;
# ARGV[3] the cost of this request (at most the amount: the caller clamps it). Returns
# {allowed (1/0), remaining after this request, retry_after, reset_after}, the times in
# seconds as strings (Lua numbers would reach the client truncated to integers).
_GCRA = """
local amount = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local interval = period / amount
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allowed_at = new_tat - period
if allowed_at > now then
  local remaining = math.floor((period - (tat - now)) / interval)
  return {0, remaining, string.format('%.6f', allowed_at - now), string.format('%.6f', tat - now)}
end
local reset_after = new_tat - now
if reset_after > 0 then
  redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil(reset_after * 1000))
end
local remaining = math.floor((period - reset_after) / interval + 0.000001)
return {1, remaining, '0', string.format('%.6f', reset_after)}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """``amount`` units (requests, or query cost) per ``period_seconds``."""

    amount: int
    period_seconds: float


@dataclass(frozen=True, slots=True)
class Decision:
    """What one check of one bucket found."""

    allowed: bool
    limit: Limit
    remaining: int  # units left after this request
    retry_after: float  # seconds until this request would be allowed; 0 when it was
    reset_after: float  # seconds until the bucket is full again


async def charge_all(redis: DataRedis, charges: Sequence[tuple[str, Limit, int]]) -> list[Decision]:
    """Take, from each bucket ``key``, ``cost`` units if it holds them: one script call per
    bucket, all in one pipeline (one round trip). A cost above the whole amount is charged as
    the whole amount: it is allowed when the bucket is full."""
    async with redis.pipeline(transaction=False) as pipe:
        queue_charges(pipe, charges)
        replies = await pipe.execute()
    return decisions(charges, replies)


def queue_charges(pipe: DataPipeline, charges: Sequence[tuple[str, Limit, int]]) -> None:
    """Queue, on ``pipe``, the scripts of ``charge_all`` (one reply per charge)."""
    for key, limit, cost in charges:
        queue_script(
            pipe, _GCRA, [key], [limit.amount, limit.period_seconds, max(0, min(cost, limit.amount))]
        )


def decisions(charges: Sequence[tuple[str, Limit, int]], replies: Sequence[Any]) -> list[Decision]:
    """The decisions of the replies to ``queue_charges``."""
    return [_decision(reply, limit) for reply, (_, limit, _) in zip(replies, charges, strict=True)]


def _decision(reply: Sequence[Any], limit: Limit) -> Decision:
    allowed, remaining, retry_after, reset_after = reply
    return Decision(
        allowed=bool(int(allowed)),
        limit=limit,
        remaining=max(0, int(remaining)),
        retry_after=float(retry_after),
        reset_after=float(reset_after),
    )
