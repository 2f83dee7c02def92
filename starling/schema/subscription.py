"""The Subscription root, served over WebSocket (graphql-transport-ws and graphql-ws).

Each field awaits its stream from ``resolvers.live`` before returning it, so a refusal
(UNAUTHENTICATED, NOT_FOUND, BAD_USER_INPUT) is the operation's error with its code, sent
before anything streams; an error while streaming ends the subscription with that error.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

import strawberry

from starling.resolvers import live
from starling.schema.feed_events import FeedEvent, feed_event
from starling.schema.notifications import Notification, TweetActivity
from starling.schema.types import Info, Tweet

T = TypeVar("T")


async def _each(records: AsyncGenerator[Any, None], wrap: Callable[[Any], T]) -> AsyncGenerator[T, None]:
    # Closing this generator closes the stream, which releases its hub subscription.
    async with contextlib.aclosing(records):
        async for record in records:
            yield wrap(record)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "Every tweet as it enters the viewer's home feed, own tweets included. With `after` "
            "(the ID of the last tweet the client saw), first what entered since, oldest first: "
            "at most the newest PAGE_SIZE_MAX of them, the first carrying "
            "`extensions.missed: true` when more were missed."
        )
    )
    async def home_feed(
        self, info: Info, after: str | None = strawberry.UNSET
    ) -> AsyncGenerator[Tweet, None]:
        return _each(await live.home_feed(info.context, after), Tweet.from_doc)

    @strawberry.subscription(
        description=(
            "The viewer's home feed as events: tweets entering it (TweetPosted) and leaving it "
            "when deleted (TweetDeleted). `after` as for homeFeed."
        )
    )
    async def home_feed_events(
        self, info: Info, after: str | None = strawberry.UNSET
    ) -> AsyncGenerator[FeedEvent, None]:
        return _each(await live.home_feed_events(info.context, after), feed_event)

    @strawberry.subscription(description="The viewer's notifications as they are created.")
    async def notifications(self, info: Info) -> AsyncGenerator[Notification, None]:
        return _each(await live.notifications(info.context), Notification.from_doc)

    @strawberry.subscription(description="Likes, comments and retweets of one tweet; open to anyone.")
    async def tweet_activity(
        self, info: Info, tweet_id: strawberry.ID
    ) -> AsyncGenerator[TweetActivity, None]:
        return _each(await live.tweet_activity(info.context, tweet_id), TweetActivity.from_record)
