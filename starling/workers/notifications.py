"""The ``notify`` job: turn one stored action into the notifications it causes.

Recipients and the collapse rule are described in ``resolvers.notifications``. The job is
idempotent (every notification it creates has a ``dedupe_key`` unique per recipient), so arq may retry
it; an action whose tweet or comment is gone by the time the job runs notifies nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from starling.resolvers.mentions import mentioned_user_ids
from starling.store.jobs import JobContext
from starling.store.notifications import NotificationKind, store_notification
from starling.store.relations import silenced_for
from starling.store.services import Services
from starling.store.tweets import LIVE


@dataclass(frozen=True, slots=True)
class Target:
    recipient_id: int
    kind: NotificationKind
    dedupe_key: str


async def notify(
    ctx: JobContext,
    kind: str,
    actor_id: int,
    *,
    tweet_id: int | None = None,
    comment_id: int | None = None,
    user_id: int | None = None,
) -> int:
    """Create the notifications of one action; returns how many were new."""
    services: Services = ctx["services"]
    action = NotificationKind(kind)
    if action is NotificationKind.FOLLOW:
        assert user_id is not None
        targets = [Target(user_id, NotificationKind.FOLLOW, f"FOLLOW:{actor_id}:{user_id}")]
    elif action is NotificationKind.COMMENT:
        assert comment_id is not None
        targets = await _comment_targets(services, comment_id)
    else:
        assert tweet_id is not None
        targets = await _tweet_targets(services, action, actor_id, tweet_id)
    silenced = await silenced_for(services, actor_id, [target.recipient_id for target in targets])
    created = 0
    for target in targets:
        if target.recipient_id in silenced:  # a block either way, or a mute (resolvers.relations)
            continue
        doc = await store_notification(
            services,
            target.recipient_id,
            target.kind,
            actor_id,
            target.dedupe_key,
            tweet_id=tweet_id,
            comment_id=comment_id,
        )
        created += doc is not None
    return created


async def _tweet_targets(
    services: Services, kind: NotificationKind, actor_id: int, tweet_id: int
) -> list[Target]:
    tweet = await services.db.tweets.find_one({"_id": tweet_id, **LIVE}, {"author_id": 1, "mention_ids": 1})
    if tweet is None:
        return []
    if kind is NotificationKind.MENTION:
        return [
            Target(user, NotificationKind.MENTION, f"MENTION:t{tweet_id}:{user}")
            for user in tweet.get("mention_ids", [])
        ]
    # LIKE, RETWEET: once per (actor, tweet), ever.
    return [Target(tweet["author_id"], kind, f"{kind.value}:{actor_id}:{tweet_id}")]


async def _comment_targets(services: Services, comment_id: int) -> list[Target]:
    comment = await services.db.comments.find_one({"_id": comment_id})
    if comment is None:  # deleted meanwhile
        return []
    tweet = await services.db.tweets.find_one({"_id": comment["tweet_id"], **LIVE}, {"author_id": 1})
    if tweet is None:
        return []
    author = tweet["author_id"]
    mentioned = await mentioned_user_ids(services, comment["text"], comment["author_id"])
    targets = [Target(author, NotificationKind.COMMENT, f"COMMENT:{comment_id}")]
    targets += [
        Target(user, NotificationKind.MENTION, f"MENTION:c{comment_id}:{user}")
        for user in mentioned
        if user != author  # the COMMENT already tells them
    ]
    return targets
