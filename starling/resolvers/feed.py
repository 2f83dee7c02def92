"""The home feed: the viewer's Redis timeline merged with the recent tweets of the
celebrities they follow, each source rebuilt from MongoDB when it is lost.

A page costs the same whatever ``first``: one pipeline reads the timeline's page (IDs
older than the cursor, ``first + 1`` of them), whether the timeline is built, refreshes
its TTL, and reads the viewer's cached set of followed celebrities with the celebrity
epoch (``store.celebrities``); a second pipeline, only for viewers who follow
celebrities, reads the same page of each of their author lists. The sources are merged
newest first without repeats and cut to ``first + 1``. The cursor is the last tweet ID
shown: every source is cut at that same bound, so pages continue exactly across sources.

A lost source (a missing key, expired, flushed, never built) is rebuilt from MongoDB under
a lock per key, so one reader rebuilds it once; readers arriving meanwhile are served from
their own MongoDB query without writing, and writers keep writing into the key while the
lock is held (``store.timelines``), so nothing posted during the rebuild is missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiodataloader import DataLoader

from starling.loaders import Loaders
from starling.loaders.documents import cached_tweets, queue_tweet_reads
from starling.loaders.engagement import answer_engagement
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import StarlingError
from starling.resolvers.follows import followed_ids
from starling.resolvers.pagination import Page, after_position, check_first
from starling.resolvers.relations import visible_tweets
from starling.resolvers.retweets import drop_hidden_retweets
from starling.store import celebrities, relations, user_cache, viewer_engagement
from starling.store.counters import Counters
from starling.store.documents import CachedTweetDoc
from starling.store.keys import Keys
from starling.store.redis import DataPipeline
from starling.store.relations import Relations
from starling.store.services import Services
from starling.store.timelines import decode_members, is_built
from starling.store.tweets import LIVE, recent_tweet_ids
from starling.store.viewer_engagement import Engagement

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class FollowGraph:
    """Whom a reader follows, and which of them are celebrities now (MongoDB)."""

    followees: list[int]
    celebrities: set[int]


async def follow_graph(services: Services, user_id: int) -> FollowGraph:
    followees = await followed_ids(services, user_id)
    return FollowGraph(followees, await celebrities.celebrities_among(services, followees))


async def timeline_from_mongo(
    services: Services, user_id: int, graph: FollowGraph | None = None
) -> list[int]:
    """What the user's home timeline should hold: the newest tweets of everyone they follow
    but celebrities (merged at read time), and their own, newest first, capped at
    ``timeline_max``, all from MongoDB (an ``$in`` over every followee: what rebuilds did
    before ``timeline_from_author_lists``, and what the benchmark's checks compare with)."""
    graph = graph or await follow_graph(services, user_id)
    authors = [followee for followee in graph.followees if followee not in graph.celebrities]
    docs = (
        await services.db.tweets.find({"author_id": {"$in": [*authors, user_id]}, **LIVE}, {"_id": 1})
        .sort("_id", -1)
        .limit(services.settings.timeline_max)
        .to_list()
    )
    return [doc["_id"] for doc in docs]


async def timeline_from_author_lists(
    services: Services, user_id: int, graph: FollowGraph | None = None
) -> list[int]:
    """What a rebuilt home timeline holds, read mostly from the author lists Redis keeps:
    the newest ``timeline_max`` tweets of the user and of at most ``rebuild_followees_max``
    of the authors they follow (celebrities are merged at read time).

    One pipeline reads each author list's newest entry and built marker; the authors with
    built lists are ranked by that entry (most recently active first), and the lists of the
    top ones are read in a second pipeline. Authors whose lists are lost fill what the cap
    leaves, read with one MongoDB query (an ``$in`` of at most the cap, below the planner's
    merge limit, on the ``(author_id, deleted, _id)`` index); more lost authors than that
    are left out of this rebuild. Each author counts with at most ``author_tweets_max``
    tweets (the length of their list)."""
    graph = graph or await follow_graph(services, user_id)
    authors = [user_id, *(followee for followee in graph.followees if followee not in graph.celebrities)]
    settings, timelines, keys = services.settings, services.timelines, services.keys
    async with services.redis.pipeline(transaction=False) as pipe:
        for author in authors:
            timelines.queue_page(pipe, keys.author_tweets(author), None, 1)
            timelines.queue_is_built(pipe, keys.author_tweets(author))
        replies = await pipe.execute()
    newest: dict[int, int] = {}
    lost: list[int] = []
    for author, page, sentinel in zip(authors, replies[::2], replies[1::2], strict=True):
        if not is_built(sentinel):
            lost.append(author)
        elif ids := decode_members(page)[0]:
            newest[author] = ids[0]
    cap = settings.rebuild_followees_max
    active = sorted(newest, key=newest.__getitem__, reverse=True)[:cap]
    lost = lost[: cap - len(active)]
    sources: list[Sequence[int]] = []
    if active:
        async with services.redis.pipeline(transaction=False) as pipe:
            for author in active:
                timelines.queue_page(pipe, keys.author_tweets(author), None, settings.author_tweets_max)
            sources += [decode_members(page)[0] for page in await pipe.execute()]
    if lost:
        docs = (
            await services.db.tweets.find({"author_id": {"$in": lost}, **LIVE}, {"_id": 1})
            .sort("_id", -1)
            .limit(settings.timeline_max)
            .to_list()
        )
        sources.append([doc["_id"] for doc in docs])
    return merge_newest_first(sources, settings.timeline_max)


async def rebuild_timeline(services: Services, user_id: int, graph: FollowGraph | None = None) -> list[int]:
    """Rebuild a lost home timeline (``timeline_from_author_lists``); returns its content."""
    return await _rebuild_once(
        services,
        services.keys.home_timeline(user_id),
        lambda: timeline_from_author_lists(services, user_id, graph),
        services.timelines.store_timeline,
    )


async def rebuild_author_tweets(services: Services, author_id: int) -> list[int]:
    """Rebuild a lost author list; returns its content."""
    return await _rebuild_once(
        services,
        services.keys.author_tweets(author_id),
        lambda: recent_tweet_ids(services, author_id, services.settings.author_tweets_max),
        services.timelines.store_author_tweets,
    )


async def _rebuild_once(
    services: Services,
    key: str,
    load: Callable[[], Awaitable[list[int]]],
    store: Callable[[str, Sequence[int]], Awaitable[None]],
) -> list[int]:
    """Load a list from MongoDB and, if no one else is rebuilding ``key``, store it. The
    lock is taken before the query, so writers add what is posted during it (see module)."""
    lock = Keys.rebuild_lock(key)
    acquired = await services.redis.set(lock, 1, nx=True, ex=services.settings.rebuild_lock_seconds)
    async with services.rebuild_slots:  # admitted at a bounded rate per process (Services)
        tweet_ids = await load()
    if acquired:
        try:
            await store(key, tweet_ids)
        finally:
            await services.redis.delete(lock)
    return tweet_ids


def _page_of(tweet_ids: Iterable[int], before: int | None, count: int) -> list[int]:
    return sorted((tid for tid in tweet_ids if before is None or tid < before), reverse=True)[:count]


def merge_newest_first(sources: Iterable[Sequence[int]], count: int) -> list[int]:
    """The ``count`` newest IDs of all sources together, each once."""
    return sorted(set().union(*sources), reverse=True)[:count]


async def home_feed(
    ctx: RequestContext, first: int | None, after: str | None, needs: PageNeeds | None = None
) -> Page[CachedTweetDoc]:
    viewer = await ctx.require_viewer()
    services = ctx.services
    first = check_first(first, services.settings.page_size_max)
    before = after_position(after)
    name = _plan_name(before, first + 1)
    planned = ctx.first_trip.take(name, viewer.user_id)
    hinted = ctx.first_trip.noted(name, ()) if planned is not None else ()
    ids, found = await feed_ids(services, viewer.user_id, before, first + 1, planned, hinted)
    ctx.know_relations(found)
    return await hydrate_page(ctx, ids, first, needs or PageNeeds())


def plan_home_feed(ctx: RequestContext, first: int | None, after: str | None) -> None:
    """Plan the page's first reads (``queue_page_plan``) into the request's first round trip
    (``resolvers.first_trip``); arguments ``home_feed`` would refuse plan nothing."""
    try:
        count = check_first(first, ctx.services.settings.page_size_max) + 1
        before = after_position(after)
    except StarlingError:
        return
    services, name = ctx.services, _plan_name(before, count)

    def queue(pipe: DataPipeline, reader_id: int) -> int:
        hinted = services.followed_hints.get(reader_id) or ()
        ctx.first_trip.note(name, hinted)
        return queue_page_plan(services, pipe, reader_id, before, count, hinted)

    ctx.first_trip.plan(name, queue)


def _plan_name(before: int | None, count: int) -> str:
    return f"home_feed:{before}:{count}"


def queue_page_plan(
    services: Services,
    pipe: DataPipeline,
    reader_id: int,
    before: int | None,
    count: int,
    hinted: Sequence[int] = (),
) -> int:
    """Queue every read a feed page needs before it knows its IDs, the one place they are
    listed: the timeline's page, whether it is built, its TTL renewal, the followed
    celebrities and their epoch, the reader's blocks and mutes (so the page's filter,
    ``resolvers.relations``, costs no round trip of its own). Returns how many replies
    (``feed_ids`` reads them in this order)."""
    timelines = services.timelines
    key = services.keys.home_timeline(reader_id)
    queued_before = len(pipe)
    timelines.queue_page(pipe, key, before, count)
    timelines.queue_is_built(pipe, key)
    timelines.queue_touch(pipe, key)
    celebrities.queue_read_followed(services, pipe, reader_id)
    relations.queue_read(services, pipe, reader_id)
    _queue_author_pages(services, pipe, hinted, before, count)  # last: ``feed_ids`` splits them off
    return len(pipe) - queued_before


def _queue_author_pages(
    services: Services, pipe: DataPipeline, authors: Sequence[int], before: int | None, count: int
) -> None:
    """Queue the same page of each author's list and its built marker (two replies each)."""
    for author in authors:
        key = services.keys.author_tweets(author)
        services.timelines.queue_page(pipe, key, before, count)
        services.timelines.queue_is_built(pipe, key)


async def feed_ids(
    services: Services,
    reader_id: int,
    before: int | None,
    count: int,
    planned: Sequence[Any] | None = None,
    hinted: Sequence[int] = (),
) -> tuple[list[int], Relations]:
    """Up to ``count`` IDs of the reader's feed older than ``before``, newest first, and the
    reader's blocks and mutes; ``planned``: the replies of ``queue_page_plan`` when the
    first round trip read them, with the author lists of the celebrities ``hinted`` (what
    the reader's last page merged, ``Services.followed_hints``)."""
    if planned is None:
        hinted = services.followed_hints.get(reader_id) or ()
        async with services.redis.pipeline(transaction=False) as pipe:
            queue_page_plan(services, pipe, reader_id, before, count, hinted)
            planned = await pipe.execute()
    split = len(planned) - 2 * len(hinted)
    page, sentinel, _, followed_raw, epoch, *relation_sets = planned[:split]
    found = await relations.relations_from(services, reader_id, relation_sets)
    own = decode_members(page)[0]
    graph: FollowGraph | None = None
    if not is_built(sentinel):
        graph = await follow_graph(services, reader_id)
        own = _page_of(await rebuild_timeline(services, reader_id, graph), before, count)
    followed = await followed_or_rebuilt(services, reader_id, followed_raw, epoch, graph)
    services.followed_hints.put(reader_id, tuple(followed), 1)
    if not followed:
        return own, found
    if list(hinted) == followed:  # the guess was right: the lists came with the first trip
        pages = await _author_pages_from(services, followed, planned[split:], before, count)
    else:
        pages = await _author_pages(services, followed, before, count)
    return merge_newest_first([own, *pages], count), found


async def followed_or_rebuilt(
    services: Services,
    reader_id: int,
    members: Iterable[bytes],
    epoch: bytes | None,
    graph: FollowGraph | None = None,
) -> list[int]:
    """The authors the reader merges, from the replies of ``celebrities.queue_read_followed``;
    a stale or lost set is rebuilt (``graph``: the follow graph, when the caller has read it
    already, so that one look at it serves a timeline rebuild too)."""
    followed = celebrities.decode_followed(members, epoch)
    if followed is not None:
        return followed
    graph = graph or await follow_graph(services, reader_id)
    return await celebrities.rebuild_followed(services, reader_id, graph.followees, graph.celebrities, epoch)


async def _author_pages(
    services: Services, authors: Sequence[int], before: int | None, count: int
) -> list[list[int]]:
    """The same page of each author's list, in one pipeline; lost lists are rebuilt."""
    async with services.redis.pipeline(transaction=False) as pipe:
        _queue_author_pages(services, pipe, authors, before, count)
        replies = await pipe.execute()
    return await _author_pages_from(services, authors, replies, before, count)


async def _author_pages_from(
    services: Services, authors: Sequence[int], replies: Sequence[Any], before: int | None, count: int
) -> list[list[int]]:
    """The pages of ``_queue_author_pages``'s replies; lost lists are rebuilt."""
    pages: list[list[int]] = []
    lost: list[int] = []
    for author, page, sentinel in zip(authors, replies[::2], replies[1::2], strict=True):
        if is_built(sentinel):
            pages.append(decode_members(page)[0])
        else:
            lost.append(author)
    rebuilt = await asyncio.gather(*(rebuild_author_tweets(services, author) for author in lost))
    return pages + [_page_of(tweet_ids, before, count) for tweet_ids in rebuilt]


@dataclass(frozen=True, slots=True)
class PageNeeds:
    """What the selection reads of each tweet besides the tweet: read with the tweets in
    the page's hydration round trip (``hydrate_page``)."""

    counts: bool = False
    viewer_state: bool = False  # viewerHasLiked / viewerHasRetweeted
    authors: bool = False


async def hydrate_page(
    ctx: RequestContext, ids: list[int], first: int, needs: PageNeeds = PageNeeds()
) -> Page[CachedTweetDoc]:
    """Tweets for up to ``first + 1`` IDs; deleted ones drop out, and so do retweets of
    deleted tweets and repeats (``resolvers.retweets``: de-duplication), and what the
    viewer's blocks and mutes hide (``resolvers.relations``).

    One Redis round trip reads the cached tweets, and what ``needs`` asks for each ID (its
    counts, the viewer's likes and retweets), into the request's loaders, so the page's
    fields answer from them; a second reads what the first could not name
    (``_prime_second_round``): the authors' profiles, and for retweets, whose engagement is
    their original's, the originals with their counts and the viewer's engagement. Misses
    fall back to MongoDB and fill the caches."""
    page = Page.from_rows([(tid, tid) for tid in ids], first)
    viewer_id = await ctx.viewer_id() if needs.viewer_state else None
    first_round = _TweetReads(ctx.services, list(page.items), needs.counts, viewer_id)
    async with ctx.services.redis.pipeline(transaction=False) as pipe:
        first_round.queue(pipe)
        replies = await pipe.execute()
    docs = await first_round.prime(await ctx.loaders(), replies)
    await _prime_second_round(ctx, [doc for doc in docs if doc is not None], needs, viewer_id)
    shown = await drop_hidden_retweets(ctx, page.hydrated(docs), collapse=True)
    return await visible_tweets(ctx, shown, feed=True)


@dataclass(frozen=True, slots=True)
class _TweetReads:
    """The cached tweets of ``tweet_ids`` and, when asked, their counts and the viewer's
    likes and retweets: queued on a caller's pipeline, then primed into the request's
    loaders from its replies (misses fall back to MongoDB and fill the caches)."""

    services: Services
    tweet_ids: list[int]
    counts: bool
    viewer_id: int | None

    def queue(self, pipe: DataPipeline) -> int:
        """Queue the reads; returns how many replies they take."""
        if not self.tweet_ids:
            return 0
        queued_before = len(pipe)
        queue_tweet_reads(self.services, pipe, self.tweet_ids)
        if self.counts:
            Counters(self.services).queue_read(pipe, self.tweet_ids)
        if self.viewer_id is not None:
            viewer_engagement.queue_read(self.services, pipe, self.viewer_id, self.tweet_ids)
        return len(pipe) - queued_before

    async def prime(self, loaders: Loaders, replies: Sequence[Any]) -> list[CachedTweetDoc | None]:
        """Prime the loaders from the replies of ``queue``; the tweets, in order."""
        services, tweet_ids = self.services, self.tweet_ids
        if not tweet_ids:
            return []
        blobs, rest = replies[: len(tweet_ids)], replies[len(tweet_ids) :]
        docs = await cached_tweets(services, tweet_ids, blobs)
        _prime(loaders.tweets, tweet_ids, docs)
        if self.counts:
            counters = Counters(services)
            counted = len(rest) - (self.viewer_id is not None)
            _prime(loaders.counts, tweet_ids, await counters.finish_read(tweet_ids, rest[:counted]))
        if self.viewer_id is not None:
            answers = viewer_engagement.parse_read(tweet_ids, rest[-1])
            engaged = await answer_engagement(services, self.viewer_id, tweet_ids, answers)
            _prime(loaders.viewer_likes, tweet_ids, engaged[Engagement.LIKED])
            _prime(loaders.viewer_retweets, tweet_ids, engaged[Engagement.RETWEETED])
        return docs


async def _prime_second_round(
    ctx: RequestContext, docs: Sequence[CachedTweetDoc], needs: PageNeeds, viewer_id: int | None
) -> None:
    """One pipeline for the page's authors (``needs.authors``) and its retweets' originals
    (``_TweetReads``: a retweet shows its original's engagement), primed into the loaders
    the fields and the retweet filters read."""
    services = ctx.services
    originals = list(dict.fromkeys(doc["retweet_of"] for doc in docs if doc.get("retweet_of") is not None))
    authors = list(dict.fromkeys(doc["author_id"] for doc in docs)) if needs.authors else []
    if not originals and not authors:
        return
    original_reads = _TweetReads(services, originals, needs.counts, viewer_id)
    async with services.redis.pipeline(transaction=False) as pipe:
        queued = original_reads.queue(pipe)
        user_cache.queue_read(services, pipe, authors)
        replies = await pipe.execute()
    loaders = await ctx.loaders()
    await original_reads.prime(loaders, replies[:queued])
    if authors:
        _prime(loaders.users, authors, await user_cache.load(services, authors, replies[queued:]))


def _prime(loader: DataLoader[int, V], keys: Sequence[int], values: Sequence[V]) -> None:
    for key, value in zip(keys, values, strict=True):
        loader.prime(key, value)
