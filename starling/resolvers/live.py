"""The live streams behind the Subscription root.

Each stream checks its arguments and the viewer first (so a refusal reaches the client as
the operation's error, before anything streams), then returns an async generator that holds
one hub subscription for as long as the client listens: leaving it for any reason (the
client completes or disconnects, the server shuts down) unsubscribes at once.

Events carry IDs; every event is hydrated through a fresh set of loaders (a WebSocket keeps
one context for its whole life, and counts must not be those of the first event).

**homeFeed** listens on the viewer's feed channel, which the fan-out publishes on per
follower in the same pipeline that writes the timelines (and ``publish`` for the author's
own tweet), and on the author channel of each celebrity the viewer follows (celebrities
are not fanned out; their tweets are merged at read time, so their posts are announced
once, on the author channel). The celebrities are those followed when the subscription
starts: following a celebrity later takes effect on the next subscription.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from starling.resolvers.context import RequestContext
from starling.resolvers.errors import NotFound, RateLimited
from starling.resolvers.follows import followed_ids
from starling.resolvers.notifications import notification_from_event
from starling.resolvers.tweets import parse_tweet_id
from starling.store.pubsub import Event, SubscriberDropped
from starling.store.services import Services

Doc = dict[str, Any]
Stream = AsyncGenerator[Doc, None]

RECENT_TWEETS_REMEMBERED = 64

FELL_BEHIND = (
    "This subscription was closed because it fell too far behind its events; "
    "read the current state and subscribe again."
)


async def _events(ctx: RequestContext, channels: Iterable[str]) -> AsyncGenerator[Event, None]:
    with ctx.require_hub().subscribe(channels) as subscriber:
        try:
            async for event in subscriber:
                ctx.forget_loaders()
                yield event
        except SubscriberDropped:
            raise RateLimited(FELL_BEHIND) from None


async def followed_celebrities(services: Services, user_id: int) -> list[int]:
    """Whom the user follows among authors who are merged at read time, not fanned out."""
    followees = await followed_ids(services, user_id)
    if not followees:
        return []
    docs = await services.db.users.find(
        {"_id": {"$in": followees}, "followers_count": {"$gt": services.settings.celebrity_followers}},
        {"_id": 1},
    ).to_list()
    return [doc["_id"] for doc in docs]


async def home_feed(ctx: RequestContext) -> Stream:
    viewer = await ctx.require_viewer()
    keys = ctx.services.keys
    channels = [keys.feed_events(viewer.user_id)]
    channels += [
        keys.author_events(author) for author in await followed_celebrities(ctx.services, viewer.user_id)
    ]
    return _tweets(ctx, channels)


async def _tweets(ctx: RequestContext, channels: list[str]) -> Stream:
    # The same tweet can be announced twice: a retried fan-out job, or an author who became
    # a celebrity (author channel) while their fan-out still runs. Say it once.
    recent: deque[int] = deque(maxlen=RECENT_TWEETS_REMEMBERED)
    async with contextlib.aclosing(_events(ctx, channels)) as events:
        async for event in events:
            tweet_id = event["tweet_id"]
            if tweet_id in recent:
                continue
            recent.append(tweet_id)
            tweet = await (await ctx.loaders()).tweets.load(tweet_id)
            if tweet is not None:  # deleted meanwhile
                yield tweet


async def notifications(ctx: RequestContext) -> Stream:
    viewer = await ctx.require_viewer()
    return _notifications(ctx, ctx.services.keys.notification_events(viewer.user_id))


async def _notifications(ctx: RequestContext, channel: str) -> Stream:
    async with contextlib.aclosing(_events(ctx, [channel])) as events:
        async for event in events:
            yield notification_from_event(event)


async def tweet_activity(ctx: RequestContext, tweet_id: str) -> Stream:
    """Likes, comments and retweets of one tweet; anyone may watch a live tweet."""
    tid = parse_tweet_id(tweet_id)
    if await (await ctx.loaders()).tweets.load(tid) is None:
        raise NotFound(f"No tweet {tweet_id}.")
    return _activity(ctx, ctx.services.keys.tweet_events(tid))


async def _activity(ctx: RequestContext, channel: str) -> Stream:
    """Activity records: the event plus the tweet document as it is now."""
    async with contextlib.aclosing(_events(ctx, [channel])) as events:
        async for event in events:
            tweet = await (await ctx.loaders()).tweets.load(event["tweet_id"])
            if tweet is not None:
                yield {**event, "tweet": tweet}
