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
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Iterable
from typing import TypedDict

from prometheus_client import Counter

from starling.resolvers.context import RequestContext
from starling.resolvers.engagement import engagement_target
from starling.resolvers.errors import RateLimited
from starling.resolvers.feed import followed_or_rebuilt
from starling.resolvers.pagination import Page
from starling.resolvers.relations import visible_tweets
from starling.store import celebrities
from starling.store.documents import CachedTweetDoc, NotificationDoc
from starling.store.notifications import notification_from_event
from starling.store.pubsub import Event, SubscriberDropped
from starling.store.services import Services


class ActivityRecord(TypedDict):
    """A ``tweetActivity`` event (``resolvers.activity``) with the tweet as it is now."""

    kind: str
    actor_id: int
    tweet_id: int
    comment_id: int | None
    tweet: CachedTweetDoc


TweetStream = AsyncGenerator[CachedTweetDoc, None]
NotificationStream = AsyncGenerator[NotificationDoc, None]
ActivityStream = AsyncGenerator[ActivityRecord, None]

RECENT_TWEETS_REMEMBERED = 64
CONNECTION = "connection"  # the one key of a connection's own subscription count

LIVE_EVENTS_SENT = Counter(
    "starling_live_events_sent_total", "Live events a subscription has worked on (hydrated, executed, sent)"
)

FELL_BEHIND = (
    "This subscription was closed because it fell too far behind its events; "
    "read the current state and subscribe again."
)


async def listen(ctx: RequestContext, channels: Iterable[str]) -> AsyncGenerator[Event, None]:
    """The events of ``channels`` for as long as the caller iterates; a subscription that
    falls too far behind ends with ``RATE_LIMITED`` (the client re-reads and resubscribes).

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
        with ctx.require_hub().subscribe(channels) as subscriber:
            try:
                async for event in subscriber:
                    async with _turn(ctx):
                        ctx.forget_loaders()
                        yield event
                        LIVE_EVENTS_SENT.inc()
            except SubscriberDropped:
                raise RateLimited(FELL_BEHIND) from None


def _turn(ctx: RequestContext) -> contextlib.AbstractAsyncContextManager[None]:
    return ctx.live.pace.turn() if ctx.live is not None else contextlib.nullcontext()


async def merged_followees(services: Services, reader_id: int) -> list[int]:
    """The authors the reader's feed merges at read time (``store.celebrities``): the
    same cached set ``homeFeed`` pages read, rebuilt the same way when it is stale."""
    async with services.redis.pipeline(transaction=False) as pipe:
        celebrities.queue_read_followed(services, pipe, reader_id)
        members, epoch = await pipe.execute()
    return await followed_or_rebuilt(services, reader_id, members, epoch)


async def home_feed(ctx: RequestContext) -> TweetStream:
    viewer = await ctx.require_viewer()
    keys = ctx.services.keys
    channels = [keys.feed_events(viewer.user_id)]
    channels += [
        keys.author_events(author) for author in await merged_followees(ctx.services, viewer.user_id)
    ]
    return _tweets(ctx, viewer.user_id, channels)


async def _tweets(ctx: RequestContext, viewer_id: int, channels: list[str]) -> TweetStream:
    # The same tweet can be announced twice: a retried fan-out job, or an author who became
    # a celebrity (author channel) while their fan-out still runs. Say it once.
    recent: deque[int] = deque(maxlen=RECENT_TWEETS_REMEMBERED)
    services = ctx.services
    presence = ctx.require_hub().presence(
        "feed", services.keys.feed_presence_of, services.settings.presence_ttl_seconds
    )
    async with presence.hold(viewer_id), contextlib.aclosing(listen(ctx, channels)) as events:
        async for event in events:
            tweet_id = event["tweet_id"]
            if tweet_id in recent:
                continue
            recent.append(tweet_id)
            tweet = await (await ctx.loaders()).tweets.load(tweet_id)
            if tweet is not None:  # deleted meanwhile
                page = Page(items=[tweet], positions=[tweet_id], has_next_page=False)
                if (await visible_tweets(ctx, page, feed=True)).items:  # blocks, mutes as now
                    yield tweet


async def notifications(ctx: RequestContext) -> NotificationStream:
    viewer = await ctx.require_viewer()
    return _notifications(ctx, ctx.services.keys.notification_events(viewer.user_id))


async def _notifications(ctx: RequestContext, channel: str) -> NotificationStream:
    async with contextlib.aclosing(listen(ctx, [channel])) as events:
        async for event in events:
            yield notification_from_event(event)


async def tweet_activity(ctx: RequestContext, tweet_id: str) -> ActivityStream:
    """Likes, comments and retweets of one live tweet, open to anyone. Watching a retweet
    watches its original, which is what engaging with a retweet acts on."""
    _, target = await engagement_target(ctx, tweet_id)
    return _activity(ctx, ctx.services.keys.tweet_events(target["_id"]))


async def _activity(ctx: RequestContext, channel: str) -> ActivityStream:
    """Activity records: the event plus the tweet document as it is now."""
    async with contextlib.aclosing(listen(ctx, [channel])) as events:
        async for event in events:
            tweet = await (await ctx.loaders()).tweets.load(event["tweet_id"])
            if tweet is not None:
                yield {
                    "kind": event["kind"],
                    "actor_id": event["actor_id"],
                    "tweet_id": event["tweet_id"],
                    "comment_id": event.get("comment_id"),
                    "tweet": tweet,
                }
