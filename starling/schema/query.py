"""The Query root."""

from __future__ import annotations

import strawberry

from starling.resolvers import accounts, feed, notifications, search, tweets
from starling.resolvers.search import SEARCH_USERS_DEFAULT, TRENDS_DEFAULT
from starling.schema.connections import DEFAULT_PAGE_SIZE, Connection, connection_of
from starling.schema.notifications import Notification
from starling.schema.types import (
    Info,
    Trend,
    Tweet,
    User,
    authored,
    page_needs,
    shown_tweet,
    tweet_connection,
)


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
        return await shown_tweet(info, await tweets.get_tweet(info.context, id))

    @strawberry.field(description="The viewer's home feed, newest first, own tweets included.")
    async def home_feed(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Tweet]:
        return await tweet_connection(
            info, await feed.home_feed(info.context, first, after, page_needs(info))
        )

    @strawberry.field(
        description="Live original tweets (not retweets) with every word and #hashtag of the query, "
        "words matched whole and case-insensitively; newest first."
    )
    async def search(
        self,
        info: Info,
        query: str,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Tweet]:
        return await tweet_connection(info, await search.search_tweets(info.context, query, first, after))

    @strawberry.field(
        description="Users whose handle (first) or display name starts with the query, "
        "case-insensitively; a leading @ is ignored."
    )
    async def search_users(
        self, info: Info, query: str, first: int | None = SEARCH_USERS_DEFAULT
    ) -> list[User]:
        return [User.from_doc(doc) for doc in await search.search_users(info.context, query, first)]

    @strawberry.field(description="Hashtags of the last 24 hours, most tweeted first.")
    async def trends(self, info: Info, limit: int | None = TRENDS_DEFAULT) -> list[Trend]:
        rows = await search.trends(info.context, limit)
        return [Trend(hashtag=hashtag, tweet_count=count) for hashtag, count in rows]

    @strawberry.field(description="The viewer's notifications, newest first.")
    async def notifications(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Notification]:
        page = await notifications.notifications_page(info.context, first, after)
        return connection_of(await authored(info, page, "actor_id", "notification"), Notification.from_doc)

    @strawberry.field(description="How many of the viewer's notifications are unread.")
    async def unread_notification_count(self, info: Info) -> int:
        return await notifications.unread_count(info.context)
