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
publishes each notification on its recipient's live channel (``store.notifications``).
When the worker is down the jobs wait in the queue. When Redis is down at the moment of
the action, the job cannot be enqueued and that notification is lost, while the action
itself (already in MongoDB) stands: notifications are a courtesy, not a record.
"""

from __future__ import annotations

from starling.resolvers.context import RequestContext
from starling.resolvers.pagination import Page, check_first, find_page
from starling.store.degrade import best_effort
from starling.store.documents import Document, NotificationDoc
from starling.store.jobs import NOTIFY
from starling.store.notifications import NotificationKind
from starling.store.services import Services

# -- requesting (request path) ----------------------------------------------------


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
    await best_effort(
        f"{kind} notification",
        NOTIFY.enqueue(
            services.queue, kind.value, actor_id, tweet_id=tweet_id, comment_id=comment_id, user_id=user_id
        ),
    )


# -- the recipient's side (GraphQL) ----------------------------------------------------


async def notifications_page(
    ctx: RequestContext, first: int | None, after: str | None
) -> Page[NotificationDoc]:
    """The viewer's notifications, newest first, without those from users the viewer
    blocked, muted or is blocked by (stored before the block or mute: later ones are never
    made, ``workers.notifications``)."""
    viewer = await ctx.require_viewer()
    first = check_first(first, ctx.services.settings.page_size_max)
    page = await find_page(ctx.services.db.notifications, {"user_id": viewer.user_id}, first, after)
    found = await ctx.relations()
    return page.hydrated([None if found.hides_in_feed(doc["actor_id"]) else doc for doc in page.items])


async def unread_count(ctx: RequestContext) -> int:
    """Unread notifications the viewer is shown (``notifications_page``'s rule)."""
    viewer = await ctx.require_viewer()
    found = await ctx.relations()
    query: Document = {"user_id": viewer.user_id, "read": False}
    silenced = found.hidden_everywhere | found.muted
    if silenced:
        query["actor_id"] = {"$nin": sorted(silenced)}
    return await ctx.services.db.notifications.count_documents(query)


async def mark_all_read(ctx: RequestContext) -> int:
    """Mark every unread notification of the viewer read; returns how many were."""
    viewer = await ctx.require_viewer()
    result = await ctx.services.db.notifications.update_many(
        {"user_id": viewer.user_id, "read": False}, {"$set": {"read": True}}
    )
    return result.modified_count
