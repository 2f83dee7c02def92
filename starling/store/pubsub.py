"""Live events: publishing them on Redis pub/sub, and the per-process hub that hands them to
local subscribers.

Publishers (request handlers, workers) ``PUBLISH`` small JSON events carrying IDs on
per-recipient channels (names in ``store.keys``): ``ev:feed:{user}``, ``ev:author:{user}``,
``ev:notif:{user}``, ``ev:tweet:{tweet}``.

Each API process runs one ``EventHub``: ONE Redis connection in subscribe mode whose channel
set is the union of what its local subscribers want (a channel is subscribed when its first
local subscriber arrives and unsubscribed when its last one leaves), and one reader task that
hands every message to the local subscribers of its channel through their own bounded
queues. So 10,000 WebSocket subscribers cost one Redis connection, each process only
receives the channels its own clients listen to, and a subscriber that stops reading fills
only its own queue: when that is full it is dropped (its iteration raises
``SubscriberDropped``) rather than slowing the reader down for everyone else.

Delivery is at most once, like Redis pub/sub itself: an event published while the hub is
reconnecting to Redis, or before a new channel's ``SUBSCRIBE`` has reached Redis, is not
delivered. Live events announce changes to durable state (the home timeline, the
notifications collection); a client that reconnects re-reads that state.

Fan-out publishes feed events only to followers who are online: each hub keeps a
``Presence`` (a shared ZSET of user IDs scored by expiry time) up to date for the viewers
its ``homeFeed`` subscriptions serve, since almost every follower is offline at any moment
and a ``PUBLISH`` nobody hears costs as much as one somebody does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import orjson
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.exceptions import RedisError

from starling.store.keys import Keys
from starling.store.redis import queue_script

log = logging.getLogger(__name__)

Event = dict[str, Any]
T = TypeVar("T")

# How many channels one SUBSCRIBE / UNSUBSCRIBE names, or members one presence renewal
# writes: bounds a command's size when thousands of clients connect at once.
NAMES_PER_COMMAND = 500
# A presence is renewed this many times per TTL, so renewals may fail or run late twice in a
# row before a viewer who is still there looks offline.
RENEWALS_PER_TTL = 3
RECONNECT_MAX_SECONDS = 30.0

LIVE_SUBSCRIBERS = Gauge("starling_live_subscribers", "Live event subscriptions held by this process")
LIVE_CHANNELS = Gauge("starling_live_channels", "Redis channels this process's event hub subscribes")
LIVE_EVENTS = Counter("starling_live_events_total", "Events handed to local subscribers")
LIVE_DROPPED = Counter("starling_live_dropped_total", "Subscribers dropped for falling behind")


# -- publishing ------------------------------------------------------------------------


def encode_event(event: Event) -> bytes:
    return orjson.dumps(event)


def tweet_event(tweet_id: int) -> bytes:
    """The event of ``ev:feed:*`` and ``ev:author:*``: which tweet."""
    return encode_event({"tweet_id": tweet_id})


# KEYS[1] the feed presence ZSET; ARGV[1] the feed channels' prefix; ARGV[2] user IDs,
# comma-separated; ARGV[3..] the events. Publishes every event on the feed channel of each
# user whose presence has not expired by the Redis clock (the clock presence is written
# with, so the hosts' clocks never matter); returns how many users that was. The IDs travel
# as one argument because a Python client spends longer packing one argument per follower
# than Redis spends on this whole script; ZMSCORE reads them in chunks that keep ``unpack``
# within Lua's stack.
_PUBLISH_TO_PRESENT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local users = {}
for user in string.gmatch(ARGV[2], '%d+') do users[#users + 1] = user end
local reached = 0
for from = 1, #users, 1000 do
  local expiries = redis.call('ZMSCORE', KEYS[1], unpack(users, from, math.min(from + 999, #users)))
  for j = 1, #expiries do
    if expiries[j] and tonumber(expiries[j]) > now then
      local channel = ARGV[1] .. users[from + j - 1]
      for e = 3, #ARGV do redis.call('PUBLISH', channel, ARGV[e]) end
      reached = reached + 1
    end
  end
end
return reached
"""


def queue_live_feed_events(
    pipe: Pipeline, keys: Keys, user_ids: Sequence[int], tweet_ids: Sequence[int]
) -> None:
    """Queue, on ``pipe``, "tweet entered your home feed" for those of ``user_ids`` who hold
    a ``homeFeed`` subscription (``Presence``): one script call whose reply is how many
    were. The fan-out calls this in the pipeline that writes the timelines, so checking
    presence costs no round trip, and offline followers cost no ``PUBLISH``."""
    if not user_ids or not tweet_ids:
        return
    users = ",".join(str(user_id) for user_id in user_ids)
    events = [tweet_event(tweet_id) for tweet_id in tweet_ids]
    args = [keys.feed_events_prefix(), users, *events]
    queue_script(pipe, _PUBLISH_TO_PRESENT, [keys.feed_presence()], args)


def queue_feed_events(pipe: Pipeline, keys: Keys, user_ids: Iterable[int], tweet_id: int) -> None:
    """Queue, on ``pipe``, "tweet entered your home feed" for each user, online or not (the
    fan-out asks ``queue_live_feed_events`` instead, which skips offline users)."""
    payload = tweet_event(tweet_id)
    for user_id in user_ids:
        pipe.publish(keys.feed_events(user_id), payload)


def queue_post_events(pipe: Pipeline, keys: Keys, author_id: int, tweet_id: int) -> None:
    """Queue, on ``pipe``, the author's side of a new tweet: it entered the author's own home
    feed, and it is announced on the author channel, where followers of a celebrity (whose
    tweets are not fanned out) listen."""
    payload = tweet_event(tweet_id)
    pipe.publish(keys.feed_events(author_id), payload)
    pipe.publish(keys.author_events(author_id), payload)


async def publish(redis: Redis, channel: str, event: Event) -> int:
    """Publish one event; returns how many hub connections (API processes) received it."""
    return int(await redis.publish(channel, encode_event(event)))


# -- presence --------------------------------------------------------------------------

# KEYS[1] a presence ZSET; ARGV[1] TTL in seconds; ARGV[2..] user IDs. Prunes expired members,
# then marks the users present until now + TTL by the Redis clock (one clock for every API
# process and worker), never moving an expiry back (GT: a process configured with a shorter
# TTL cannot cut short another's renewal). Returns how many users it marked.
_MARK_PRESENT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if #ARGV < 2 then return 0 end
local expiry = now + tonumber(ARGV[1])
local scored = {}
for i = 2, #ARGV do
  scored[#scored + 1] = expiry
  scored[#scored + 1] = ARGV[i]
end
redis.call('ZADD', KEYS[1], 'GT', unpack(scored))
return #ARGV - 1
"""


class Presence:
    """This process's share of a presence set: the users holding a live subscription of one
    kind here, kept in a ZSET shared by all processes (``Keys.feed_presence``) with score =
    the time each entry expires.

    A user is marked present when a subscription starts, and while this process holds anyone
    a task renews every local holder every ``ttl / RENEWALS_PER_TTL`` seconds (one command
    per ``NAMES_PER_COMMAND`` users, all in one pipeline), so the entry of a process that
    died, or lost Redis, expires by itself within the TTL; every write also prunes expired
    entries.

    Nothing is removed when a subscription ends: another process may still hold one for the
    same user, which only its own renewals know, so the entry is left to expire. The cost of
    that choice is at most one ``PUBLISH`` nobody hears per tweet for up to a TTL; the cost
    of removing it could be a subscriber who hears nothing until its process renews. Marking
    is best effort: while Redis is down no event reaches anyone anyway, and the next renewal
    marks everyone again.
    """

    def __init__(self, redis: Redis, key: str, ttl_seconds: float) -> None:
        self.key = key
        self._ttl = ttl_seconds
        self._held: dict[int, int] = {}  # user ID -> local subscriptions holding it
        self._redis = redis
        self._renewer: asyncio.Task[None] | None = None

    @property
    def holders(self) -> frozenset[int]:
        """Users this process holds present."""
        return frozenset(self._held)

    @contextlib.asynccontextmanager
    async def hold(self, user_id: int) -> AsyncIterator[None]:
        """Hold ``user_id`` present for as long as the block runs (marked before it starts)."""
        self._held[user_id] = self._held.get(user_id, 0) + 1
        try:
            self._start_renewing()
            try:
                await self._write([user_id])
            except (RedisError, OSError) as exc:
                log.warning("could not mark user %d present (%s); the next renewal will", user_id, exc)
            yield
        finally:
            self._held[user_id] -= 1
            if not self._held[user_id]:
                del self._held[user_id]
            if not self._held and self._renewer is not None:
                self._renewer.cancel()  # nobody left to renew; the next hold starts another
                self._renewer = None

    async def renew(self) -> None:
        """Mark every local holder present for another TTL (each write also prunes expired
        entries, such as those of dead processes)."""
        await self._write(list(self._held))

    async def _write(self, user_ids: list[int]) -> None:
        if not user_ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:  # one round trip however many
            for chunk in _chunks(user_ids):
                queue_script(pipe, _MARK_PRESENT, [self.key], [self._ttl, *chunk])
            await pipe.execute()

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever(), name=f"presence-renewer:{self.key}")

    async def _renew_forever(self) -> None:
        interval = self._ttl / RENEWALS_PER_TTL
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew()
            except (RedisError, OSError) as exc:
                log.warning(
                    "could not renew %d users' presence (%s); retrying in %.0fs",
                    len(self._held),
                    exc,
                    interval,
                )

    async def stop(self) -> None:
        """Stop renewing: this process's entries expire within the TTL."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None


# -- subscribing -----------------------------------------------------------------------


class SubscriberDropped(Exception):
    """The subscriber's buffer overflowed: it was not reading fast enough."""


_DROPPED = object()
_CLOSED = object()


class Subscriber:
    """One local subscription to a set of channels: an async iterator of events, fed by
    the hub through a bounded queue. Use it as a context manager so that leaving the block
    (normally, by an error or by cancellation) unsubscribes it at once."""

    __slots__ = ("_hub", "_queue", "channels")

    def __init__(self, hub: EventHub, channels: frozenset[str], size: int) -> None:
        self._hub = hub
        self.channels = channels
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=size)

    def offer(self, event: Event) -> bool:
        """Buffer an event without waiting; False when the buffer is full."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def end(self, marker: object) -> None:
        """Discard what is buffered and make the next read see ``marker``."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(marker)

    def close(self) -> None:
        self._hub.remove(self)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is _DROPPED:
            raise SubscriberDropped("this subscription fell too far behind and was closed")
        if item is _CLOSED:
            raise StopAsyncIteration
        return item


class EventHub:
    """The process's single Redis subscription, shared by all its live subscribers.

    State changed without awaiting (so an unsubscribe from a cancelled task or a ``finally``
    block is immediate): ``_routes`` maps each channel to its local subscribers; ``_live``
    is what the Redis connection is subscribed to; ``_touched`` holds the channels that
    gained their first or lost their last local subscriber since the last sync, and
    ``_dirty`` wakes the sync task, which alone sends ``SUBSCRIBE``/``UNSUBSCRIBE`` for
    them (a burst of arrivals becomes a few commands naming many channels, and a sync costs
    what changed, not what is held). A channel touched while a sync is running is synced
    again, so the connection always ends up matching ``_routes``.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        queue_size: int,
        ping_seconds: float,
        reconnect_seconds: float,
    ) -> None:
        self._redis = redis
        self._queue_size = queue_size
        self._ping_seconds = ping_seconds
        self._reconnect_seconds = reconnect_seconds
        self._routes: dict[str, set[Subscriber]] = {}
        self._subscribers: set[Subscriber] = set()
        self._live: set[str] = set()
        self._touched: set[str] = set()
        self._pubsub: PubSub | None = None
        self._dirty = asyncio.Event()
        self._commands = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._presences: dict[str, Presence] = {}

    # -- introspection (tests, metrics) --------------------------------------------------

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def channels(self) -> frozenset[str]:
        """Channels some local subscriber listens to."""
        return frozenset(self._routes)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the subscription connection (fails fast when Redis is unreachable)."""
        self._pubsub = await self._open()
        self._tasks = [
            asyncio.create_task(self._read_forever(), name="event-hub-reader"),
            asyncio.create_task(self._sync_forever(), name="event-hub-sync"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for presence in self._presences.values():
            await presence.stop()
        for subscriber in list(self._subscribers):
            self.remove(subscriber)
            subscriber.end(_CLOSED)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = None
        LIVE_CHANNELS.dec(len(self._live))
        self._live.clear()

    def presence(self, key: str, ttl_seconds: float) -> Presence:
        """The process's share of the presence set ``key``, created on first use; the hub
        stops its renewals when it stops."""
        presence = self._presences.get(key)
        if presence is None:
            presence = self._presences[key] = Presence(self._redis, key, ttl_seconds)
        return presence

    # -- subscribers ---------------------------------------------------------------------

    def subscribe(self, channels: Iterable[str]) -> Subscriber:
        subscriber = Subscriber(self, frozenset(channels), self._queue_size)
        self._subscribers.add(subscriber)
        for channel in subscriber.channels:
            routed = self._routes.setdefault(channel, set())
            if not routed:
                self._touch(channel)  # a channel this process did not want a moment ago
            routed.add(subscriber)
        LIVE_SUBSCRIBERS.inc()
        return subscriber

    def remove(self, subscriber: Subscriber) -> None:
        """Forget a subscriber (idempotent); channels nobody else wants are unsubscribed."""
        if subscriber not in self._subscribers:
            return
        self._subscribers.discard(subscriber)
        for channel in subscriber.channels:
            routed = self._routes.get(channel)
            if routed is None:
                continue
            routed.discard(subscriber)
            if not routed:
                del self._routes[channel]
                self._touch(channel)
        LIVE_SUBSCRIBERS.dec()

    def _touch(self, channel: str) -> None:
        self._touched.add(channel)
        self._dirty.set()

    def _dispatch(self, channel: str, data: bytes) -> None:
        subscribers = self._routes.get(channel)
        if not subscribers:
            return  # the last subscriber left; the UNSUBSCRIBE is on its way
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("ignoring a malformed event on %s", channel)
            return
        for subscriber in list(subscribers):
            if subscriber.offer(event):
                LIVE_EVENTS.inc()
            else:
                self.remove(subscriber)
                subscriber.end(_DROPPED)
                LIVE_DROPPED.inc()
                log.info("dropped a live subscriber that fell %d events behind", self._queue_size)

    # -- the Redis side ------------------------------------------------------------------

    async def _open(self) -> PubSub:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.connect()
        except BaseException:
            await pubsub.aclose()
            raise
        return pubsub

    async def _read_forever(self) -> None:
        while True:
            pubsub = self._pubsub
            try:
                if pubsub is None:
                    raise ConnectionError("not connected")
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                log.warning("event hub lost its Redis connection (%s); reconnecting", exc)
                await self._reconnect()

    async def _read(self, pubsub: PubSub) -> None:
        """Dispatch messages until the connection fails. When it has been quiet for a ping
        interval, ping it; if the next interval brings nothing either (not even the pong),
        the connection is dead without having said so."""
        awaiting_pong = False
        while True:
            message = await pubsub.get_message(timeout=self._ping_seconds)
            if message is None:
                if awaiting_pong:
                    raise ConnectionError("Redis did not answer the event hub's ping")
                await pubsub.ping()
                awaiting_pong = True
                continue
            awaiting_pong = False
            if message["type"] == "message":
                channel = message["channel"]
                self._dispatch(channel.decode() if isinstance(channel, bytes) else channel, message["data"])

    async def _reconnect(self) -> None:
        async with self._commands:
            old, self._pubsub = self._pubsub, None
            LIVE_CHANNELS.dec(len(self._live))
            self._live.clear()
        if old is not None:
            with contextlib.suppress(RedisError, OSError):
                await old.aclose()
        delay = self._reconnect_seconds
        while True:
            await asyncio.sleep(delay)
            try:
                pubsub = await self._open()
                break
            except (RedisError, OSError) as exc:
                log.warning("event hub cannot reach Redis (%s); retrying in %.1fs", exc, delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        async with self._commands:
            self._pubsub = pubsub
            self._touched.update(self._routes)  # resubscribe all the local subscribers want
        self._dirty.set()
        log.info("event hub reconnected to Redis")

    async def _sync_forever(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            async with self._commands:
                touched, self._touched = self._touched, set()
                try:
                    await self._sync(touched)
                except (RedisError, OSError) as exc:
                    # Retried shortly; a broken connection is also seen by the reader,
                    # which reconnects and touches every channel anyway.
                    self._touched |= touched
                    asyncio.get_running_loop().call_later(self._reconnect_seconds, self._dirty.set)
                    log.warning("event hub could not update its subscriptions (%s)", exc)

    async def _sync(self, touched: set[str]) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return
        wanted = [channel for channel in touched if channel in self._routes and channel not in self._live]
        unwanted = [channel for channel in touched if channel not in self._routes and channel in self._live]
        for chunk in _chunks(wanted):
            await pubsub.subscribe(*chunk)
            self._live.update(chunk)
            LIVE_CHANNELS.inc(len(chunk))
        for chunk in _chunks(unwanted):
            await pubsub.unsubscribe(*chunk)
            self._live.difference_update(chunk)
            LIVE_CHANNELS.dec(len(chunk))


def _chunks(names: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(names), NAMES_PER_COMMAND):
        yield names[start : start + NAMES_PER_COMMAND]
