"""Notification, NotificationGroup, Marker and TweetActivity: what the notification
queries, the read markers and the live streams return."""

from __future__ import annotations

import asyncio
from datetime import datetime

import strawberry

from starling.resolvers import activity
from starling.resolvers.live import ActivityRecord
from starling.resolvers.notifications import GroupRecord
from starling.schema.node import Node
from starling.schema.types import Comment, Info, Tweet, User, load_tweet, load_user
from starling.store import markers as stored_markers
from starling.store import notifications as stored
from starling.store.documents import CachedTweetDoc, MarkerDoc, NotificationDoc

# The GraphQL enums are the domain's: strawberry.enum marks the class itself and returns it.
NotificationKind = stored.NotificationKind
ActivityKind = activity.ActivityKind
strawberry.enum(NotificationKind, description="What a notification is about.")
MarkerTimeline = stored_markers.MarkerTimeline
strawberry.enum(ActivityKind, description="What happened to a watched tweet.")
strawberry.enum(MarkerTimeline, description="A timeline a read marker is kept for.")


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


@strawberry.type(
    description="Notifications of one kind on one target: all likes of a tweet, all follows of a day, ..."
)
class NotificationGroup:
    kind: NotificationKind
    count: int = strawberry.field(description="How many notifications the group holds.")
    latest_at: datetime = strawberry.field(description="When its latest notification was created.")
    unread: bool = strawberry.field(
        description="Whether its latest notification is past the viewer's notifications read marker."
    )
    actor_ids: strawberry.Private[list[int]]
    tweet_id: strawberry.Private[int | None]

    @classmethod
    def from_record(cls, record: GroupRecord) -> NotificationGroup:
        group = record.group
        return cls(
            kind=NotificationKind(group["kind"]),
            count=group["count"],
            latest_at=group["latest_at"],
            unread=record.unread,
            actor_ids=group["actor_ids"],
            tweet_id=group.get("tweet_id"),
        )

    @strawberry.field(description="The latest few who did it, newest first.")
    async def sample_actors(self, info: Info) -> list[User]:
        return list(await asyncio.gather(*(load_user(info, actor) for actor in self.actor_ids)))

    @strawberry.field(description="The tweet concerned; null for FOLLOW, or when it was deleted.")
    async def tweet(self, info: Info) -> Tweet | None:
        return await load_tweet(info, self.tweet_id)


@strawberry.type(description="How far the viewer has read a timeline; both null before the first update.")
class Marker:
    last_read_id: strawberry.ID | None = strawberry.field(
        description="The ID of the newest item read (a tweet, or a notification)."
    )
    updated_at: datetime | None = strawberry.field(description="When the marker last moved forward.")

    @classmethod
    def from_doc(cls, doc: MarkerDoc | None) -> Marker:
        if doc is None:
            return cls(last_read_id=None, updated_at=None)
        return cls(last_read_id=strawberry.ID(str(doc["last_read_id"])), updated_at=doc["updated_at"])


@strawberry.type(description="The viewer's read markers, shared by all their devices.")
class Markers:
    home_feed: Marker
    notifications: Marker

    @classmethod
    def from_docs(cls, docs: dict[stored_markers.MarkerTimeline, MarkerDoc]) -> Markers:
        return cls(
            home_feed=Marker.from_doc(docs.get(MarkerTimeline.HOME_FEED)),
            notifications=Marker.from_doc(docs.get(MarkerTimeline.NOTIFICATIONS)),
        )
