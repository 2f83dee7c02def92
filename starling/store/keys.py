"""Every Redis key Starling uses, in one place.

All keys start with ``Settings.redis_key_prefix`` so Starling can share a Redis database.
Nothing here is the source of truth: each key can be lost and is rebuilt from MongoDB.

Sorted sets of tweet IDs hold every member with score 0 and the ID written as a
fixed-width decimal (``store.ids.to_member``): lexicographic order is then numeric order,
which keeps full 63-bit precision (a float score would not) and lets
``ZREVRANGEBYLEX`` page with an exclusive ``(cursor`` bound.
"""

from __future__ import annotations

from dataclasses import dataclass

# Lowest possible member: marks a home timeline as built (an empty-but-built timeline still
# exists) and never reaches a client.
TIMELINE_SENTINEL = "0" * 19


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def home_timeline(self, user_id: int) -> str:
        """ZSET (lex) of tweet IDs in the user's home feed, capped at TIMELINE_MAX."""
        return f"{self.prefix}tl:{user_id}"

    @staticmethod
    def rebuild_lock(key: str) -> str:
        """STRING held while one process rebuilds ``key`` (a home timeline or an author's
        list) from MongoDB; while it is held, fan-out writes into ``key`` even though it is
        not built yet, so nothing posted during the rebuild is missed."""
        return f"{key}:rebuild"

    def author_tweets(self, user_id: int) -> str:
        """ZSET (lex) of the author's own recent tweet IDs, capped at AUTHOR_TWEETS_MAX, with
        the same built-marker sentinel as home timelines; what readers merge for celebrities."""
        return f"{self.prefix}ut:{user_id}"

    def followed_celebrities(self, user_id: int) -> str:
        """SET of the authors the user follows whose tweets are merged at read time, plus a
        member ``v{epoch}`` saying which ``celebrity_epoch`` it was built at (stale otherwise)."""
        return f"{self.prefix}cel:{user_id}"

    def merged_authors(self) -> str:
        """SET of author IDs whose tweets readers merge at read time (celebrities, and former
        celebrities until their recent tweets are copied into their followers' timelines).
        No TTL: an eviction policy limited to volatile keys never drops it."""
        return f"{self.prefix}cel:authors"

    def celebrity_epoch(self) -> str:
        """INTEGER bumped whenever ``merged_authors`` changes; invalidates every
        ``followed_celebrities`` set at once. No TTL."""
        return f"{self.prefix}cel:epoch"

    def tweet(self, tweet_id: int) -> str:
        """STRING: the tweet document as JSON, the hydration cache."""
        return f"{self.prefix}tw:{tweet_id}"

    def trends(self) -> str:
        """STRING: the top ``trends`` as JSON, cached for TRENDS_CACHE_SECONDS."""
        return f"{self.prefix}trends"

    def auth_state(self, user_id: int) -> str:
        """HASH of what token checks need to know about the user's tokens (``store.auth_state``):
        ``loaded`` (copied from MongoDB, so a missing field means "ask MongoDB"), ``gen``
        (tokens of an older generation are void: a password change) and ``r:{token id}`` ->
        expiry for each revoked token. Expires a token lifetime after its last write."""
        return f"{self.prefix}auth:{{{user_id}}}"

    def rate_limit(self, bucket: str, subject: str) -> str:
        """STRING: the GCRA state (``store.ratelimit``) of one rate-limit bucket of one
        subject (``u:{user}``, ``a:{address}``, ``h:{handle}``); the subject is the hash tag, so
        one subject's buckets share a Redis Cluster slot. Expires when the bucket is full."""
        return f"{self.prefix}rl:{bucket}:{{{subject}}}"

    # -- engagement counters (store.counters) ------------------------------------------

    def counts(self, tweet_id: int) -> str:
        """HASH like/comment/retweet: the tweet's current counts as readers see them."""
        return f"{self.prefix}ct:{tweet_id}"

    def count_writers(self, tweet_id: int) -> str:
        """HASH busy/gen: count changes of the tweet in flight, and a token each one renews."""
        return f"{self.prefix}ct:{tweet_id}:w"

    def count_deltas(self) -> str:
        """HASH "{tweet id}:{kind}" -> delta that MongoDB's stored count does not have yet."""
        return f"{self.prefix}ct:deltas"

    def count_batch(self) -> str:
        """HASH: the deltas a flush is applying (``count_deltas`` renamed) and its batch ID."""
        return f"{self.prefix}ct:batch"

    def count_flush_state(self) -> str:
        """HASH busy/gen: whether a flush is applying a batch; the last batch applied."""
        return f"{self.prefix}ct:flush"

    def count_flush_lock(self) -> str:
        """STRING lock: one counter flush at a time."""
        return f"{self.prefix}ct:flush:lock"

    # -- pub/sub channels (live events, see store.pubsub). Channels are global to a Redis
    # server whatever the database number: the prefix is what keeps two deployments apart.

    def feed_events(self, user_id: int) -> str:
        """CHANNEL: a tweet entered the user's home timeline (fan-out, or their own post)."""
        return f"{self.feed_events_prefix()}{user_id}"

    def feed_events_prefix(self) -> str:
        """What every ``feed_events`` channel name is followed by its user ID (for scripts
        that name many users' channels: the user IDs are a fraction of the bytes)."""
        return f"{self.prefix}ev:feed:"

    def author_events(self, author_id: int) -> str:
        """CHANNEL: the author posted; followers of celebrities (no fan-out) listen here."""
        return f"{self.prefix}ev:author:{author_id}"

    def notification_events(self, user_id: int) -> str:
        """CHANNEL: a notification for the user was stored."""
        return f"{self.prefix}ev:notif:{user_id}"

    def tweet_events(self, tweet_id: int) -> str:
        """CHANNEL: someone liked, commented on or retweeted the tweet."""
        return f"{self.prefix}ev:tweet:{tweet_id}"

    def revocation_events(self) -> str:
        """CHANNEL: a token (or a user's every token) was revoked; each API process closes its
        WebSockets that hold it (``resolvers.sessions``)."""
        return f"{self.prefix}ev:revoked"

    def feed_presence(self) -> str:
        """ZSET of the user IDs holding a ``homeFeed`` subscription in some API process, each
        scored with the Redis-clock unix time it expires at unless that process renews it
        (``store.pubsub.Presence``); fan-out publishes ``feed_events`` only to unexpired ones.
        No TTL: expired members are pruned by the renewals."""
        return f"{self.prefix}online:feed"

    def worker_sequence(self) -> str:
        """INTEGER incremented by each process at start to pick its snowflake worker number."""
        return f"{self.prefix}worker-seq"
