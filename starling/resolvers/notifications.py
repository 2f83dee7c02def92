"""Notifications: created by the worker, read and marked by their recipient.

Who is notified (never for your own action):

- ``MENTION``: each existing user @mentioned in a new tweet or comment;
- ``COMMENT``: the author of the tweet commented on (mentioning them in that comment does
  not add a ``MENTION`` on top);
- ``LIKE`` and ``RETWEET``: the author of the tweet;
- ``FOLLOW``: the user followed.

**Collapse rule.** Every notification has a ``dedupe_key``, unique in the collection. For
``LIKE``, ``RETWEET`` and ``FOLLOW`` it names only (kind, actor, target), so liking,
unliking and liking again, undoing and redoing a retweet, or unfollowing and following
again notifies the target once, ever. A ``COMMENT``'s key names the comment and a
``MENTION``'s names (tweet or comment, user), so a retried job never notifies twice.

**Off the request path.** A request calls ``request_notification``, which enqueues a
``notify`` job (``workers.notifications``); the job works out the recipients, inserts and
publishes each notification on its recipient's live channel. When the worker is down the
jobs wait in the queue. When Redis is down at the moment of the action, the job cannot be
enqueued and that notification is lost, while the action itself (already in MongoDB)
stands: notifications are a courtesy, not a record.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pymongo.errors import DuplicateKeyError

from starling.resolvers.context import RequestContext
from starling.resolvers.degrade import best_effort
from starling.resolvers.pagination import Page, check_first, find_page
from starling.store.documents import as_utc, utcnow
from starling.store.pubsub.publishing import Event, publish
from starling.store.queue import NOTIFY, enqueue
from starling.store.services import Services

log = logging.getLogger(__name__)

Doc = dict[str, Any]


class NotificationKind(StrEnum):
    MENTION = "MENTION"
    COMMENT = "COMMENT"
    LIKE = "LIKE"
    RETWEET = "RETWEET"
    FOLLOW = "FOLLOW"


# -- requesting and creating (request path, worker) ------------------------------------


async def request_notification(
    services: Services,
    kind: NotificationKind,
    actor_id: int,
    *,
    tweet_id: int | None = None,
    comment_id: int | None = None,
    user_id: int | None = None,
) -> None:
    """Enqueue the ``notify`` job for an action just stored: ``tweet_id`` for mentions,
    likes, retweets (the original) and comments (with ``comment_id``), ``user_id`` for
    follows. Best effort: a Redis failure is logged and swallowed (see the module doc)."""
    subject = comment_id or tweet_id or user_id
    await best_effort(
        f"{kind} notification",
        enqueue(
            services.queue,
            NOTIFY,
            kind.value,
            actor_id,
            tweet_id=tweet_id,
            comment_id=comment_id,
            user_id=user_id,
            # Identical requests still queued collapse into one (a like/unlike burst).
            job_id=f"notify:{kind.value}:{actor_id}:{subject}",
        ),
    )


async def store_notification(
    services: Services,
    recipient_id: int,
    kind: NotificationKind,
    actor_id: int,
    dedupe_key: str,
    *,
    tweet_id: int | None = None,
    comment_id: int | None = None,
) -> Doc | None:
    """Insert one notification and announce it on the recipient's live channel. None when
    it is the actor's own action or its ``dedupe_key`` exists already (the collapse rule)."""
    if recipient_id == actor_id:
        return None
    doc: Doc = {
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
        publish(services.redis, services.keys.notification_events(recipient_id), notification_event(doc)),
    )
    return doc


def notification_event(doc: Doc) -> Event:
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


def notification_from_event(event: Event) -> Doc:
    return {**event, "created_at": datetime.fromtimestamp(event["created_at"] / 1000, tz=UTC)}


# -- the recipient's side (GraphQL) ----------------------------------------------------


async def notifications_page(ctx: RequestContext, first: int | None, after: str | None) -> Page[Doc]:
    """The viewer's notifications, newest first."""
    viewer = await ctx.require_viewer()
    first = check_first(first, ctx.services.settings.page_size_max)
    return await find_page(ctx.services.db.notifications, {"user_id": viewer.user_id}, first, after)


async def unread_count(ctx: RequestContext) -> int:
    viewer = await ctx.require_viewer()
    return await ctx.services.db.notifications.count_documents({"user_id": viewer.user_id, "read": False})


async def mark_all_read(ctx: RequestContext) -> int:
    """Mark every unread notification of the viewer read; returns how many were."""
    viewer = await ctx.require_viewer()
    result = await ctx.services.db.notifications.update_many(
        {"user_id": viewer.user_id, "read": False}, {"$set": {"read": True}}
    )
    return result.modified_count
