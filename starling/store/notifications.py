"""Stored notifications: inserting one under the collapse rule and announcing it live.

Who is notified for which action is the domain's rule (the notification operations and the
``notify`` job); the collapse rule is the unique ``dedupe_key`` each caller passes.
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
    it is the actor's own action or its ``dedupe_key`` exists already (the collapse rule)."""
    if recipient_id == actor_id:
        return None
    doc: NotificationDoc = {
        "_id": services.ids.next_id(),
        "user_id": recipient_id,
        "kind": kind.value,
        "actor_id": actor_id,
        "tweet_id": tweet_id,
        "comment_id": comment_id,
        "created_at": utcnow(),
        "read": False,
        "dedupe_key": dedupe_key,
    }
    try:
        await services.db.notifications.insert_one(doc)
    except DuplicateKeyError:
        return None
    await best_effort(
        "notification event",
        publish(
            services.queue_redis, services.keys.notification_events(recipient_id), notification_event(doc)
        ),
    )
    return doc


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
