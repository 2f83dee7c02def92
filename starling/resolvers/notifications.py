"""Notifications: created by the worker, read and marked by their recipient.

Who is notified (never for your own action):

- ``MENTION``: each existing user @mentioned in a new tweet or comment;
- ``COMMENT``: the author of the tweet commented on (mentioning them in that comment does
  not add a ``MENTION`` on top);
- ``LIKE`` and ``RETWEET``: the author of the tweet;
- ``FOLLOW``: the user followed.

**Collapse rule.** Every notification has a ``dedupe_key``, unique per recipient (what the
notifications' shard key allows: ``store.mongo``). For ``LIKE``, ``RETWEET`` and ``FOLLOW``
it names only (kind, actor, target), so liking,
unliking and liking again, undoing and redoing a retweet, or unfollowing and following
again notifies the target once, ever. A ``COMMENT``'s key names the comment and a
``MENTION``'s names (tweet or comment, user), so a retried job never notifies twice.

**Off the request path.** A request calls ``request_notification``, which enqueues a
``notify`` job (``workers.notifications``); the job works out the recipients, inserts and
publishes each notification on its recipient's live channel (``store.notifications``).
When the worker is down the jobs wait in the queue. When Redis is down at the moment of
the action, the job cannot be enqueued and that notification is lost, while the action
itself (already in MongoDB) stands: notifications are a courtesy, not a record.

**Groups and markers.** ``groupedNotifications`` pages the viewer's groups
(``store.notifications``), most recently active first; a group is unread when its latest
notification is past the viewer's ``NOTIFICATIONS`` read marker (``store.markers``), which
``updateMarker`` and ``markNotificationsRead`` move forward, never back.
"""

from __future__ import annotations

from dataclasses import dataclass

from starling.resolvers.context import RequestContext
from starling.resolvers.errors import BadUserInput
from starling.resolvers.pagination import Page, check_first, find_page
from starling.store.degrade import best_effort
from starling.store.documents import Document, MarkerDoc, NotificationDoc, NotificationGroupDoc
from starling.store.ids import parse_id
from starling.store.jobs import NOTIFY
from starling.store.markers import MarkerTimeline, advance_marker, read_markers
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
    """Mark every unread notification of the viewer read, and move the notifications
    marker to the newest (so groups read as read too); returns how many were unread."""
    viewer = await ctx.require_viewer()
    db = ctx.services.db
    newest = (
        await db.notifications.find({"user_id": viewer.user_id}, {"_id": 1})
        .sort("_id", -1)
        .limit(1)
        .to_list()
    )
    result = await db.notifications.update_many(
        {"user_id": viewer.user_id, "read": False}, {"$set": {"read": True}}
    )
    if newest:
        await advance_marker(ctx.services, viewer.user_id, MarkerTimeline.NOTIFICATIONS, newest[0]["_id"])
    return result.modified_count


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A notification group with whether the viewer has read it."""

    group: NotificationGroupDoc
    unread: bool


async def grouped_page(ctx: RequestContext, first: int | None, after: str | None) -> Page[GroupRecord]:
    """The viewer's notification groups, most recently active first: one query for the
    page and one for the marker, whatever the groups' sizes."""
    viewer = await ctx.require_viewer()
    services = ctx.services
    first = check_first(first, services.settings.page_size_max)
    page = await find_page(
        services.db.notification_groups, {"user_id": viewer.user_id}, first, after, order="latest_id"
    )
    marker = (await read_markers(services, viewer.user_id)).get(MarkerTimeline.NOTIFICATIONS)
    read_up_to = marker["last_read_id"] if marker is not None else 0
    return page.hydrated([GroupRecord(group, group["latest_id"] > read_up_to) for group in page.items])


async def markers(ctx: RequestContext) -> dict[MarkerTimeline, MarkerDoc]:
    viewer = await ctx.require_viewer()
    return await read_markers(ctx.services, viewer.user_id)


async def update_marker(ctx: RequestContext, timeline: MarkerTimeline, last_read_id: str) -> MarkerDoc:
    """Move the viewer's marker on ``timeline`` forward to ``last_read_id`` (a tweet ID for
    the home feed, a notification ID for notifications); an older ID leaves it."""
    viewer = await ctx.require_writer()
    try:
        position = parse_id(last_read_id)
    except ValueError:
        raise BadUserInput(f"`lastReadId` is not an ID: {last_read_id!r}.") from None
    return await advance_marker(ctx.services, viewer.user_id, timeline, position)
