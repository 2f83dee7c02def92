"""Hashtag counts for ``trends``, kept in Redis as tweets are posted and deleted.

One ZSET per hour (``Keys.trend_bucket``: hashtag -> live original tweets of that hour
carrying it; the hour is the tweet's, from its snowflake, so a deletion decrements the
bucket its post incremented). A read sums the current hour's bucket and the
``TREND_HOURS - 1`` before it with one script (``ZUNIONSTORE``; every trend key carries
the ``{tr}`` tag, so it is one slot on a cluster) and returns the top ``limit`` with their
ties; the caller caches the answer briefly. No MongoDB on the request path: with Redis down
the read fails (``INTERNAL_SERVER_ERROR``), and after a Redis loss counts start again from
the posts that follow (the buckets are not rebuilt from MongoDB).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starling.store.ids import id_timestamp_ms
from starling.store.redis import run_script
from starling.store.services import Services

TREND_HOURS = 24
"""Hourly buckets a read sums: the current hour and the 23 before it."""
HOUR_MS = 3600 * 1000
# A bucket outlives its last read by an hour's margin.
BUCKET_TTL_SECONDS = (TREND_HOURS + 1) * 3600

# KEYS[1] a bucket; ARGV[1] +1 or -1, ARGV[2] ttl, ARGV[3..] hashtags. A decrement to zero
# removes the hashtag, so buckets hold only what is live.
_RECORD = """
for i = 3, #ARGV do
  local n = redis.call('ZINCRBY', KEYS[1], ARGV[1], ARGV[i])
  if tonumber(n) <= 0 then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS[1] the scratch sum, KEYS[2..] the buckets; ARGV[1] how many to return. Returns
# (hashtag, count) pairs of every hashtag counted at least as often as the ARGV[1]-th, so
# the caller can break ties by name.
_TOP = """
redis.call('ZUNIONSTORE', KEYS[1], #KEYS - 1, unpack(KEYS, 2))
local nth = redis.call('ZREVRANGE', KEYS[1], ARGV[1] - 1, ARGV[1] - 1, 'WITHSCORES')
local floor = nth[2] or '1'
if tonumber(floor) < 1 then floor = '1' end
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], floor, '+inf', 'WITHSCORES')
redis.call('DEL', KEYS[1])
return rows
"""


def _hour(unix_ms: int) -> int:
    return unix_ms // HOUR_MS


async def record(services: Services, tweet_id: int, hashtags: Sequence[str], delta: int) -> None:
    """Count a live original tweet's hashtags in (``delta`` 1) or out (-1) of its hour's
    bucket. A bucket already expired (an old tweet's deletion) is not recreated."""
    if not hashtags:
        return
    hour = _hour(id_timestamp_ms(tweet_id))
    if hour <= _hour(int(time.time() * 1000)) - TREND_HOURS:
        return
    key = services.keys.trend_bucket(hour)
    await run_script(services.redis, _RECORD, [key], [delta, BUCKET_TTL_SECONDS, *sorted(set(hashtags))])


async def top(services: Services, limit: int) -> list[tuple[str, int]]:
    """The top ``limit`` (hashtag, count) pairs, most counted first, ties by name."""
    now = _hour(int(time.time() * 1000))
    keys = services.keys
    buckets = [keys.trend_bucket(hour) for hour in range(now - TREND_HOURS + 1, now + 1)]
    raw = await run_script(services.redis, _TOP, [keys.trend_sum(), *buckets], [limit])
    rows = [
        (tag.decode() if isinstance(tag, bytes) else str(tag), int(float(count)))
        for tag, count in zip(raw[::2], raw[1::2], strict=True)
    ]
    rows.sort(key=lambda row: (-row[1], row[0]))
    return rows[:limit]
