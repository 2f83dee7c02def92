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
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, Literal, TypeVar

import strawberry
from aiodataloader import DataLoader

from starling.loaders import Loaders
from starling.resolvers import bookmarks, comments, follows, likes, relations, retweets, tweets
from starling.resolvers.audience import ViewerFact
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import NotFound
from starling.resolvers.feed import PageNeeds
from starling.resolvers.pagination import Page
from starling.schema.connections import DEFAULT_PAGE_SIZE, Connection, connection_of
from starling.schema.lookahead import connection_node_fields
from starling.schema.media import Media, media_of
from starling.schema.node import Node
from starling.schema.plans import sync_when_prefetched
from starling.store.counters import Counts
from starling.store.documents import CachedTweetDoc, CommentDoc, MediaRecord, UserDoc
from starling.store.relations import RelationKind, Relations

log = logging.getLogger(__name__)

Info = strawberry.Info[RequestContext, None]
T = TypeVar("T")
D = TypeVar("D", bound=Mapping[str, Any])
V = TypeVar("V")


class _NotLoaded(enum.Enum):
    NOT_LOADED = enum.auto()


NOT_LOADED: Final = _NotLoaded.NOT_LOADED
"""What ``Tweet._ready`` returns for a relation its page did not prefetch."""


@dataclass(frozen=True, eq=False)
class Relation(Generic[V]):
    """A tweet field's data that a page loads for all its tweets at once: which loader
    (an attribute of ``Loaders``, so renaming a loader is a type error here) and which key
    of the tweet it loads. Compared by identity: each one keys ``Tweet.prefetched``."""

    loader: Callable[[Loaders], DataLoader[int, V]]
    key: Callable[[Tweet], int]
    needs_viewer: bool = False  # answers false for anonymous viewers, loading nothing


@strawberry.type
class User(Node):
    id: strawberry.ID
    handle: str
    display_name: str
    bio: str
    created_at: datetime
    followers_count: int
    following_count: int
    tweets_count: int

    @classmethod
    def from_doc(cls, doc: UserDoc) -> User:
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

    async def _relation_to_viewer(
        self, info: Info, loader: Callable[[Loaders], DataLoader[int, bool]], fact: ViewerFact
    ) -> bool:
        if info.context.viewer_slots is not None:  # a shared execution: filled in per subscriber
            return info.context.viewer_slots.record(tuple(info.path.as_list()), fact, self._id)
        viewer_id = await info.context.viewer_id()
        if viewer_id is None or viewer_id == self._id:
            return False
        return await loader(await info.context.loaders()).load(self._id)

    @strawberry.field(description="Whether the viewer follows this user; false when anonymous.")
    async def viewer_is_following(self, info: Info) -> bool:
        return await self._relation_to_viewer(
            info, lambda loaders: loaders.viewer_follows, ViewerFact.FOLLOWING
        )

    @strawberry.field(description="Whether this user follows the viewer; false when anonymous.")
    async def follows_viewer(self, info: Info) -> bool:
        return await self._relation_to_viewer(
            info, lambda loaders: loaders.follows_viewer, ViewerFact.FOLLOWED_BY
        )

    @strawberry.field(description="Their tweets and retweets, newest first.")
    async def tweets(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Tweet]:
        page: Page[CachedTweetDoc] = await tweets.user_tweets(info.context, self._id, first, after)
        page = await retweets.drop_hidden_retweets(info.context, page, collapse=False)
        return await tweet_connection(info, await relations.visible_tweets(info.context, page, feed=False))

    async def _viewer_relation(self, info: Info, holds: Callable[[Relations], bool]) -> bool:
        if await info.context.viewer_id() in (None, self._id):
            return False
        return holds(await info.context.relations())

    @strawberry.field(description="Whether the viewer blocked this user; false when anonymous.")
    async def viewer_has_blocked(self, info: Info) -> bool:
        return await self._viewer_relation(info, lambda found: self._id in found.blocked)

    @strawberry.field(description="Whether this user blocked the viewer; false when anonymous.")
    async def blocks_viewer(self, info: Info) -> bool:
        return await self._viewer_relation(info, lambda found: self._id in found.blocked_by)

    @strawberry.field(description="Whether the viewer muted this user; false when anonymous.")
    async def viewer_has_muted(self, info: Info) -> bool:
        return await self._viewer_relation(info, lambda found: self._id in found.muted)

    @strawberry.field(
        description="The users the viewer blocked, most recent first. Only on the viewer: "
        "FORBIDDEN on anyone else."
    )
    async def blocked(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[User]:
        page = await relations.relation_page(info.context, RelationKind.BLOCK, self._id, first, after)
        return connection_of(page, User.from_doc)

    @strawberry.field(
        description="The tweets the viewer bookmarked, newest bookmark first. Private: only on "
        "the viewer, FORBIDDEN on anyone else."
    )
    async def bookmarks(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Tweet]:
        return await tweet_connection(
            info, await bookmarks.bookmarks_page(info.context, self._id, first, after)
        )

    @strawberry.field(
        description="The users the viewer muted, most recent first. Only on the viewer: "
        "FORBIDDEN on anyone else."
    )
    async def muted(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[User]:
        page = await relations.relation_page(info.context, RelationKind.MUTE, self._id, first, after)
        return connection_of(page, User.from_doc)

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


def referenced_user(doc: UserDoc | None, user_id: int) -> User:
    if doc is None:  # an author is never deleted; a missing one is a data bug
        raise LookupError(f"user {user_id} referenced but missing")
    return User.from_doc(doc)


async def load_user(info: Info, user_id: int) -> User:
    return referenced_user(await (await info.context.loaders()).users.load(user_id), user_id)


@strawberry.type
class Tweet(Node):
    id: strawberry.ID
    text: str
    created_at: datetime
    hashtags: list[str]
    author_id: strawberry.Private[int]
    mention_ids: strawberry.Private[list[int]]
    retweet_of_id: strawberry.Private[int | None]
    media_records: strawberry.Private[list[MediaRecord]]
    quote_of_id: strawberry.Private[int | None] = None
    sensitive: bool = strawberry.field(
        default=False, description="Whether it carries a content warning (a retweet: its original's)."
    )
    spoiler_text: str | None = strawberry.field(default=None, description="What its content warning says.")
    # Loaded for the whole page by ``prefetch_tweets``: relation -> this tweet's value.
    prefetched: strawberry.Private[dict[Relation[Any], Any] | None] = None

    @classmethod
    def from_doc(cls, doc: CachedTweetDoc) -> Tweet:
        return cls(
            id=strawberry.ID(str(doc["_id"])),
            text=doc["text"],
            created_at=doc["created_at"],
            hashtags=doc.get("hashtags", []),
            author_id=doc["author_id"],
            mention_ids=doc.get("mention_ids", []),
            retweet_of_id=doc.get("retweet_of"),
            media_records=doc.get("media", []),
            quote_of_id=doc.get("quote_of"),
            sensitive=doc.get("sensitive", False),
            spoiler_text=doc.get("spoiler_text"),
        )

    @property
    def _engaged_id(self) -> int:
        """The tweet whose likes, comments and retweets this one shows: a retweet shows its
        original's (that is where liking or commenting on a retweet goes)."""
        return self.retweet_of_id if self.retweet_of_id is not None else int(self.id)

    def _ready(self, relation: Relation[V]) -> V | Literal[_NotLoaded.NOT_LOADED]:
        """This tweet's value of ``relation`` if its page prefetched it, else ``NOT_LOADED``."""
        if self.prefetched is None or relation not in self.prefetched:
            return NOT_LOADED
        value: V = self.prefetched[relation]
        return value

    async def _load(self, info: Info, relation: Relation[V]) -> V:
        return await relation.loader(await info.context.loaders()).load(relation.key(self))

    def _author(self, info: Info) -> User | Awaitable[User]:
        doc = self._ready(AUTHOR)
        return load_user(info, self.author_id) if doc is NOT_LOADED else referenced_user(doc, self.author_id)

    def _count(self, info: Info, count: Callable[[Counts], int]) -> int | Awaitable[int]:
        counts = self._ready(COUNTS)
        return self._load_count(info, count) if counts is NOT_LOADED else count(counts)

    async def _load_count(self, info: Info, count: Callable[[Counts], int]) -> int:
        return count(await self._load(info, COUNTS))

    def _viewer_did(self, info: Info, relation: Relation[bool]) -> bool | Awaitable[bool]:
        if info.context.viewer_slots is not None:  # a shared execution: filled in per subscriber
            return info.context.viewer_slots.record(
                tuple(info.path.as_list()), VIEWER_FACTS[relation], self._engaged_id
            )
        did = self._ready(relation)
        return self._load_viewer_did(info, relation) if did is NOT_LOADED else did

    async def _load_viewer_did(self, info: Info, relation: Relation[bool]) -> bool:
        if await info.context.viewer_id() is None:
            return False
        return await self._load(info, relation)

    @strawberry.field(graphql_type=User)
    @sync_when_prefetched
    def author(self, info: Info) -> User | Awaitable[User]:
        return self._author(info)

    @strawberry.field(graphql_type=str, description="Share link: {PUBLIC_URL}/{handle}/status/{id}.")
    @sync_when_prefetched
    def url(self, info: Info) -> str | Awaitable[str]:
        doc = self._ready(AUTHOR)
        if doc is NOT_LOADED:
            return self._awaited_url(info)
        return self._share_link(info, referenced_user(doc, self.author_id))

    async def _awaited_url(self, info: Info) -> str:
        return self._share_link(info, await load_user(info, self.author_id))

    def _share_link(self, info: Info, author: User) -> str:
        base = info.context.services.settings.public_url.rstrip("/")
        return f"{base}/{author.handle}/status/{self.id}"

    @strawberry.field(description="Its images, in the order posted (a retweet: the original's).")
    @sync_when_prefetched
    def media(self, info: Info) -> list[Media]:
        return media_of(info, self.media_records)

    @strawberry.field(
        description="Users @mentioned in the text who exist, but those a block stands between "
        "with the viewer."
    )
    async def mentions(self, info: Info) -> list[User]:
        if not self.mention_ids:
            return []
        docs = await (await info.context.loaders()).users.load_many(self.mention_ids)
        hidden = (await info.context.relations()).hidden_everywhere
        return [User.from_doc(doc) for doc in docs if doc is not None and doc["_id"] not in hidden]

    @strawberry.field(description="The tweet retweeted, on a retweet (whose text is the original's).")
    async def retweet_of(self, info: Info) -> Tweet | None:
        return await load_tweet(info, self.retweet_of_id)

    @strawberry.field(
        description="The tweet a quote embeds; null when it is not a quote, or the quoted tweet "
        "was deleted or is behind a block (then quotedTweetUnavailable). On a retweet: see retweetOf."
    )
    async def quote_of(self, info: Info) -> Tweet | None:
        return await self._quoted(info)

    @strawberry.field(description="Whether it quotes a tweet that was deleted or is behind a block.")
    async def quoted_tweet_unavailable(self, info: Info) -> bool:
        return self.quote_of_id is not None and await self._quoted(info) is None

    async def _quoted(self, info: Info) -> Tweet | None:
        if self.quote_of_id is None:
            return None
        loaded = await (await info.context.loaders()).tweets.load(self.quote_of_id)
        return await shown_tweet(info, await relations.tweet_visible(info.context, loaded))

    @strawberry.field(graphql_type=int, description="Live quotes of it; on a retweet, the original's.")
    @sync_when_prefetched
    def quote_count(self, info: Info) -> int | Awaitable[int]:
        return self._count(info, lambda counts: counts.quote)

    @strawberry.field(description="Live quotes of it, newest first; on a retweet, the original's.")
    async def quotes(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Tweet]:
        page = await tweets.quotes_of(info.context, self._engaged_id, first, after)
        return await tweet_connection(info, await relations.visible_tweets(info.context, page, feed=False))

    @strawberry.field(graphql_type=int, description="Likes; on a retweet, the original's.")
    @sync_when_prefetched
    def like_count(self, info: Info) -> int | Awaitable[int]:
        return self._count(info, lambda counts: counts.like)

    @strawberry.field(graphql_type=int, description="Comments; on a retweet, the original's.")
    @sync_when_prefetched
    def comment_count(self, info: Info) -> int | Awaitable[int]:
        return self._count(info, lambda counts: counts.comment)

    @strawberry.field(graphql_type=int, description="Live retweets; on a retweet, the original's.")
    @sync_when_prefetched
    def retweet_count(self, info: Info) -> int | Awaitable[int]:
        return self._count(info, lambda counts: counts.retweet)

    @strawberry.field(
        graphql_type=bool,
        description="Whether the viewer liked it (a retweet: the original); false when anonymous.",
    )
    @sync_when_prefetched
    def viewer_has_liked(self, info: Info) -> bool | Awaitable[bool]:
        return self._viewer_did(info, VIEWER_LIKED)

    @strawberry.field(
        graphql_type=bool,
        description="Whether the viewer retweeted it (a retweet: the original); false when anonymous.",
    )
    @sync_when_prefetched
    def viewer_has_retweeted(self, info: Info) -> bool | Awaitable[bool]:
        return self._viewer_did(info, VIEWER_RETWEETED)

    @strawberry.field(
        graphql_type=bool,
        description="Whether the viewer bookmarked it (a retweet: the original); false when anonymous.",
    )
    @sync_when_prefetched
    def viewer_has_bookmarked(self, info: Info) -> bool | Awaitable[bool]:
        return self._viewer_did(info, VIEWER_BOOKMARKED)

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


async def shown_tweet(info: Info, doc: CachedTweetDoc | None) -> Tweet | None:
    """A tweet document as a ``Tweet``; None when it is gone, or when its author is (logged,
    module doc)."""
    if doc is None:
        return None
    if await (await info.context.loaders()).users.load(doc["author_id"]) is None:
        log.warning("tweet %s shown as null: its author %s is missing", doc["_id"], doc["author_id"])
        return None
    return Tweet.from_doc(doc)


async def authored(info: Info, page: Page[D], author_field: str, what: str) -> Page[D]:
    """The page without the items whose author (``doc[author_field]``) is missing: one
    loader batch, which the items' author fields then answer from."""
    authors = await (await info.context.loaders()).users.load_many([doc[author_field] for doc in page.items])
    return without_missing_authors(page, authors, what)


def without_missing_authors(page: Page[T], authors: Sequence[UserDoc | None], what: str) -> Page[T]:
    """``page`` without the items whose author (in step with them in ``authors``) is
    missing, logged (module doc)."""
    if all(author is not None for author in authors):
        return page
    dropped = [position for position, author in zip(page.positions, authors, strict=True) if author is None]
    log.warning("%s(s) %s dropped from a page: their author is missing", what, dropped)
    return page.hydrated(
        [item if author is not None else None for item, author in zip(page.items, authors, strict=True)]
    )


AUTHOR = Relation[UserDoc | None](lambda loaders: loaders.users, lambda tweet: tweet.author_id)
COUNTS = Relation[Counts](lambda loaders: loaders.counts, lambda tweet: tweet._engaged_id)
VIEWER_LIKED = Relation[bool](
    lambda loaders: loaders.viewer_likes, lambda tweet: tweet._engaged_id, needs_viewer=True
)
VIEWER_RETWEETED = Relation[bool](
    lambda loaders: loaders.viewer_retweets, lambda tweet: tweet._engaged_id, needs_viewer=True
)
VIEWER_BOOKMARKED = Relation[bool](
    lambda loaders: loaders.viewer_bookmarks, lambda tweet: tweet._engaged_id, needs_viewer=True
)

VIEWER_FACTS: dict[Relation[bool], ViewerFact] = {
    VIEWER_LIKED: ViewerFact.LIKED,
    VIEWER_RETWEETED: ViewerFact.RETWEETED,
    VIEWER_BOOKMARKED: ViewerFact.BOOKMARKED,
}

RELATIONS: tuple[Relation[Any], ...] = (COUNTS, AUTHOR, VIEWER_LIKED, VIEWER_RETWEETED, VIEWER_BOOKMARKED)
"""Every relation, in the order a page loads them."""

# The relation each tweet field reads, for the fields a page prefetches (GraphQL names).
PREFETCHED_BY: dict[str, Relation[Any]] = {
    "author": AUTHOR,
    "url": AUTHOR,
    "likeCount": COUNTS,
    "commentCount": COUNTS,
    "retweetCount": COUNTS,
    "quoteCount": COUNTS,
    "viewerHasLiked": VIEWER_LIKED,
    "viewerHasRetweeted": VIEWER_RETWEETED,
    "viewerHasBookmarked": VIEWER_BOOKMARKED,
}


async def prefetch_tweets(info: Info, tweets: list[Tweet], fields: Set[str]) -> None:
    """Load, for all ``tweets`` at once, what the selected ``fields`` read: the same loaders
    the fields would call, so the same batches and round trips, one task instead of one per
    field and tweet."""
    selected = {PREFETCHED_BY[name] for name in fields if name in PREFETCHED_BY}
    wanted = [relation for relation in RELATIONS if relation in selected]
    if await info.context.viewer_id() is None:  # those fields answer false, loading nothing
        wanted = [relation for relation in wanted if not relation.needs_viewer]
    if not tweets or not wanted:
        return
    loaders = await info.context.loaders()
    batches = [
        relation.loader(loaders).load_many([relation.key(tweet) for tweet in tweets]) for relation in wanted
    ]
    values = await asyncio.gather(*batches)
    for index, tweet in enumerate(tweets):
        tweet.prefetched = {relation: found[index] for relation, found in zip(wanted, values, strict=True)}


def page_needs(info: Info) -> PageNeeds:
    """What the selected node fields of this connection read besides the tweets, for a
    resolver that reads it with them (``feed.hydrate_page``)."""
    selected = {PREFETCHED_BY[name] for name in connection_node_fields(info) if name in PREFETCHED_BY}
    return PageNeeds(
        counts=COUNTS in selected,
        viewer_state=bool({VIEWER_LIKED, VIEWER_RETWEETED} & selected),
        authors=AUTHOR in selected,
    )


async def tweet_connection(info: Info, page: Page[CachedTweetDoc]) -> Connection[Tweet]:
    """A page of tweets as a connection, its selected relations prefetched (module doc).
    When the selection loads authors, a tweet whose author is missing drops out, in the
    same round of loads (a selection without them shows it: nothing of it is missing)."""
    fields = connection_node_fields(info)
    tweets = page.hydrated([Tweet.from_doc(doc) for doc in page.items])
    await prefetch_tweets(info, list(tweets.items), fields)
    if not any(PREFETCHED_BY.get(name) is AUTHOR for name in fields):
        return connection_of(tweets, lambda tweet: tweet)
    authors: list[UserDoc | None] = []
    for tweet in tweets.items:
        author = tweet._ready(AUTHOR)
        authors.append(None if author is NOT_LOADED else author)
    return connection_of(without_missing_authors(tweets, authors, "tweet"), lambda tweet: tweet)


@strawberry.type
class Comment(Node):
    id: strawberry.ID
    text: str
    created_at: datetime
    tweet_id: strawberry.Private[int]
    author_id: strawberry.Private[int]

    @classmethod
    def from_doc(cls, doc: CommentDoc) -> Comment:
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
