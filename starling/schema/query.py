"""The Query root."""

from __future__ import annotations

import strawberry

from starling.resolvers import accounts, feed, notifications, tweets
from starling.schema.connections import DEFAULT_PAGE_SIZE, Connection, connection_of
from starling.schema.notifications import Notification
from starling.schema.types import Info, Tweet, User, tweet_connection


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user; null when anonymous.")
    async def viewer(self, info: Info) -> User | None:
        doc = await accounts.viewer_user(info.context)
        return User.from_doc(doc) if doc else None

    @strawberry.field(description="A user by handle, case-insensitively; null when unknown.")
    async def user(self, info: Info, handle: str) -> User | None:
        doc = await accounts.user_by_handle(info.context, handle)
        return User.from_doc(doc) if doc else None

    @strawberry.field(description="A tweet; null when unknown or deleted.")
    async def tweet(self, info: Info, id: strawberry.ID) -> Tweet | None:
        doc = await tweets.get_tweet(info.context, id)
        return Tweet.from_doc(doc) if doc else None

    @strawberry.field(description="The viewer's home feed, newest first, own tweets included.")
    async def home_feed(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Tweet]:
        return await tweet_connection(info, await feed.home_feed(info.context, first, after))

    @strawberry.field(description="The viewer's notifications, newest first.")
    async def notifications(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Notification]:
        page = await notifications.notifications_page(info.context, first, after)
        return connection_of(page, Notification.from_doc)

    @strawberry.field(description="How many of the viewer's notifications are unread.")
    async def unread_notification_count(self, info: Info) -> int:
        return await notifications.unread_count(info.context)
