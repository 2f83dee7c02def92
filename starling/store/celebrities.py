"""Celebrities: authors whose tweets readers merge at read time instead of receiving them.

**Who.** An author is a celebrity while ``users.followers_count > CELEBRITY_FOLLOWERS``;
MongoDB decides. The fan-out of a celebrity's tweet writes the author's own timeline and
author list (``Keys.author_tweets``) only, and each reader's ``homeFeed`` merges the lists
of the celebrities they follow (the feed read path).

**Redis state.**

- ``merged_authors``: the authors readers merge. An author joins it when their follower
  count crosses the threshold upwards (the follow that does it) and again at every fan-out
  of one of their tweets, so a crossing missed while Redis was down is caught before the
  first tweet that is not fanned out. An author leaves it only when, after crossing back
  down, the backfill job (``workers.fanout.backfill_author``) has copied their recent tweets
  into their followers' timelines: until then readers keep merging them, so the tweets they
  posted as a celebrity never drop out of a feed.
- ``celebrity_epoch``: bumped in the same script that changes ``merged_authors``.
- ``followed_celebrities(reader)``: whom the reader merges, i.e. the followees that are
  celebrities in MongoDB or members of ``merged_authors``, tagged with the epoch it was
  built at. Read in the feed's first pipeline; rebuilt when it is missing or older than
  the epoch (an author crossed the threshold); the reader's follow of a celebrity adds
  to it and an unfollow takes out of it, in place (``queue_followed_change``).

Losing any of it is safe: the reader's set is rebuilt from MongoDB and the epoch, and
a lost ``merged_authors`` goes with the timelines (a flush), which are rebuilt from MongoDB
with every non-celebrity's tweets in them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from starling.config import Settings
from starling.store.jobs import BACKFILL_AUTHOR
from starling.store.redis import DataPipeline, queue_script, replace_set
from starling.store.services import Services

# KEYS[1] merged_authors, KEYS[2] celebrity_epoch; ARGV[1] author; ARGV[2] "1" join / "0" leave.
# Membership and epoch change together, or a reader could cache a set the epoch calls fresh.
_SET_MERGED = """
local changed
if ARGV[2] == '1' then
  changed = redis.call('SADD', KEYS[1], ARGV[1])
else
  changed = redis.call('SREM', KEYS[1], ARGV[1])
end
if changed == 1 then redis.call('INCR', KEYS[2]) end
return changed
"""

_EPOCH_MARK = "v"


def is_celebrity(settings: Settings, followers_count: int) -> bool:
    return followers_count > settings.celebrity_followers


async def celebrities_among(services: Services, user_ids: Sequence[int]) -> set[int]:
    """Which of ``user_ids`` are celebrities now (one MongoDB query)."""
    if not user_ids:
        return set()
    docs = await services.db.users.find(
        {"_id": {"$in": list(user_ids)}, "followers_count": {"$gt": services.settings.celebrity_followers}},
        {"_id": 1},
    ).to_list()
    return {doc["_id"] for doc in docs}


# -- the author side -----------------------------------------------------------------------


def _set_merged(services: Services, pipe: DataPipeline, author_id: int, merged: bool) -> None:
    keys = services.keys
    queue_script(
        pipe, _SET_MERGED, [keys.merged_authors(), keys.celebrity_epoch()], [author_id, 1 if merged else 0]
    )


def queue_status_check(services: Services, pipe: DataPipeline, author_id: int, celebrity: bool) -> None:
    """Queue, on the fan-out's pipeline, making ``merged_authors`` agree with what the
    fan-out found: a celebrity joins it; for anyone else, whether they are still in it (a
    crossing down whose backfill has not run). Pass the reply to ``settle_status``."""
    if celebrity:
        _set_merged(services, pipe, author_id, merged=True)
    else:
        pipe.sismember(services.keys.merged_authors(), str(author_id))


async def settle_status(services: Services, author_id: int, celebrity: bool, reply: Any) -> None:
    if not celebrity and reply:
        await start_backfill(services, author_id)


async def note_followers_count(services: Services, author_id: int, count: int, delta: int) -> None:
    """After a follow (``delta`` 1) or unfollow (-1) left the author with ``count``
    followers: act on a threshold crossing. Up: readers merge the author from now on. Down:
    the backfill job hands the author's recent tweets to their followers' timelines first.

    Redis down: the crossing up is caught by the author's next fan-out, and a missed
    crossing down leaves readers merging a non-celebrity, which shows the same tweets."""
    settings = services.settings
    now = is_celebrity(settings, count)
    if now == is_celebrity(settings, count - delta):
        return
    if now:
        async with services.redis.pipeline(transaction=False) as pipe:
            _set_merged(services, pipe, author_id, merged=True)
            await pipe.execute()
    else:
        await start_backfill(services, author_id)


async def start_backfill(services: Services, author_id: int) -> None:
    await BACKFILL_AUTHOR.enqueue(services.queue, author_id)


async def stop_merging(services: Services, author_id: int) -> None:
    """The backfill is done: readers stop merging the author (their sets go stale)."""
    async with services.redis.pipeline(transaction=False) as pipe:
        _set_merged(services, pipe, author_id, merged=False)
        await pipe.execute()


# -- the reader side -----------------------------------------------------------------------


def queue_read_followed(services: Services, pipe: DataPipeline, reader_id: int) -> None:
    """Queue reading the reader's cached set and the epoch (two replies for ``decode_followed``)."""
    pipe.smembers(services.keys.followed_celebrities(reader_id))
    pipe.get(services.keys.celebrity_epoch())


def decode_followed(members: Iterable[bytes], epoch: bytes | None) -> list[int] | None:
    """The authors the reader merges, or None when the cached set must be rebuilt."""
    texts = {member.decode() for member in members}
    if f"{_EPOCH_MARK}{int(epoch or 0)}" not in texts:
        return None
    return sorted(int(text) for text in texts if not text.startswith(_EPOCH_MARK))


async def rebuild_followed(
    services: Services, reader_id: int, followees: Sequence[int], celebrities: set[int], epoch: bytes | None
) -> list[int]:
    """Rebuild the reader's set from their followees and which of them are celebrities in
    MongoDB; ``epoch`` must have been read before those, so that a crossing in between
    leaves the set stale rather than wrong."""
    merged = set(celebrities)
    if followees:
        members = [str(f) for f in followees]
        # redis-py's asyncio client reuses the sync client's annotation (a list or an
        # awaitable of one) for SMISMEMBER; on redis.asyncio.Redis it is always awaitable.
        flags = await services.redis.smismember(services.keys.merged_authors(), members)  # type: ignore[misc]
        merged |= {followee for followee, flag in zip(followees, flags, strict=True) if flag}
    key = services.keys.followed_celebrities(reader_id)
    members = [f"{_EPOCH_MARK}{int(epoch or 0)}", *(str(author) for author in merged)]
    await replace_set(services.redis, key, services.settings.celebrity_set_ttl_seconds, members)
    return sorted(merged)


# KEYS[1] a reader's followed_celebrities; ARGV[1] the author; ARGV[2] "1" add / "0" remove.
# Only an existing set is edited: a missing one is rebuilt whole on the next read, and
# creating it here would make a set with no epoch mark (stale at once) or with too few members.
_CHANGE_FOLLOWED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '1' then return redis.call('SADD', KEYS[1], ARGV[1]) end
return redis.call('SREM', KEYS[1], ARGV[1])
"""


def queue_followed_change(
    services: Services, pipe: DataPipeline, reader_id: int, author_id: int, *, add: bool
) -> None:
    """Queue adding ``author_id`` to the reader's cached set (they followed an author they
    merge) or taking it out (they unfollowed anyone), so the next read need not rebuild it."""
    queue_script(
        pipe, _CHANGE_FOLLOWED, [services.keys.followed_celebrities(reader_id)], [author_id, 1 if add else 0]
    )
