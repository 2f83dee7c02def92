"""Stored notifications: inserting one under the collapse rule, counting it in its group
and announcing it live.

Who is notified for which action is the domain's rule (the notification operations and the
``notify`` job); the collapse rule is the ``dedupe_key`` each caller passes, unique per recipient.

**Groups** (``groupedNotifications``, after Mastodon 4.3's ``group_key``): one kind on one
target: all likes (or retweets, comments, mentions) of one tweet; all follows on one UTC
day. Each notification stores its ``group_key``, and its insert updates the recipient's
group document (count, the latest ``notification_group_actors`` actors newest first, the
latest notification), so a page of groups is one indexed query whatever the counts. The
group is updated only after the notification is stored, and a retried job's insert is a
duplicate that counts nothing; if the update itself fails the job is retried by arq, but
that notification is then a duplicate and stays uncounted (notifications are a courtesy).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum

from pymongo.errors import DuplicateKeyError

from starling.store.degrade import best_effort
from starling.store.documents import NotificationDoc, as_utc, utcnow
from starling.store.pubsub.publishing import Event, publish
from starling.store.services import Services

log = logging.getLogger(__name__)


class NotificationKind(StrEnum):
    MENTION = "MENTION"
    COMMENT = "COMMENT"
    LIKE = "LIKE"
    RETWEET = "RETWEET"
    FOLLOW = "FOLLOW"
    QUOTE = "QUOTE"


async def store_notification(
    services: Services,
    recipient_id: int,
    kind: NotificationKind,
    actor_id: int,
    dedupe_key: str,
    *,
    tweet_id: int | None = None,
    comment_id: int | None = None,
) -> NotificationDoc | None:
    """Insert one notification and announce it on the recipient's live channel. None when
    it is the actor's own action or the recipient has its ``dedupe_key`` already (the collapse rule)."""
    if recipient_id == actor_id:
        return None
    created_at = utcnow()
    doc: NotificationDoc = {
        "_id": services.ids.next_id(),
        "user_id": recipient_id,
        "kind": kind.value,
        "actor_id": actor_id,
        "tweet_id": tweet_id,
        "comment_id": comment_id,
        "created_at": created_at,
        "read": False,
        "dedupe_key": dedupe_key,
        "group_key": group_key(kind, created_at, tweet_id),
    }
    try:
        await services.db.notifications.insert_one(doc)
    except DuplicateKeyError:
        return None
    await count_in_group(services, doc)
    await best_effort(
        "notification event",
        publish(
            services.queue_redis, services.keys.notification_events(recipient_id), notification_event(doc)
        ),
    )
    return doc


def group_key(kind: NotificationKind, created_at: datetime, tweet_id: int | None) -> str:
    """The group a notification belongs to, among its recipient's: its kind on its tweet,
    or, for follows (the target is the recipient), its kind on its UTC day."""
    if tweet_id is None:
        return f"{kind.value}:d{as_utc(created_at).date().isoformat()}"
    return f"{kind.value}:t{tweet_id}"


async def count_in_group(services: Services, doc: NotificationDoc) -> None:
    """Add a stored notification to its recipient's group, creating the group with the
    first one. Concurrent inserts of one group commute (``$inc``, ``$max``); only the order
    of two actors a moment apart in ``actor_ids`` may differ from theirs."""
    await services.db.notification_groups.update_one(
        {"user_id": doc["user_id"], "group_key": doc["group_key"]},
        {
            "$setOnInsert": {"_id": doc["_id"], "kind": doc["kind"], "tweet_id": doc.get("tweet_id")},
            "$inc": {"count": 1},
            "$max": {"latest_id": doc["_id"], "latest_at": doc["created_at"]},
            "$push": {
                "actor_ids": {
                    "$each": [doc["actor_id"]],
                    "$position": 0,
                    "$slice": services.settings.notification_group_actors,
                }
            },
        },
        upsert=True,
    )


def notification_event(doc: NotificationDoc) -> Event:
    """A stored notification as its live event: the whole (small) document, so a
    subscriber needs no read to show it."""
    return {
        "_id": doc["_id"],
        "user_id": doc["user_id"],
        "kind": doc["kind"],
        "actor_id": doc["actor_id"],
        "tweet_id": doc.get("tweet_id"),
        "comment_id": doc.get("comment_id"),
        "created_at": int(as_utc(doc["created_at"]).timestamp() * 1000),
        "read": doc.get("read", False),
    }


def notification_from_event(event: Event) -> NotificationDoc:
    doc: NotificationDoc = {
        "_id": event["_id"],
        "user_id": event["user_id"],
        "kind": event["kind"],
        "actor_id": event["actor_id"],
        "tweet_id": event.get("tweet_id"),
        "comment_id": event.get("comment_id"),
        "created_at": datetime.fromtimestamp(event["created_at"] / 1000, tz=UTC),
        "read": event.get("read", False),
    }
    return doc
