"""The object types of the contract. They wrap documents the resolvers return; fields
that need more data go through the request's DataLoaders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from starling.resolvers import comments, follows, likes, retweets, tweets
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import NotFound
from starling.schema.connections import DEFAULT_PAGE_SIZE, Connection, connection_of
from starling.store.counters import Counts

Info = strawberry.Info[RequestContext, None]
Doc = dict[str, Any]


@strawberry.type
class User:
    id: strawberry.ID
    handle: str
    display_name: str
    bio: str
    created_at: datetime
    followers_count: int
    following_count: int
    tweets_count: int

    @classmethod
    def from_doc(cls, doc: Doc) -> User:
        return cls(
            id=strawberry.ID(str(doc["_id"])),
            handle=doc["handle"],
            display_name=doc["display_name"],
            bio=doc.get("bio", ""),
            created_at=doc["created_at"],
            followers_count=doc.get("followers_count", 0),
            following_count=doc.get("following_count", 0),
            tweets_count=doc.get("tweets_count", 0),
        )

    @property
    def _id(self) -> int:
        return int(self.id)

    async def _relation_to_viewer(self, info: Info, loader: str) -> bool:
        viewer_id = await info.context.viewer_id()
        if viewer_id is None or viewer_id == self._id:
            return False
        return await getattr(await info.context.loaders(), loader).load(self._id)

    @strawberry.field(description="Whether the viewer follows this user; false when anonymous.")
    async def viewer_is_following(self, info: Info) -> bool:
        return await self._relation_to_viewer(info, "viewer_follows")

    @strawberry.field(description="Whether this user follows the viewer; false when anonymous.")
    async def follows_viewer(self, info: Info) -> bool:
        return await self._relation_to_viewer(info, "follows_viewer")

    @strawberry.field(description="Their tweets and retweets, newest first.")
    async def tweets(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Tweet]:
        page = await tweets.user_tweets(info.context, self._id, first, after)
        page = await retweets.drop_hidden_retweets(info.context, page, collapse=False)
        return connection_of(page, Tweet.from_doc)

    @strawberry.field(description="Who follows them, newest first.")
    async def followers(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[User]:
        return connection_of(await follows.followers(info.context, self._id, first, after), User.from_doc)

    @strawberry.field(description="Whom they follow, most recent first.")
    async def following(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[User]:
        return connection_of(await follows.following(info.context, self._id, first, after), User.from_doc)


async def load_user(info: Info, user_id: int) -> User:
    doc = await (await info.context.loaders()).users.load(user_id)
    if doc is None:  # an author is never deleted; a missing one is a data bug
        raise LookupError(f"user {user_id} referenced but missing")
    return User.from_doc(doc)


@strawberry.type
class Tweet:
    id: strawberry.ID
    text: str
    created_at: datetime
    hashtags: list[str]
    author_id: strawberry.Private[int]
    mention_ids: strawberry.Private[list[int]]
    retweet_of_id: strawberry.Private[int | None]

    @classmethod
    def from_doc(cls, doc: Doc) -> Tweet:
        return cls(
            id=strawberry.ID(str(doc["_id"])),
            text=doc["text"],
            created_at=doc["created_at"],
            hashtags=doc.get("hashtags", []),
            author_id=doc["author_id"],
            mention_ids=doc.get("mention_ids", []),
            retweet_of_id=doc.get("retweet_of"),
        )

    @property
    def _engaged_id(self) -> int:
        """The tweet whose likes, comments and retweets this one shows: a retweet shows its
        original's (that is where liking or commenting on a retweet goes)."""
        return self.retweet_of_id if self.retweet_of_id is not None else int(self.id)

    async def _counts(self, info: Info) -> Counts:
        return await (await info.context.loaders()).counts.load(self._engaged_id)

    async def _viewer_did(self, info: Info, loader: str) -> bool:
        if await info.context.viewer_id() is None:
            return False
        return await getattr(await info.context.loaders(), loader).load(self._engaged_id)

    @strawberry.field
    async def author(self, info: Info) -> User:
        return await load_user(info, self.author_id)

    @strawberry.field(description="Share link: {PUBLIC_URL}/{handle}/status/{id}.")
    async def url(self, info: Info) -> str:
        author = await load_user(info, self.author_id)
        base = info.context.services.settings.public_url.rstrip("/")
        return f"{base}/{author.handle}/status/{self.id}"

    @strawberry.field(description="Users @mentioned in the text who exist.")
    async def mentions(self, info: Info) -> list[User]:
        if not self.mention_ids:
            return []
        docs = await (await info.context.loaders()).users.load_many(self.mention_ids)
        return [User.from_doc(doc) for doc in docs if doc is not None]

    @strawberry.field(description="The tweet retweeted, on a retweet (whose text is the original's).")
    async def retweet_of(self, info: Info) -> Tweet | None:
        if self.retweet_of_id is None:
            return None
        doc = await (await info.context.loaders()).tweets.load(self.retweet_of_id)
        return Tweet.from_doc(doc) if doc else None

    @strawberry.field(description="Likes; on a retweet, the original's.")
    async def like_count(self, info: Info) -> int:
        return (await self._counts(info)).like

    @strawberry.field(description="Comments; on a retweet, the original's.")
    async def comment_count(self, info: Info) -> int:
        return (await self._counts(info)).comment

    @strawberry.field(description="Live retweets; on a retweet, the original's.")
    async def retweet_count(self, info: Info) -> int:
        return (await self._counts(info)).retweet

    @strawberry.field(
        description="Whether the viewer liked it (a retweet: the original); false when anonymous."
    )
    async def viewer_has_liked(self, info: Info) -> bool:
        return await self._viewer_did(info, "viewer_likes")

    @strawberry.field(
        description="Whether the viewer retweeted it (a retweet: the original); false when anonymous."
    )
    async def viewer_has_retweeted(self, info: Info) -> bool:
        return await self._viewer_did(info, "viewer_retweets")

    @strawberry.field(description="Comments, oldest first; on a retweet, the original's.")
    async def comments(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Comment]:
        page = await comments.tweet_comments(info.context, self._engaged_id, first, after)
        return connection_of(page, Comment.from_doc)

    @strawberry.field(description="Who liked it, most recent like first; on a retweet, the original's.")
    async def liked_by(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[User]:
        page = await likes.liked_by(info.context, self._engaged_id, first, after)
        return connection_of(page, User.from_doc)


@strawberry.type
class Comment:
    id: strawberry.ID
    text: str
    created_at: datetime
    tweet_id: strawberry.Private[int]
    author_id: strawberry.Private[int]

    @classmethod
    def from_doc(cls, doc: Doc) -> Comment:
        return cls(
            id=strawberry.ID(str(doc["_id"])),
            text=doc["text"],
            created_at=doc["created_at"],
            tweet_id=doc["tweet_id"],
            author_id=doc["author_id"],
        )

    @strawberry.field(description="The tweet commented on.")
    async def tweet(self, info: Info) -> Tweet:
        doc = await (await info.context.loaders()).tweets.load(self.tweet_id)
        if doc is None:
            raise NotFound("The tweet of this comment was deleted.")
        return Tweet.from_doc(doc)

    @strawberry.field
    async def author(self, info: Info) -> User:
        return await load_user(info, self.author_id)


@strawberry.type
class AuthPayload:
    token: str
    user: User
