"""The event hub on a real Redis: one connection, reference-counted channels, slow
subscribers dropped, recovery after the connection is killed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from starling.resolvers.context import RequestContext
from starling.resolvers.errors import RateLimited
from starling.resolvers.live import listen
from starling.store.keys import Keys, presence_shard
from starling.store.pubsub import (
    EventHub,
    Presence,
    Subscriber,
    SubscriberDropped,
    publish,
    queue_live_feed_events,
)
from tests.api import eventually


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    # A client name of its own lets a test find (and kill) the hub's connection.
    client = Redis.from_url(redis_url, client_name=f"hub-test-{uuid.uuid4().hex[:12]}")
    yield client
    await client.aclose()


@pytest.fixture
async def hub(redis: Redis) -> AsyncIterator[EventHub]:
    started = EventHub(redis, queue_size=3, ping_seconds=0.5, reconnect_seconds=0.05)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
def channel() -> str:
    return f"hubtest:{uuid.uuid4().hex}"


@pytest.fixture
def keys() -> Keys:
    return Keys(f"presencetest:{uuid.uuid4().hex}:")


async def subscribed(redis: Redis, channel: str, expected: int = 1) -> None:
    """Wait until Redis reports ``expected`` connections subscribed to ``channel``."""

    async def check() -> bool:
        [(_, count)] = await redis.pubsub_numsub(channel)
        return count == expected

    await eventually(check)


async def next_event(subscriber: Subscriber) -> dict:
    return await asyncio.wait_for(anext(subscriber), 2)


async def test_local_subscribers_share_one_redis_subscription(
    hub: EventHub, redis: Redis, channel: str
) -> None:
    other = channel + ":other"
    first, second, third = hub.subscribe([channel]), hub.subscribe([channel]), hub.subscribe([other])
    await subscribed(redis, channel)
    await subscribed(redis, other)
    assert hub.subscriber_count == 3 and hub.channels == {channel, other}

    assert await publish(redis, channel, {"n": 1}) == 1  # one connection, whatever the subscribers
    assert await next_event(first) == {"n": 1}
    assert await next_event(second) == {"n": 1}

    first.close()
    await publish(redis, channel, {"n": 2})
    assert await next_event(second) == {"n": 2}
    assert hub.channels == {channel, other}

    second.close()
    third.close()
    assert hub.subscriber_count == 0 and hub.channels == frozenset()
    await subscribed(redis, channel, 0)
    await subscribed(redis, other, 0)


async def test_a_subscriber_that_falls_behind_is_dropped_alone(
    hub: EventHub, redis: Redis, channel: str
) -> None:
    slow, fast = hub.subscribe([channel]), hub.subscribe([channel])
    await subscribed(redis, channel)
    received = []
    for n in range(6):  # the queue holds 3
        await publish(redis, channel, {"n": n})
        received.append(await next_event(fast))
    assert [event["n"] for event in received] == list(range(6))
    with pytest.raises(SubscriberDropped):
        await next_event(slow)
    assert hub.subscriber_count == 1
    fast.close()


async def test_leaving_the_block_unsubscribes_even_when_cancelled(
    hub: EventHub, redis: Redis, channel: str
) -> None:
    async def consume() -> None:
        with hub.subscribe([channel]) as subscriber:
            async for _ in subscriber:
                pass

    task = asyncio.create_task(consume())
    await subscribed(redis, channel)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub.subscriber_count == 0 and hub.channels == frozenset()
    await subscribed(redis, channel, 0)


async def test_the_hub_resubscribes_after_losing_its_connection(
    hub: EventHub, redis: Redis, channel: str
) -> None:
    subscriber = hub.subscribe([channel])
    await subscribed(redis, channel)
    name = (await redis.client_info())["name"]
    clients = await redis.client_list()
    victims = [client["id"] for client in clients if client["name"] == name and int(client["sub"])]
    assert len(victims) == 1
    await redis.client_kill_filter(_id=victims[0])

    async def delivered() -> bool:
        await publish(redis, channel, {"after": "reconnect"})
        try:
            return await asyncio.wait_for(anext(subscriber), 0.2) == {"after": "reconnect"}
        except TimeoutError:
            return False

    await eventually(delivered)
    subscriber.close()


async def test_until_live_returns_once_redis_delivers_the_channels(
    hub: EventHub, redis: Redis, channel: str
) -> None:
    """What a resuming stream relies on: after ``until_live`` nothing published is missed,
    with no waiting on Redis' own view; also after an unsubscribe and a resubscribe race."""
    for _ in range(3):
        subscriber = hub.subscribe([channel])
        await asyncio.wait_for(hub.until_live(subscriber), 2)
        assert await publish(redis, channel, {"n": 1}) == 1
        assert await next_event(subscriber) == {"n": 1}
        subscriber.close()  # the next round subscribes again while this UNSUBSCRIBE travels


async def test_until_live_returns_when_the_subscriber_leaves(hub: EventHub, channel: str) -> None:
    subscriber = hub.subscribe([channel])
    waiting = asyncio.ensure_future(hub.until_live(subscriber))
    subscriber.close()
    await asyncio.wait_for(waiting, 2)


async def test_stopping_the_hub_ends_every_subscription(redis: Redis, channel: str) -> None:
    hub = EventHub(redis, queue_size=3, ping_seconds=0.5, reconnect_seconds=0.05)
    await hub.start()
    subscriber = hub.subscribe([channel])
    await hub.stop()
    with pytest.raises(StopAsyncIteration):
        await next_event(subscriber)
    assert hub.subscriber_count == 0


async def test_a_subscription_that_falls_behind_ends_with_rate_limited(
    hub: EventHub, redis: Redis, channel: str
) -> None:
    """What a GraphQL client then sees: the stream ends with a RATE_LIMITED error."""
    ctx = RequestContext(services=None, hub=hub)  # type: ignore[arg-type]  # the stream needs only the hub
    events = listen(ctx, [channel])
    first = asyncio.ensure_future(anext(events))
    await subscribed(redis, channel)
    await publish(redis, channel, {"n": 0})
    assert await first == {"n": 0}
    for n in range(1, 6):  # nobody reads: the queue of 3 overflows
        await publish(redis, channel, {"n": n})

    async def dropped() -> bool:
        return hub.subscriber_count == 0

    await eventually(dropped)
    with pytest.raises(RateLimited) as ended:
        await anext(events)
    assert ended.value.code == "RATE_LIMITED"


# -- presence: whom the fan-out publishes to -----------------------------------------------

TTL = 0.6  # renewed every 0.2 s


async def online(redis: Redis, keys: Keys, user_ids: list[int]) -> int:
    """How many of ``user_ids`` the fan-out's live-feed script finds online."""
    async with redis.pipeline(transaction=False) as pipe:
        queue_live_feed_events(pipe, keys, user_ids, [1])
        replies = await pipe.execute()
    return sum(replies)  # a reply per presence shard


async def test_a_viewer_stays_online_while_any_process_holds_them(redis: Redis, keys: Keys) -> None:
    first, second = (Presence(redis, "feed", keys.feed_presence_of, TTL) for _ in range(2))  # two processes
    viewer, other = 1, 2
    async with first.hold(viewer):
        async with first.hold(viewer):  # a second local subscription of the same viewer
            pass
        assert first.holders == {viewer}
        async with second.hold(viewer), second.hold(other):
            assert await online(redis, keys, [viewer, other, 3]) == 2
        assert second.holders == frozenset()
        await asyncio.sleep(4 * TTL)  # only the first process's renewals keep an entry alive
        assert await online(redis, keys, [viewer, other]) == 1
    await asyncio.sleep(1.5 * TTL)
    assert await online(redis, keys, [viewer]) == 0  # left to expire, as nobody renews it


async def test_the_presence_of_a_process_that_stops_renewing_expires_and_is_pruned(
    redis: Redis, keys: Keys
) -> None:
    crashed, survivor = (Presence(redis, "feed", keys.feed_presence_of, TTL) for _ in range(2))
    async with crashed.hold(1):
        await crashed.stop()  # what dying does to it: no more renewals, no goodbye
        assert await online(redis, keys, [1]) == 1
        await asyncio.sleep(1.5 * TTL)
        assert await online(redis, keys, [1]) == 0  # still in the set, but expired
        assert await redis.zscore(keys.feed_presence_of(1), "1") is not None
        # Any other process's write to that shard prunes it.
        same_shard = next(user for user in range(2, 1000) if presence_shard(user) == presence_shard(1))
        async with survivor.hold(same_shard):
            assert await redis.zrange(keys.feed_presence_of(1), 0, -1) == [str(same_shard).encode()]


async def test_the_live_feed_script_reaches_exactly_the_online_users_of_a_large_batch(
    hub: EventHub, redis: Redis, keys: Keys
) -> None:
    """Users at both edges of the script's ZMSCORE chunks of 1000, two tweets at once."""
    batch = list(range(1, 2501))
    present = [batch[0], batch[999], batch[1000], batch[-1]]
    absent = batch[500]
    seconds, _ = await redis.time()
    for user in present:
        await redis.zadd(keys.feed_presence_of(user), {str(user): seconds + 60})
    subscribers = {user: hub.subscribe([keys.feed_events(user)]) for user in [*present, absent]}
    for user in subscribers:
        await subscribed(redis, keys.feed_events(user))
    async with redis.pipeline(transaction=False) as pipe:
        queue_live_feed_events(pipe, keys, batch, [7, 8])
        assert sum(await pipe.execute()) == len(present)
    for user in present:
        assert [await next_event(subscribers[user]) for _ in range(2)] == [{"tweet_id": 7}, {"tweet_id": 8}]
    await publish(redis, keys.feed_events(absent), {"marker": True})
    assert await next_event(subscribers[absent]) == {"marker": True}
    for subscriber in subscribers.values():
        subscriber.close()
