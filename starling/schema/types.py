"""The object types of the contract. They wrap documents the resolvers return; fields
that need more data go through the request's DataLoaders.

A page of tweets (``tweet_connection``) loads what its selected fields need for the whole
page before execution reaches the tweets (``schema.lookahead``), and those fields then
answer from memory: a field resolver that awaits is a task graphql-core gathers, and on a
20-tweet feed page those tasks were GraphQL's largest cost (bench/RESULTS.md). Such fields
are plain functions that return the prefetched value, or an awaitable that loads it for a
tweet that was not part of a prefetched page.

**A missing related document** (an author, a commenter, an actor: a data bug, since users
are never deleted) drops that one item from its page (``authored``), and makes a nullable
tweet field (``retweetOf``, ``tweet``, ``Notification.tweet``) null (``shown_tweet``), with
a warning in the log; it never fails the whole answer, whose connections are non-null all
the way up (``search`` for a word of that tweet used to answer ``data: null`` to everyone).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import strawberry

from starling.resolvers import comments, follows, likes, retweets, tweets
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import NotFound
from starling.resolvers.pagination import Page
from starling.schema.connections import DEFAULT_PAGE_SIZE, Connection, connection_of
from starling.schema.lookahead import connection_node_fields

log = logging.getLogger(__name__)

Info = strawberry.Info[RequestContext, None]
Doc = dict[str, Any]
T = TypeVar("T")
NOT_LOADED: Any = object()


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
        return await tweet_connection(info, page)

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


def referenced_user(doc: Doc | None, user_id: int) -> User:
    if doc is None:  # an author is never deleted; a missing one is a data bug
        raise LookupError(f"user {user_id} referenced but missing")
    return User.from_doc(doc)


async def load_user(info: Info, user_id: int) -> User:
    return referenced_user(await (await info.context.loaders()).users.load(user_id), user_id)


@strawberry.type
class Tweet:
    id: strawberry.ID
    text: str
    created_at: datetime
    hashtags: list[str]
    author_id: strawberry.Private[int]
    mention_ids: strawberry.Private[list[int]]
    retweet_of_id: strawberry.Private[int | None]
    # Loaded for the whole page by ``prefetch_tweets``: loader name -> this tweet's value.
    prefetched: strawberry.Private[dict[str, Any] | None] = None

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

    def _ready(self, loader: str) -> Any:
        """This tweet's value from ``loader`` if its page prefetched it, else ``NOT_LOADED``."""
        return self.prefetched.get(loader, NOT_LOADED) if self.prefetched is not None else NOT_LOADED

    async def _load(self, info: Info, loader: str, key: int) -> Any:
        return await getattr(await info.context.loaders(), loader).load(key)

    def _author(self, info: Info) -> User | Awaitable[User]:
        doc = self._ready("users")
        return load_user(info, self.author_id) if doc is NOT_LOADED else referenced_user(doc, self.author_id)

    def _count(self, info: Info, kind: str) -> int | Awaitable[int]:
        counts = self._ready("counts")
        return self._load_count(info, kind) if counts is NOT_LOADED else getattr(counts, kind)

    async def _load_count(self, info: Info, kind: str) -> int:
        return getattr(await self._load(info, "counts", self._engaged_id), kind)

    def _viewer_did(self, info: Info, loader: str) -> bool | Awaitable[bool]:
        did = self._ready(loader)
        return self._load_viewer_did(info, loader) if did is NOT_LOADED else did

    async def _load_viewer_did(self, info: Info, loader: str) -> bool:
        if await info.context.viewer_id() is None:
            return False
        return await self._load(info, loader, self._engaged_id)

    @strawberry.field(graphql_type=User)
    def author(self, info: Info) -> User | Awaitable[User]:
        return self._author(info)

    @strawberry.field(graphql_type=str, description="Share link: {PUBLIC_URL}/{handle}/status/{id}.")
    def url(self, info: Info) -> str | Awaitable[str]:
        author = self._author(info)
        if isinstance(author, User):
            return self._share_link(info, author)
        return self._awaited_url(info, author)

    async def _awaited_url(self, info: Info, author: Awaitable[User]) -> str:
        return self._share_link(info, await author)

    def _share_link(self, info: Info, author: User) -> str:
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
        return await load_tweet(info, self.retweet_of_id)

    @strawberry.field(graphql_type=int, description="Likes; on a retweet, the original's.")
    def like_count(self, info: Info) -> int | Awaitable[int]:
        return self._count(info, "like")

    @strawberry.field(graphql_type=int, description="Comments; on a retweet, the original's.")
    def comment_count(self, info: Info) -> int | Awaitable[int]:
        return self._count(info, "comment")

    @strawberry.field(graphql_type=int, description="Live retweets; on a retweet, the original's.")
    def retweet_count(self, info: Info) -> int | Awaitable[int]:
        return self._count(info, "retweet")

    @strawberry.field(
        graphql_type=bool,
        description="Whether the viewer liked it (a retweet: the original); false when anonymous.",
    )
    def viewer_has_liked(self, info: Info) -> bool | Awaitable[bool]:
        return self._viewer_did(info, "viewer_likes")

    @strawberry.field(
        graphql_type=bool,
        description="Whether the viewer retweeted it (a retweet: the original); false when anonymous.",
    )
    def viewer_has_retweeted(self, info: Info) -> bool | Awaitable[bool]:
        return self._viewer_did(info, "viewer_retweets")

    @strawberry.field(description="Comments, oldest first; on a retweet, the original's.")
    async def comments(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Comment]:
        page = await comments.tweet_comments(info.context, self._engaged_id, first, after)
        return connection_of(await authored(info, page, "author_id", "comment"), Comment.from_doc)

    @strawberry.field(description="Who liked it, most recent like first; on a retweet, the original's.")
    async def liked_by(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[User]:
        page = await likes.liked_by(info.context, self._engaged_id, first, after)
        return connection_of(page, User.from_doc)


async def load_tweet(info: Info, tweet_id: int | None) -> Tweet | None:
    """The tweet, or None when there is no ID or the tweet is gone (``shown_tweet``)."""
    if tweet_id is None:
        return None
    return await shown_tweet(info, await (await info.context.loaders()).tweets.load(tweet_id))


async def shown_tweet(info: Info, doc: Doc | None) -> Tweet | None:
    """A tweet document as a ``Tweet``; None when it is gone, or when its author is (logged,
    module doc)."""
    if doc is None:
        return None
    if await (await info.context.loaders()).users.load(doc["author_id"]) is None:
        log.warning("tweet %s shown as null: its author %s is missing", doc["_id"], doc["author_id"])
        return None
    return Tweet.from_doc(doc)


async def authored(info: Info, page: Page[Doc], author_field: str, what: str) -> Page[Doc]:
    """The page without the items whose author (``doc[author_field]``) is missing: one
    loader batch, which the items' author fields then answer from."""
    authors = await (await info.context.loaders()).users.load_many([doc[author_field] for doc in page.items])
    return without_missing_authors(page, authors, what)


def without_missing_authors(page: Page[T], authors: Sequence[Doc | None], what: str) -> Page[T]:
    """``page`` without the items whose author (in step with them in ``authors``) is
    missing, logged (module doc)."""
    if all(author is not None for author in authors):
        return page
    dropped = [position for position, author in zip(page.positions, authors, strict=True) if author is None]
    log.warning("%s(s) %s dropped from a page: their author is missing", what, dropped)
    return page.hydrated(
        [item if author is not None else None for item, author in zip(page.items, authors, strict=True)]
    )


# The loader each tweet field reads, for the fields a page prefetches.
PREFETCHED_BY = {
    "author": "users",
    "url": "users",
    "likeCount": "counts",
    "commentCount": "counts",
    "retweetCount": "counts",
    "viewerHasLiked": "viewer_likes",
    "viewerHasRetweeted": "viewer_retweets",
}
VIEWER_LOADERS = frozenset({"viewer_likes", "viewer_retweets"})


async def prefetch_tweets(info: Info, tweets: list[Tweet], fields: set[str]) -> None:
    """Load, for all ``tweets`` at once, what the selected ``fields`` read: the same loaders
    the fields would call, so the same batches and round trips, one task instead of one per
    field and tweet."""
    wanted = sorted({PREFETCHED_BY[name] for name in fields if name in PREFETCHED_BY})
    if await info.context.viewer_id() is None:  # those fields answer false, loading nothing
        wanted = [loader for loader in wanted if loader not in VIEWER_LOADERS]
    if not tweets or not wanted:
        return
    loaders = await info.context.loaders()
    keys = {
        loader: [tweet.author_id if loader == "users" else tweet._engaged_id for tweet in tweets]
        for loader in wanted
    }
    values = await asyncio.gather(*(getattr(loaders, loader).load_many(keys[loader]) for loader in wanted))
    for index, tweet in enumerate(tweets):
        tweet.prefetched = {loader: found[index] for loader, found in zip(wanted, values, strict=True)}


async def tweet_connection(info: Info, page: Page[Doc]) -> Connection[Tweet]:
    """A page of tweets as a connection, its selected relations prefetched (module doc).
    Authors are always among them, so that a tweet whose author is missing drops out
    whatever the selection, in the same round of loads as the rest."""
    tweets = page.hydrated([Tweet.from_doc(doc) for doc in page.items])
    await prefetch_tweets(info, tweets.items, connection_node_fields(info) | {"author"})
    authors = [tweet._ready("users") for tweet in tweets.items]
    return connection_of(without_missing_authors(tweets, authors, "tweet"), lambda tweet: tweet)


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
        tweet = await load_tweet(info, self.tweet_id)
        if tweet is None:
            raise NotFound("The tweet of this comment was deleted.")
        return tweet

    @strawberry.field
    async def author(self, info: Info) -> User:
        return await load_user(info, self.author_id)


@strawberry.type(description="A hashtag of the last 24 hours and how many tweets carry it.")
class Trend:
    hashtag: str
    tweet_count: int


@strawberry.type
class AuthPayload:
    token: str
    user: User
