"""What a user did to recent tweets (liked them, retweeted them), in Redis, so a feed page
answers ``viewerHasLiked`` and ``viewerHasRetweeted`` without MongoDB.

One ZSET per user (``Keys.viewer_engagement``): members ``l:<tweet id>`` (liked) and
``r:<tweet id>`` (retweeted, the original's ID), scored by the tweet's creation time
(milliseconds, from its snowflake), and the ``#since`` marker, scored by the oldest tweet
time the set answers for. A read is one ``ZMSCORE`` of the marker and the page's members.

- **Window.** The set holds the user's engagement with tweets younger than
  ``viewer_engagement_window_seconds`` when it was built; each write trims what fell out
  of the window and moves ``#since`` up. A tweet older than ``#since`` is answered by
  MongoDB (the callers' fallback); feeds are newest first, so a page rarely holds one.
- **Lost set** (no ``#since``: expired, flushed, never built): the reader asks MongoDB for
  the window and builds the set (``build``), merging entries writes added meanwhile.
- **Writes** (a like, an unlike, a retweet, taking one back) apply after their MongoDB
  step, whether the set is built or not (a rebuild keeps what they added). Known gaps: an
  unlike between a rebuild's MongoDB read and its store, or a write whose Redis step failed,
  leaves a wrong answer until the set expires (one window after its last write).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from starling.store.ids import id_timestamp_ms, lowest_id_at
from starling.store.redis import DataPipeline, run_script
from starling.store.services import Services

SINCE = "#since"


class Engagement(StrEnum):
    LIKED = "l"
    RETWEETED = "r"

    def member(self, tweet_id: int) -> str:
        return f"{self.value}:{tweet_id}"


# KEYS[1] the set. ARGV: member, score, '1' add / '0' remove, window start (ms), ttl.
_RECORD = """
if ARGV[3] == '1' then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
else redis.call('ZREM', KEYS[1], ARGV[1]) end
local since = redis.call('ZSCORE', KEYS[1], '#since')
if since and tonumber(since) < tonumber(ARGV[4]) then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[4], '#since')
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
return 1
"""

# KEYS[1] the set. ARGV: window start (ms), ttl, then (score, member) pairs. Entries a
# write added meanwhile are kept (NX).
_BUILD = """
for i = 3, #ARGV, 2 do redis.call('ZADD', KEYS[1], 'NX', ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[1], ARGV[1], '#since')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def window_start_ms(services: Services) -> int:
    return int(time.time() * 1000) - services.settings.viewer_engagement_window_seconds * 1000


def queue_read(services: Services, pipe: DataPipeline, user_id: int, tweet_ids: Sequence[int]) -> None:
    """Queue one ``ZMSCORE`` of the marker and both members of each tweet."""
    members = [kind.member(tweet_id) for kind in Engagement for tweet_id in tweet_ids]
    pipe.zmscore(services.keys.viewer_engagement(user_id), [SINCE, *members])


@dataclass(frozen=True, slots=True)
class Answers:
    """What the set answered: per kind, tweet ID -> did the user do it; tweets missing from
    both maps (older than the window, or all of them when the set is lost) ask MongoDB."""

    built: bool
    known: dict[Engagement, dict[int, bool]]


def parse_read(tweet_ids: Sequence[int], reply: Sequence[float | None]) -> Answers:
    since, *scores = reply
    if since is None:
        return Answers(built=False, known={kind: {} for kind in Engagement})
    covered = [id_timestamp_ms(tweet_id) >= since for tweet_id in tweet_ids]
    known: dict[Engagement, dict[int, bool]] = {}
    for index, kind in enumerate(Engagement):
        kind_scores = scores[index * len(tweet_ids) : (index + 1) * len(tweet_ids)]
        known[kind] = {
            tweet_id: score is not None
            for tweet_id, score, inside in zip(tweet_ids, kind_scores, covered, strict=True)
            if inside
        }
    return Answers(built=True, known=known)


async def record(services: Services, user_id: int, kind: Engagement, tweet_id: int, *, done: bool) -> None:
    """Mirror one write (``done``: liked/retweeted, else taken back) into the user's set."""
    args = [
        kind.member(tweet_id),
        id_timestamp_ms(tweet_id),
        "1" if done else "0",
        window_start_ms(services),
        services.settings.viewer_engagement_window_seconds,
    ]
    await run_script(services.redis, _RECORD, [services.keys.viewer_engagement(user_id)], args)


async def from_mongo(services: Services, user_id: int, since_ms: int) -> dict[Engagement, list[int]]:
    """The user's likes and live retweets of tweets created at or after ``since_ms``."""
    lowest = lowest_id_at(since_ms)
    db = services.db
    likes = await db.likes.find({"user_id": user_id, "tweet_id": {"$gte": lowest}}, {"tweet_id": 1}).to_list()
    retweets = await db.tweets.find(
        {"author_id": user_id, "retweet_of": {"$gte": lowest}, "retweet_key": {"$exists": True}},
        {"retweet_of": 1},
    ).to_list()
    return {
        Engagement.LIKED: [doc["tweet_id"] for doc in likes],
        Engagement.RETWEETED: [doc["retweet_of"] for doc in retweets],
    }


async def build(services: Services, user_id: int, since_ms: int, found: dict[Engagement, list[int]]) -> None:
    """Store what ``from_mongo`` found as the user's set, answering from ``since_ms``."""
    args: list[str | int] = [since_ms, services.settings.viewer_engagement_window_seconds]
    for kind, tweet_ids in found.items():
        for tweet_id in tweet_ids:
            args += [id_timestamp_ms(tweet_id), kind.member(tweet_id)]
    await run_script(services.redis, _BUILD, [services.keys.viewer_engagement(user_id)], args)
