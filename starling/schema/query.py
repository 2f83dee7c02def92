"""The Query root."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry

from starling.resolvers import accounts, feed, nodes, notifications, search, tweets
from starling.resolvers.search import SEARCH_USERS_DEFAULT, TRENDS_DEFAULT
from starling.schema.connections import DEFAULT_PAGE_SIZE, Connection, connection_of
from starling.schema.node import Node
from starling.schema.notifications import Markers, Notification, NotificationGroup
from starling.schema.types import (
    Comment,
    Info,
    Trend,
    Tweet,
    User,
    authored,
    page_needs,
    shown_tweet,
    tweet_connection,
)

_NODE_TYPES: dict[nodes.NodeKind, Callable[[Any], Node]] = {
    "user": User.from_doc,
    "tweet": Tweet.from_doc,
    "comment": Comment.from_doc,
    "notification": Notification.from_doc,
}


async def _nodes(info: Info, ids: list[str]) -> list[Node | None]:
    found = await nodes.find_nodes(info.context, ids)
    return [None if node is None else _NODE_TYPES[node.kind](node.doc) for node in found]


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

    @strawberry.field(
        description="The object with this ID (a User, Tweet, Comment, or the viewer's own "
        "Notification); null when there is none the viewer may see."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return (await _nodes(info, [id]))[0]

    @strawberry.field(description="node(id:) for each ID, in order; at most NODES_MAX (100) IDs.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        return await _nodes(info, list(ids))

    @strawberry.field(description="The viewer's notifications, newest first.")
    async def notifications(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Notification]:
        page = await notifications.notifications_page(info.context, first, after)
        return connection_of(await authored(info, page, "actor_id", "notification"), Notification.from_doc)

    @strawberry.field(
        description="The viewer's notifications grouped by kind and target, most recently active first."
    )
    async def grouped_notifications(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[NotificationGroup]:
        page = await notifications.grouped_page(info.context, first, after)
        return connection_of(page, NotificationGroup.from_record)

    @strawberry.field(description="The viewer's read markers (home feed, notifications).")
    async def markers(self, info: Info) -> Markers:
        return Markers.from_docs(await notifications.markers(info.context))

    @strawberry.field(description="How many of the viewer's notifications are unread.")
    async def unread_notification_count(self, info: Info) -> int:
        return await notifications.unread_count(info.context)
