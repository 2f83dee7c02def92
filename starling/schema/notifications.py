"""Notification and TweetActivity: what the notification queries and the live streams return."""

from __future__ import annotations

from datetime import datetime

import strawberry

from starling.resolvers import activity
from starling.resolvers.live import ActivityRecord
from starling.schema.node import Node
from starling.schema.types import Comment, Info, Tweet, User, load_tweet, load_user
from starling.store import notifications as stored
from starling.store.documents import CachedTweetDoc, NotificationDoc

# The GraphQL enums are the domain's: strawberry.enum marks the class itself and returns it.
NotificationKind = stored.NotificationKind
ActivityKind = activity.ActivityKind
strawberry.enum(NotificationKind, description="What a notification is about.")
strawberry.enum(ActivityKind, description="What happened to a watched tweet.")


async def load_comment(info: Info, comment_id: int | None) -> Comment | None:
    if comment_id is None:
        return None
    doc = await (await info.context.loaders()).comments.load(comment_id)
    return Comment.from_doc(doc) if doc else None


@strawberry.type(description="Something someone did that concerns the viewer.")
class Notification(Node):
    id: strawberry.ID
    kind: NotificationKind
    created_at: datetime
    read: bool
    actor_id: strawberry.Private[int]
    tweet_id: strawberry.Private[int | None]
    comment_id: strawberry.Private[int | None]

    @classmethod
    def from_doc(cls, doc: NotificationDoc) -> Notification:
        return cls(
            id=strawberry.ID(str(doc["_id"])),
            kind=NotificationKind(doc["kind"]),
            created_at=doc["created_at"],
            read=doc.get("read", False),
            actor_id=doc["actor_id"],
            tweet_id=doc.get("tweet_id"),
            comment_id=doc.get("comment_id"),
        )

    @strawberry.field(description="Who did it.")
    async def actor(self, info: Info) -> User:
        return await load_user(info, self.actor_id)

    @strawberry.field(description="The tweet concerned; null for FOLLOW, or when it was deleted.")
    async def tweet(self, info: Info) -> Tweet | None:
        return await load_tweet(info, self.tweet_id)

    @strawberry.field(description="The comment, for COMMENT and a MENTION in a comment; null once deleted.")
    async def comment(self, info: Info) -> Comment | None:
        return await load_comment(info, self.comment_id)


@strawberry.type(description="A like, comment or retweet of a watched tweet.")
class TweetActivity:
    kind: ActivityKind
    actor_id: strawberry.Private[int]
    tweet_doc: strawberry.Private[CachedTweetDoc]
    comment_id: strawberry.Private[int | None]

    @classmethod
    def from_record(cls, record: ActivityRecord) -> TweetActivity:
        return cls(
            kind=ActivityKind(record["kind"]),
            actor_id=record["actor_id"],
            tweet_doc=record["tweet"],
            comment_id=record.get("comment_id"),
        )

    @strawberry.field(description="Who liked, commented or retweeted.")
    async def actor(self, info: Info) -> User:
        return await load_user(info, self.actor_id)

    @strawberry.field(description="The watched tweet, with its counts as they are now.")
    def tweet(self) -> Tweet:
        return Tweet.from_doc(self.tweet_doc)

    @strawberry.field(description="The new comment, for COMMENT; null once deleted.")
    async def comment(self, info: Info) -> Comment | None:
        return await load_comment(info, self.comment_id)
