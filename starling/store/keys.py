"""Every Redis key Starling uses, in one place, with its role and its slot rule.

All keys start with ``Settings.redis_key_prefix`` so Starling can share a Redis database.
Nothing here is the source of truth: each key can be lost and is rebuilt from MongoDB.

**Roles.** Keys live on one of two Redis roles (``store.redis``): *data* (``REDIS_URL``,
standalone or Redis Cluster) holds timelines, author lists, caches and counters; *queue*
(``QUEUE_REDIS_URL``, always standalone) holds the arq queue, pub/sub channels, presence,
global locks and coordination. Each builder's docstring starts with its role.

**Slot rule.** On a cluster every command, script or transaction must touch keys of one
hash slot. A data key therefore carries a hash tag (the part in ``{}``) naming a *shard*
of the thing it belongs to, and keys used together share it:

- ``{u<shard>}``: everything of a user (home timeline and its rebuild lock, author list,
  followed-celebrities set), ``shard = user_shard(user_id)``, one of ``USER_SHARDS``.
  A fan-out batch groups followers by shard and writes a shard's timelines with one
  script, so the batch costs a command per shard touched, and reading followers in
  shard order (``follows.follower_shard``) makes those groups large;
- ``{t<shard>}``: a tweet's counters and the shard's delta hash, batch and flush state,
  ``shard = tweet_shard(tweet_id)``, one of ``TWEET_SHARDS``: counter writes spread over
  them, so no single hot key takes every like;
- ``{cel}``: the global celebrity set and its epoch, changed together;
- ``{tr}``: the hourly hashtag buckets of trends and their cached answer, summed together;
- single-key data (tweet cache, revocations) needs no tag.

Queue keys need no tag: that role is one standalone server. The shard counts are part of
the key layout (changing one re-keys every timeline), hence constants, not settings.

**Encodings.** Sorted sets of tweet IDs hold every member with score 0 and the ID's
complement written as 8 big-endian bytes (``store.ids.to_member``): lexicographic order is
then newest first, which keeps full 63-bit precision (a float score would not), lets
``ZRANGEBYLEX`` page with an exclusive ``(cursor`` bound, and puts a new tweet at the head
of the set, where a listpack insert finds its place at once. Up to
``zset-max-listpack-entries`` members Redis keeps such a set as one listpack: an 800-entry
timeline is ~10 KB where 19-digit decimals in a skiplist took ~103 KB (bench/encodings.py).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

# Highest possible member, last in every list (``store.ids.to_member`` of 0): marks a home
# timeline as built (an empty-but-built timeline still exists) and never reaches a client.
TIMELINE_SENTINEL = b"\xff" * 8

ZSET_LISTPACK_ENTRIES = 1024
"""What Starling's own Redis servers set ``zset-max-listpack-entries`` to: above
``timeline_max`` + 1, so a full timeline stays a compact listpack (README: encodings)."""

USER_SHARDS = 256
"""Shards of user-keyed data: how many hash slots a cluster spreads timelines over. Few
enough that a fan-out batch of a large audience holds many followers per shard (one script
each: bench/results/topologies.md measured 1,024 at 0.64 of standalone, 256 at 0.83), many
enough to spread over a few hundred nodes."""
TWEET_SHARDS = 256
"""Shards of tweet counters: the flush drains this many delta hashes."""
PRESENCE_SHARDS = 16
"""Pieces of the online-user set (queue role), so no one key takes every renewal."""


def _shard(entity_id: int, shards: int) -> int:
    # A hash, not the ID's low bits: snowflakes made in one millisecond share those.
    return zlib.crc32(entity_id.to_bytes(8, "big")) % shards


def user_shard(user_id: int) -> int:
    return _shard(user_id, USER_SHARDS)


def tweet_shard(tweet_id: int) -> int:
    return _shard(tweet_id, TWEET_SHARDS)


def presence_shard(user_id: int) -> int:
    return _shard(user_id, PRESENCE_SHARDS)


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    # -- data role: users' timelines ({u<shard>}) -----------------------------------------

    def _user(self, user_id: int) -> str:
        return f"{self.prefix}{{u{user_shard(user_id)}}}"

    def home_timeline(self, user_id: int) -> str:
        """Data. ZSET (lex) of tweet IDs in the user's home feed, capped at TIMELINE_MAX."""
        # "ht", not the "tl" of the oldest-first encoding: such lists are never read back.
        return f"{self._user(user_id)}:ht:{user_id}"

    @staticmethod
    def rebuild_lock(key: str) -> str:
        """Data, ``key``'s slot. STRING held while one process rebuilds ``key`` (a home
        timeline or an author's list) from MongoDB; while it is held, fan-out writes into
        ``key`` even though it is not built yet, so nothing posted during the rebuild is
        missed."""
        return f"{key}:rebuild"

    def user_profile(self, user_id: int) -> str:
        """Data. STRING: the user document without its password hash, as JSON
        (``store.user_cache``), counters included; deleted by every write to the user."""
        return f"{self._user(user_id)}:pf:{user_id}"

    def viewer_engagement(self, user_id: int) -> str:
        """Data. ZSET of what the user did to recent tweets (``store.viewer_engagement``):
        ``l:<tweet>`` liked, ``r:<tweet>`` retweeted, scored by the tweet's time, and the
        ``#since`` marker scored by the oldest tweet time the set answers for."""
        return f"{self._user(user_id)}:ve:{user_id}"

    def author_tweets(self, user_id: int) -> str:
        """Data. ZSET (lex) of the author's own recent tweet IDs, capped at
        AUTHOR_TWEETS_MAX, with the same built-marker sentinel as home timelines; what
        readers merge for celebrities."""
        return f"{self._user(user_id)}:at:{user_id}"  # "ut" before: as ``home_timeline``

    def followed_celebrities(self, user_id: int) -> str:
        """Data, the user's slot. SET of the authors the user follows whose tweets are
        merged at read time, plus a member ``v{epoch}`` saying which ``celebrity_epoch`` it
        was built at (stale otherwise)."""
        return f"{self._user(user_id)}:cel:{user_id}"

    def blocked(self, user_id: int) -> str:
        """Data, the user's slot. SET of the users the user blocked, plus the built marker
        ``store.relations.BUILT`` (a set without it is rebuilt from MongoDB)."""
        return f"{self._user(user_id)}:blk:{user_id}"

    def blocked_by(self, user_id: int) -> str:
        """Data, the user's slot. SET of the users who blocked the user (a block hides both
        ways), plus the built marker."""
        return f"{self._user(user_id)}:blkby:{user_id}"

    def muted(self, user_id: int) -> str:
        """Data, the user's slot. SET of the users the user muted, plus the built marker."""
        return f"{self._user(user_id)}:mut:{user_id}"

    # -- data role: celebrities ({cel}) ----------------------------------------------------

    def merged_authors(self) -> str:
        """Data, ``{cel}``. SET of author IDs whose tweets readers merge at read time
        (celebrities, and former celebrities until their recent tweets are copied into
        their followers' timelines). No TTL."""
        return f"{self.prefix}{{cel}}:authors"

    def celebrity_epoch(self) -> str:
        """Data, ``{cel}``. INTEGER bumped whenever ``merged_authors`` changes; invalidates
        every ``followed_celebrities`` set at once. No TTL."""
        return f"{self.prefix}{{cel}}:epoch"

    # -- data role: single keys ------------------------------------------------------------

    def tweet(self, tweet_id: int) -> str:
        """Data. STRING: the tweet document as JSON, the hydration cache."""
        return f"{self.prefix}tw:{tweet_id}"

    def trends(self) -> str:
        """Data. STRING: the top ``trends`` as JSON, cached for TRENDS_CACHE_SECONDS."""
        return f"{self.prefix}{{tr}}:top"

    def trend_bucket(self, hour: int) -> str:
        """Data. ZSET hashtag -> live original tweets of that hour (unix hours) carrying it
        (``store.trends``); ``{tr}``: a read sums the buckets in one slot."""
        return f"{self.prefix}{{tr}}:h:{hour}"

    def trend_sum(self) -> str:
        """Data. ZSET: a read's scratch sum of the buckets, deleted by the same script."""
        return f"{self.prefix}{{tr}}:sum"

    def auth_state(self, user_id: int) -> str:
        """Data, one key. HASH of what token checks need to know about the user's tokens
        (``store.auth_state``): ``loaded`` (copied from MongoDB, so a missing field means
        "ask MongoDB"), ``gen`` (tokens of an older generation are void: a password change)
        and ``r:{token id}`` -> expiry for each revoked token. Expires a token lifetime after
        its last write."""
        return f"{self.prefix}auth:{{{user_id}}}"

    def rate_limit(self, bucket: str, subject: str) -> str:
        """Data. STRING: the GCRA state (``store.ratelimit``) of one rate-limit bucket of one
        subject (``u:{user}``, ``a:{address}``, ``h:{handle}``); the subject is the hash tag, so
        one subject's buckets share a Redis Cluster slot. Expires when the bucket is full."""
        return f"{self.prefix}rl:{bucket}:{{{subject}}}"

    # -- data role: engagement counters ({t<shard>}, store.counters) ---------------------

    def _tweets(self, shard: int) -> str:
        return f"{self.prefix}{{t{shard}}}"

    def counts(self, tweet_id: int) -> str:
        """Data. HASH like/comment/retweet: the tweet's current counts as readers see them."""
        return f"{self._tweets(tweet_shard(tweet_id))}:ct:{tweet_id}"

    def count_writers(self, tweet_id: int) -> str:
        """Data, the tweet's slot. HASH busy/gen: count changes of the tweet in flight, and
        a token each one renews."""
        return f"{self.counts(tweet_id)}:w"

    def count_deltas(self, shard: int) -> str:
        """Data, the shard's slot. HASH "{tweet id}:{kind}" -> delta that MongoDB's stored
        count does not have yet, for the shard's tweets."""
        return f"{self._tweets(shard)}:ct:deltas"

    def count_batch(self, shard: int) -> str:
        """Data, the shard's slot. HASH: the deltas a flush is applying (``count_deltas``
        renamed) and its batch ID."""
        return f"{self._tweets(shard)}:ct:batch"

    def count_flush_state(self, shard: int) -> str:
        """Data, the shard's slot. HASH busy/gen: whether a flush is applying the shard's
        batch; the last batch applied."""
        return f"{self._tweets(shard)}:ct:flush"

    # -- queue role: locks and coordination -------------------------------------------------

    def count_flush_lock(self) -> str:
        """Queue. STRING lock: one counter flush at a time."""
        return f"{self.prefix}ct:flush:lock"

    def user_recount_cursor(self) -> str:
        """Queue. STRING: the last user ID the user counter repair recounted
        (``workers.repair``); lost, the next pass starts from the first user."""
        return f"{self.prefix}users:recount:cursor"

    def worker_sequence(self) -> str:
        """Queue. INTEGER incremented by each process at start to pick its snowflake
        worker number."""
        return f"{self.prefix}worker-seq"

    # -- queue role: pub/sub channels (store.pubsub). Channels are global to a Redis server
    # whatever the database number: the prefix is what keeps two deployments apart.

    def feed_events(self, user_id: int) -> str:
        """Queue. CHANNEL: a tweet entered the user's home timeline (fan-out, or their own post)."""
        return f"{self.feed_events_prefix()}{user_id}"

    def feed_events_prefix(self) -> str:
        """What every ``feed_events`` channel name is followed by its user ID (for scripts
        that name many users' channels: the user IDs are a fraction of the bytes)."""
        return f"{self.prefix}ev:feed:"

    def author_events(self, author_id: int) -> str:
        """Queue. CHANNEL: the author posted; followers of celebrities (no fan-out) listen here."""
        return f"{self.prefix}ev:author:{author_id}"

    def notification_events(self, user_id: int) -> str:
        """Queue. CHANNEL: a notification for the user was stored."""
        return f"{self.prefix}ev:notif:{user_id}"

    def tweet_events(self, tweet_id: int) -> str:
        """Queue. CHANNEL: someone liked, commented on or retweeted the tweet."""
        return f"{self.prefix}ev:tweet:{tweet_id}"

    def feed_presence_of(self, user_id: int) -> str:
        """Queue. The ``feed_presence`` shard holding ``user_id``."""
        return self.feed_presence(presence_shard(user_id))

    def revocation_events(self) -> str:
        """Queue. CHANNEL: a token (or a user's every token) was revoked; each API process
        closes its WebSockets that hold it."""
        return f"{self.prefix}ev:revoked"

    def feed_presence(self, shard: int) -> str:
        """Queue. ZSET of the user IDs of one presence shard holding a ``homeFeed``
        subscription in some API process, each scored with the Redis-clock unix time it
        expires at unless that process renews it (``store.pubsub.presence``); fan-out
        publishes ``feed_events`` only to unexpired ones. No TTL: expired members are
        pruned by the renewals."""
        return f"{self.prefix}online:feed:{shard}"
