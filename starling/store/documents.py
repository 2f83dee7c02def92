"""The documents of the collections (DESIGN.md §3), and serialising tweets for Redis.

Each collection's documents are a ``TypedDict``: the fields every insert writes are
required, those only some documents carry (markers, fields added after the first release,
a retweet's original) are ``NotRequired``. They describe what is stored; a read with a
projection is typed as the whole document, as PyMongo types it, so code reads only the
fields its projection keeps (Starling's projections select a few fields, or drop
``password_hash`` from users).

Cached blobs hold only fields that never change after the write (a tweet's text, author,
hashtags...); counters live in their own keys so a like never invalidates a cached tweet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

import orjson

Document = dict[str, Any]
"""Untyped BSON: query filters, projections, updates, aggregation rows."""


class UserDoc(TypedDict):
    _id: int
    handle: str
    handle_lower: str
    display_name: str
    # What ``searchUsers`` prefix-matches; users from before it match by handle only.
    display_name_lower: NotRequired[str]
    bio: str
    password_hash: str
    created_at: datetime
    followers_count: int
    following_count: int
    tweets_count: int
    # Tokens issued with an older generation are void (changePassword raises it).
    token_generation: NotRequired[int]
    tokens_revoked_at: NotRequired[datetime]


class HandleDoc(TypedDict):
    """A handle's reservation (``store.reservations``): the one user holding it."""

    _id: str  # handle_lower
    user_id: int


class RetweetKeyDoc(TypedDict):
    """A retweet key's reservation: the one live retweet of (author, original)."""

    _id: str  # ``loaders.engagement.retweet_key``: "author:original"
    tweet_id: int


class FollowDoc(TypedDict):
    _id: int
    follower_id: int
    followee_id: int
    follower_shard: int  # store.keys.user_shard(follower_id): the fan-out's read order
    created_at: datetime


class MediaRecord(TypedDict):
    """What a tweet embeds of each of its media (and caches with it): all a ``Media`` shows,
    so a feed page's media cost no extra round trip."""

    _id: int
    key: str
    thumb_key: str
    content_type: str
    width: int
    height: int
    byte_size: int
    alt_text: str | None


class MediaDoc(MediaRecord):
    """A media item (collection ``media``): pending until ``finalizeMedia`` checked it, then
    ready. ``key``/``thumb_key``/``width``... are meaningful once ready."""

    owner_id: int
    status: str  # "pending" | "ready"
    upload_key: str  # what the client uploaded to (``u/<id>``)
    declared_type: str
    created_at: datetime
    thumb_content_type: NotRequired[str]
    tweet_id: NotRequired[int]  # attached: the tweet's; the media is the tweet's from then on
    # Unattached media are deleted after this (cron); cleared once the tweet holding it is stored.
    expires_at: NotRequired[datetime]
    delete_pending: NotRequired[bool]  # its tweet was deleted; the deletion job has not run
    delete_marked_at: NotRequired[datetime]


class CachedTweetDoc(TypedDict):
    """The fields of a tweet that never change after the write: what Redis caches
    (``encode_tweet``) and the tweet loader returns. Every ``TweetDoc`` is one."""

    _id: int
    author_id: int
    text: str
    created_at: datetime
    hashtags: list[str]
    mention_ids: list[int]
    retweet_of: NotRequired[int]  # a retweet: its original
    media: NotRequired[list[MediaRecord]]  # a retweet: its original's
    quote_of: NotRequired[int]  # a quote: the tweet it embeds
    sensitive: NotRequired[bool]  # a content warning (a retweet: its original's)
    spoiler_text: NotRequired[str]  # what the warning says


class TweetDoc(CachedTweetDoc):
    like_count: int
    comment_count: int
    retweet_count: int
    quote_count: NotRequired[int]  # tweets from before quotes have none (counted as 0)
    words: NotRequired[list[str]]  # what ``search`` matches; tweets from before it have none
    retweet_key: NotRequired[str]  # a live retweet: reserved in retweet_keys, one per (author, original)
    fanout_pending: NotRequired[bool]  # the fan-out outbox marker
    retweets_pending: NotRequired[bool]  # a deleted original whose retweets are not all retracted
    retweets_round: NotRequired[int]  # the retraction job under way, for the repair cron
    deleted: NotRequired[bool]
    deleted_at: NotRequired[datetime]
    counts_batch: NotRequired[int]  # the last counter flush batch applied (store.counters)


class CommentDoc(TypedDict):
    _id: int
    tweet_id: int
    author_id: int
    text: str
    created_at: datetime


class RelationDoc(TypedDict):
    """A block or a mute (collections ``blocks``, ``mutes``): ``user_id`` blocks or mutes
    ``target_id``; unique per (user, target)."""

    _id: int
    user_id: int
    target_id: int
    created_at: datetime


class BookmarkDoc(TypedDict):
    """A user's private bookmark of a tweet (an original: bookmarking a retweet bookmarks it)."""

    _id: int
    user_id: int
    tweet_id: int
    created_at: datetime


class LikeDoc(TypedDict):
    _id: int
    user_id: int
    tweet_id: int
    created_at: datetime


class NotificationDoc(TypedDict):
    _id: int
    user_id: int  # the recipient
    kind: str  # a ``store.notifications.NotificationKind``
    actor_id: int
    tweet_id: int | None
    comment_id: int | None
    created_at: datetime
    read: bool
    # The collapse rule's key; a notification rebuilt from its live event has none.
    dedupe_key: NotRequired[str]
    # Its group (``store.notifications.group_key``); none on those from before groups.
    group_key: NotRequired[str]


class NotificationGroupDoc(TypedDict):
    """The notifications of one recipient sharing a ``group_key`` (``store.notifications``),
    kept up to date as each is inserted."""

    _id: int  # the group's first notification's ID
    user_id: int
    group_key: str
    kind: str
    tweet_id: int | None
    count: int
    actor_ids: list[int]  # the latest few, newest first
    latest_id: int  # the newest notification's ID: the groups' order and cursor
    latest_at: datetime


class MarkerDoc(TypedDict):
    """How far a user has read one timeline (``store.markers``)."""

    _id: str  # "{user_id}:{timeline}"
    user_id: int
    timeline: str
    last_read_id: int
    updated_at: datetime


class RevokedTokenDoc(TypedDict):
    _id: str  # the token's ID (``jti``)
    user_id: int
    expires_at: datetime  # a TTL index removes the record with the token's expiry
    revoked_at: datetime


TWEET_CACHED_FIELDS = (
    "_id",
    "author_id",
    "text",
    "created_at",
    "hashtags",
    "mention_ids",
    "retweet_of",
    "media",
    "quote_of",
    "sensitive",
    "spoiler_text",
)


def utcnow() -> datetime:
    # Millisecond precision: what MongoDB stores, so a document reads back as it was written.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """MongoDB hands back naive UTC datetimes unless the client is tz-aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def encode_tweet(doc: CachedTweetDoc) -> bytes:
    fields: Document = dict(doc)
    blob = {name: fields[name] for name in TWEET_CACHED_FIELDS if fields.get(name) is not None}
    blob["created_at"] = int(as_utc(doc["created_at"]).timestamp() * 1000)
    return orjson.dumps(blob)


def decode_tweet(blob: bytes) -> CachedTweetDoc:
    doc = orjson.loads(blob)
    doc["created_at"] = datetime.fromtimestamp(doc["created_at"] / 1000, tz=UTC)
    doc.setdefault("hashtags", [])
    doc.setdefault("mention_ids", [])
    result: CachedTweetDoc = doc
    return result
