"""Publishing live events: their encoding, and queuing them on a pipeline (the fan-out's
feed events only to followers who are present) or publishing one directly. Everything here
runs on the queue role's Redis (``store.keys``), whose pipelines these are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from starling.store.keys import Keys, presence_shard
from starling.store.redis import queue_script

Event = dict[str, Any]


def encode_event(event: Event) -> bytes:
    return orjson.dumps(event)


# What a feed event says happened to its tweet. A posted tweet's event carries no ``kind``
# (the shape it always had, so processes of either version understand each other).
DELETED = "deleted"


def tweet_event(tweet_id: int, *, deleted: bool = False) -> bytes:
    """The event of ``ev:feed:*`` and ``ev:author:*``: which tweet entered the feed, or,
    with ``deleted``, which tweet left it (``{"kind": "deleted"}``)."""
    return encode_event({"tweet_id": tweet_id, "kind": DELETED} if deleted else {"tweet_id": tweet_id})


def is_deletion(event: Event) -> bool:
    return event.get("kind") == DELETED


# KEYS[1] the feed presence ZSET; ARGV[1] the feed channels' prefix; ARGV[2] user IDs,
# comma-separated; ARGV[3..] the events. Publishes every event on the feed channel of each
# user whose presence has not expired by the Redis clock (the clock presence is written
# with, so the hosts' clocks never matter); returns how many users that was. The IDs travel
# as one argument because a Python client spends longer packing one argument per follower
# than Redis spends on this whole script; ZMSCORE reads them in chunks that keep ``unpack``
# within Lua's stack.
_PUBLISH_TO_PRESENT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local users = {}
for user in string.gmatch(ARGV[2], '%d+') do users[#users + 1] = user end
local reached = 0
for from = 1, #users, 1000 do
  local expiries = redis.call('ZMSCORE', KEYS[1], unpack(users, from, math.min(from + 999, #users)))
  for j = 1, #expiries do
    if expiries[j] and tonumber(expiries[j]) > now then
      local channel = ARGV[1] .. users[from + j - 1]
      for e = 3, #ARGV do redis.call('PUBLISH', channel, ARGV[e]) end
      reached = reached + 1
    end
  end
end
return reached
"""


def queue_live_feed_events(
    pipe: Pipeline,
    keys: Keys,
    user_ids: Sequence[int],
    tweet_ids: Sequence[int],
    *,
    deleted: bool = False,
) -> None:
    """Queue, on ``pipe``, "tweet entered your home feed" (with ``deleted``: "tweet left
    it") for those of ``user_ids`` who hold a home feed subscription (``Presence``): one
    script call per presence shard, each replying how many it reached, all in one round
    trip; offline followers cost no ``PUBLISH``."""
    if not user_ids or not tweet_ids:
        return
    by_shard: dict[int, list[str]] = {}
    for user_id in user_ids:
        by_shard.setdefault(presence_shard(user_id), []).append(str(user_id))
    events = [tweet_event(tweet_id, deleted=deleted) for tweet_id in tweet_ids]
    for shard, users in by_shard.items():
        args = [keys.feed_events_prefix(), ",".join(users), *events]
        queue_script(pipe, _PUBLISH_TO_PRESENT, [keys.feed_presence(shard)], args)


def queue_feed_events(pipe: Pipeline, keys: Keys, user_ids: Iterable[int], tweet_id: int) -> None:
    """Queue, on ``pipe``, "tweet entered your home feed" for each user, online or not (the
    fan-out asks ``queue_live_feed_events`` instead, which skips offline users)."""
    payload = tweet_event(tweet_id)
    for user_id in user_ids:
        pipe.publish(keys.feed_events(user_id), payload)


def queue_post_events(pipe: Pipeline, keys: Keys, author_id: int, tweet_id: int) -> None:
    """Queue, on ``pipe``, the author's side of a new tweet: it entered the author's own home
    feed, and it is announced on the author channel, where followers of a celebrity (whose
    tweets are not fanned out) listen."""
    payload = tweet_event(tweet_id)
    pipe.publish(keys.feed_events(author_id), payload)
    pipe.publish(keys.author_events(author_id), payload)


async def publish(redis: Redis, channel: str, event: Event) -> int:
    """Publish one event; returns how many hub connections (API processes) received it."""
    return int(await redis.publish(channel, encode_event(event)))
