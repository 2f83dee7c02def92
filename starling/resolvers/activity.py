"""Engagement announcements: what the like, comment and retweet mutations call once the
action is stored.

``record_activity`` publishes the ``tweetActivity`` event (watchers of the tweet see it at
once) and requests the notification of the tweet's author (and, for a comment, of the
users it mentions) from the worker. Both are best effort: when Redis is down the action
stands, watchers miss a live update and that notification is not created (see
``resolvers.notifications``); when the worker is down the notification waits in the queue.
"""

from __future__ import annotations

from enum import StrEnum

from starling.resolvers.notifications import request_notification
from starling.store.degrade import best_effort
from starling.store.notifications import NotificationKind
from starling.store.pubsub.publishing import Event, publish
from starling.store.services import Services


class ActivityKind(StrEnum):
    LIKE = "LIKE"
    COMMENT = "COMMENT"
    RETWEET = "RETWEET"
    QUOTE = "QUOTE"


def activity_event(kind: ActivityKind, actor_id: int, tweet_id: int, comment_id: int | None) -> Event:
    return {"kind": kind.value, "actor_id": actor_id, "tweet_id": tweet_id, "comment_id": comment_id}


async def record_activity(
    services: Services,
    kind: ActivityKind,
    actor_id: int,
    tweet_id: int,
    comment_id: int | None = None,
) -> None:
    """Announce a stored like, comment (``comment_id``) or retweet of ``tweet_id`` (for a
    retweet: the original tweet). Call it only when the action took effect, not for an
    idempotent repeat. Never raises for Redis trouble."""
    event = activity_event(kind, actor_id, tweet_id, comment_id)
    await best_effort(
        f"{kind} activity event", publish(services.queue_redis, services.keys.tweet_events(tweet_id), event)
    )
    await request_notification(
        services, NotificationKind(kind.value), actor_id, tweet_id=tweet_id, comment_id=comment_id
    )
