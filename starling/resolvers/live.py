"""The live streams behind the Subscription root.

Each stream checks its arguments and the viewer first (so a refusal reaches the client as
the operation's error, before anything streams), then returns an async generator that holds
one hub subscription for as long as the client listens: leaving it for any reason (the
client completes or disconnects, the server shuts down) unsubscribes at once.

Events carry IDs; every event is hydrated through a fresh set of loaders (a WebSocket keeps
one context for its whole life, and counts must not be those of the first event).

**homeFeed** listens on the viewer's feed channel, which the fan-out publishes on per
follower in the same pipeline that writes the timelines (and ``publish`` for the author's
own tweet), and on the author channel of each author the viewer's feed merges at read time
(celebrities are not fanned out: ``publish`` announces every tweet once on its author's
channel, and only followers of merged authors listen there). The merged authors are those
of the moment the subscription starts: following a celebrity later, or an author crossing
the threshold, takes effect on the next subscription. A tweet announced on both channels
(an author crossing over, a retried fan-out) is delivered once. The fan-out publishes only to
followers marked present (``store.pubsub.Presence``): the stream marks its viewer present
before it subscribes, and the hub renews the mark for as long as the stream runs.

**Resuming** (``homeFeed(after:)``, ``homeFeedEvents(after:)``, ``after`` the ID of the
last tweet the client saw): the stream subscribes, waits until Redis confirms its channels
(``EventHub.until_live``), and only then reads what entered the feed since ``after`` (the
read ``homeFeed`` pages use, ``resolvers.feed.feed_ids``), oldest first, while live events
buffer in its hub queue; then the live ones, each tweet once. Writers announce a tweet
only after its timeline write (``workers.fanout.deliver_batch``), so a tweet is either in
that read or announced after the stream listens: no gap at the seam. The replay is at most
``PAGE_SIZE_MAX`` tweets, the newest; when more were missed, the first replayed result
carries ``extensions: {"missed": true}`` (the client pages the ``homeFeed`` query for the
rest).

**homeFeedEvents** is the same stream with deletions: a retraction is announced on the
same channels (``kind: deleted``), as ``TweetDeleted``; ``homeFeed`` skips them.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypedDict

from prometheus_client import Counter

from starling.resolvers.context import RequestContext
from starling.resolvers.engagement import engagement_target
from starling.resolvers.errors import NotFound, RateLimited
from starling.resolvers.feed import feed_ids, followed_or_rebuilt
from starling.resolvers.pagination import Page
from starling.resolvers.relations import visible_tweets
from starling.resolvers.tweets import parse_tweet_id
from starling.store import celebrities
from starling.store.documents import CachedTweetDoc, NotificationDoc
from starling.store.notifications import notification_from_event
from starling.store.pubsub import Event, Presence, Subscriber, SubscriberDropped
from starling.store.pubsub.publishing import is_deletion
from starling.store.services import Services

log = logging.getLogger(__name__)


class ActivityRecord(TypedDict):
    """A ``tweetActivity`` event (``resolvers.activity``) with the tweet as it is now."""

    kind: str
    actor_id: int
    tweet_id: int
    comment_id: int | None
    tweet: CachedTweetDoc


@dataclass(frozen=True, slots=True)
class FeedChange:
    """A ``homeFeedEvents`` event: a tweet that entered the feed (``tweet`` its document)
    or left it (``tweet`` None: deleted)."""

    tweet_id: int
    tweet: CachedTweetDoc | None


TweetStream = AsyncGenerator[CachedTweetDoc, None]
FeedChangeStream = AsyncGenerator[FeedChange, None]
NotificationStream = AsyncGenerator[NotificationDoc, None]
ActivityStream = AsyncGenerator[ActivityRecord, None]

RECENT_TWEETS_REMEMBERED = 64
CONNECTION = "connection"  # the one key of a connection's own subscription count

LIVE_EVENTS_SENT = Counter(
    "starling_live_events_sent_total", "Live events a subscription has worked on (hydrated, executed, sent)"
)

# The extensions of the result the stream is about to yield (``schema.live_extensions``
# adds and clears them): a context variable, since a generator's body runs in the context
# of the operation's task, which also builds that result, and each operation its own task.
EVENT_EXTENSIONS: ContextVar[dict[str, Any] | None] = ContextVar("starling_event_extensions", default=None)
MISSED = "missed"  # the extension on the first replayed result when more were missed

FELL_BEHIND = (
    "This subscription was closed because it fell too far behind its events; "
    "read the current state and subscribe again."
)


Backlog = Callable[[], Awaitable[Sequence[Event]]]


async def listen(
    ctx: RequestContext, channels: Iterable[str], backlog: Backlog | None = None
) -> AsyncGenerator[Event, None]:
    """The events of ``channels`` for as long as the caller iterates; a subscription that
    falls too far behind ends with ``RATE_LIMITED`` (the client re-reads and resubscribes).
    With ``backlog``, its events come first: it is read once Redis delivers the channels,
    and what they announce meanwhile waits in the hub queue (see the module doc).

    Every subscription holds a place in its connection's count, and one without a viewer a
    place in its address's (``resolvers.capacity``); over either cap it ends at once with
    ``RATE_LIMITED``. Each event is worked on in a turn of the process's pace: from here
    until the caller asks for the next one (hydrated, executed, sent), so however many
    watch, only a few are worked on at a time."""
    anonymous = await ctx.viewer() is None
    with contextlib.ExitStack() as places:
        if ctx.subscriptions is not None:
            places.enter_context(ctx.subscriptions.hold(CONNECTION))
        if ctx.live is not None and anonymous:
            places.enter_context(ctx.live.anonymous_subscriptions.hold(ctx.client_address))
        hub = ctx.require_hub()
        with hub.subscribe(channels) as subscriber:
            replayed: Sequence[Event] = ()
            if backlog is not None:
                await hub.until_live(subscriber)
                replayed = await backlog()
            try:
                async for event in _replayed_then_live(replayed, subscriber):
                    async with _turn(ctx):
                        ctx.forget_loaders()
                        yield event
                        LIVE_EVENTS_SENT.inc()
            except SubscriberDropped:
                raise RateLimited(FELL_BEHIND) from None


async def _replayed_then_live(replayed: Sequence[Event], subscriber: Subscriber) -> AsyncIterator[Event]:
    for event in replayed:
        yield event
    async for event in subscriber:
        yield event


def _turn(ctx: RequestContext) -> contextlib.AbstractAsyncContextManager[None]:
    return ctx.live.pace.turn() if ctx.live is not None else contextlib.nullcontext()


async def merged_followees(services: Services, reader_id: int) -> list[int]:
    """The authors the reader's feed merges at read time (``store.celebrities``): the
    same cached set ``homeFeed`` pages read, rebuilt the same way when it is stale."""
    async with services.redis.pipeline(transaction=False) as pipe:
        celebrities.queue_read_followed(services, pipe, reader_id)
        members, epoch = await pipe.execute()
    return await followed_or_rebuilt(services, reader_id, members, epoch)


async def home_feed(ctx: RequestContext, after: str | None = None) -> TweetStream:
    """Tweets as they enter the viewer's feed; with ``after``, those since it first."""
    return _posted(await home_feed_events(ctx, after))


async def _posted(changes: FeedChangeStream) -> TweetStream:
    async with contextlib.aclosing(changes):
        async for change in changes:
            if change.tweet is not None:
                yield change.tweet


async def home_feed_events(ctx: RequestContext, after: str | None = None) -> FeedChangeStream:
    """Tweets entering and leaving the viewer's feed; with ``after``, those that entered
    since it first."""
    viewer = await ctx.require_viewer()
    after_id = parse_tweet_id(after) if isinstance(after, str) else None  # unset, null: live only
    return _feed_changes(ctx, viewer.user_id, await feed_channels(ctx.services, viewer.user_id), after_id)


async def feed_channels(services: Services, viewer_id: int) -> list[str]:
    """The channels a home feed listens on: the viewer's own and its merged authors'."""
    keys = services.keys
    channels = [keys.feed_events(viewer_id)]
    channels += [keys.author_events(author) for author in await merged_followees(services, viewer_id)]
    return channels


def feed_presence(ctx: RequestContext) -> Presence:
    """The presence set the fan-out reads to publish to home feed subscribers."""
    services = ctx.services
    return ctx.require_hub().presence(
        "feed", services.keys.feed_presence_of, services.settings.presence_ttl_seconds
    )


@dataclass(slots=True)
class _Replay:
    """What a resuming stream missed, read once it listens: the feed's tweets newer than
    ``after``, oldest first, at most ``PAGE_SIZE_MAX`` (the newest of them); ``more``:
    older ones were missed too."""

    services: Services
    viewer_id: int
    after: int
    more: bool = False

    async def __call__(self) -> list[Event]:
        limit = self.services.settings.page_size_max
        # Blocks and mutes are applied as each tweet is shown, as for live ones.
        newest_first, _ = await feed_ids(self.services, self.viewer_id, None, limit + 1)
        since = [tweet_id for tweet_id in newest_first if tweet_id > self.after]
        self.more = len(since) > limit
        if self.more:
            log.info("a resumed home feed missed more than %d tweets; replaying the newest", limit)
        # Each as the live event that would have announced it.
        return [{"tweet_id": tweet_id} for tweet_id in reversed(since[:limit])]


async def _feed_changes(
    ctx: RequestContext, viewer_id: int, channels: list[str], after: int | None
) -> FeedChangeStream:
    # The same tweet can be announced twice: a retried fan-out job, or an author who became
    # a celebrity (author channel) while their fan-out still runs; and a replayed tweet can
    # be announced live too, at the seam. Say it once: the replay is remembered whole.
    services = ctx.services
    replay = _Replay(services, viewer_id, after) if after is not None else None
    recent: deque[int] = deque(maxlen=RECENT_TWEETS_REMEMBERED + services.settings.page_size_max)
    mark_missed = True
    presence = feed_presence(ctx)
    async with presence.hold(viewer_id), contextlib.aclosing(listen(ctx, channels, replay)) as events:
        async for event in events:
            tweet_id = event["tweet_id"]
            if is_deletion(event):
                yield FeedChange(tweet_id, None)
                continue
            if tweet_id in recent:
                continue
            recent.append(tweet_id)
            tweet = await (await ctx.loaders()).tweets.load(tweet_id)
            if tweet is None:  # deleted meanwhile
                continue
            page = Page(items=[tweet], positions=[tweet_id], has_next_page=False)
            if not (await visible_tweets(ctx, page, feed=True)).items:  # blocks, mutes as now
                continue
            if mark_missed and replay is not None and replay.more:
                EVENT_EXTENSIONS.set({MISSED: True})
            mark_missed = False
            yield FeedChange(tweet_id, tweet)


async def notifications(ctx: RequestContext) -> NotificationStream:
    viewer = await ctx.require_viewer()
    return _notifications(ctx, ctx.services.keys.notification_events(viewer.user_id))


async def _notifications(ctx: RequestContext, channel: str) -> NotificationStream:
    async with contextlib.aclosing(listen(ctx, [channel])) as events:
        async for event in events:
            yield notification_from_event(event)


async def tweet_activity(ctx: RequestContext, tweet_id: str) -> ActivityStream:
    """Likes, comments and retweets of one live tweet, open to anyone. Watching a retweet
    watches its original, which is what engaging with a retweet acts on. Blocks hold as on
    every read (``resolvers.relations``): a tweet whose author (or original's author) a
    block stands between with the viewer is NOT_FOUND, as ``tweet(id)`` is null, and the
    activity of users a block stands between with the viewer is left out."""
    named, target = await engagement_target(ctx, tweet_id)
    if {named["author_id"], target["author_id"]} & (await ctx.relations()).hidden_everywhere:
        raise NotFound(f"No tweet {tweet_id}.")
    return _activity(ctx, ctx.services.keys.tweet_events(target["_id"]))


async def _activity(ctx: RequestContext, channel: str) -> ActivityStream:
    """Activity records: the event plus the tweet document as it is now."""
    async with contextlib.aclosing(listen(ctx, [channel])) as events:
        async for event in events:
            if event["actor_id"] in (await ctx.relations()).hidden_everywhere:
                continue
            tweet = await (await ctx.loaders()).tweets.load(event["tweet_id"])
            if tweet is not None:
                yield {
                    "kind": event["kind"],
                    "actor_id": event["actor_id"],
                    "tweet_id": event["tweet_id"],
                    "comment_id": event.get("comment_id"),
                    "tweet": tweet,
                }
