"""The per-process event hub: one Redis subscription shared by all local subscribers, each
fed through its own bounded queue and dropped when it falls behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

import orjson
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

try:  # the hiredis parser's "nothing buffered" answer (``EventHub._drain``)
    from redis._parsers.hiredis import NOT_ENOUGH_DATA
except ImportError:  # pragma: no cover - another redis-py layout: no draining
    NOT_ENOUGH_DATA = None

from starling.store.pubsub.presence import Presence, chunks
from starling.store.pubsub.publishing import Event

log = logging.getLogger(__name__)

RECONNECT_MAX_SECONDS = 30.0
# A published message as the parser gives it: [b"message", channel, data].
MESSAGE_KINDS = (b"message", "message")
MESSAGE_REPLY_LENGTH = 3

LIVE_SUBSCRIBERS = Gauge("starling_live_subscribers", "Live event subscriptions held by this process")
LIVE_CHANNELS = Gauge("starling_live_channels", "Redis channels this process's event hub subscribes")
LIVE_EVENTS = Counter("starling_live_events_total", "Events handed to local subscribers")
LIVE_DROPPED = Counter("starling_live_dropped_total", "Subscribers dropped for falling behind")


class SubscriberDropped(Exception):
    """The subscriber's buffer overflowed: it was not reading fast enough."""


DROPPED = object()  # what a sink's ``end`` is told when it fell behind
CLOSED = object()  # ...and when the hub stopped


class Sink(Protocol):
    """What the hub routes a channel's events to: a ``Subscriber`` (a queue its stream
    reads), or a routing record that handles events as they arrive (shared execution)."""

    channels: frozenset[str]

    def offer(self, event: Event) -> bool:
        """Take an event without waiting; False when this sink fell too far behind."""
        ...

    def end(self, marker: object) -> None:
        """The hub let go of this sink: ``CLOSED`` (the hub stopped) or ``DROPPED``."""
        ...


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
        if item is DROPPED:
            raise SubscriberDropped("this subscription fell too far behind and was closed")
        if item is CLOSED:
            raise StopAsyncIteration
        event: Event = item  # the queue holds events and the two markers
        return event


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
        self._routes: dict[str, set[Sink]] = {}
        self._subscribers: set[Sink] = set()
        self._live: set[str] = set()
        self._touched: set[str] = set()
        self._pubsub: PubSub | None = None
        self._dirty = asyncio.Event()
        self._commands = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._presences: dict[str, Presence] = {}
        # The channels whose SUBSCRIBE Redis has confirmed on the current connection (a
        # command sent is not yet a command Redis has run), and the event, set and
        # replaced whenever that set grows or a subscriber leaves, that ``until_live``
        # waiters check again on.
        self._confirmed: set[str] = set()
        self._synced = asyncio.Event()

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
            subscriber.end(CLOSED)
        self._wake_waiters()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = None
        LIVE_CHANNELS.dec(len(self._live))
        self._live.clear()
        self._confirmed.clear()

    def presence(self, name: str, key_of: Callable[[int], str], ttl_seconds: float) -> Presence:
        """The process's share of the presence set ``name`` (a user's shard of it:
        ``key_of(user)``), created on first use; the hub stops its renewals when it stops."""
        presence = self._presences.get(name)
        if presence is None:
            presence = self._presences[name] = Presence(self._redis, name, key_of, ttl_seconds)
        return presence

    # -- subscribers ---------------------------------------------------------------------

    def subscribe(self, channels: Iterable[str]) -> Subscriber:
        subscriber = Subscriber(self, frozenset(channels), self._queue_size)
        self.attach(subscriber)
        return subscriber

    def attach(self, subscriber: Sink) -> None:
        """Route the events of ``subscriber.channels`` to it until ``remove``."""
        self._subscribers.add(subscriber)
        for channel in subscriber.channels:
            routed = self._routes.setdefault(channel, set())
            if not routed:
                self._touch(channel)  # a channel this process did not want a moment ago
            routed.add(subscriber)
        LIVE_SUBSCRIBERS.inc()

    @property
    def queue_size(self) -> int:
        """How many events a subscriber may be behind before it is dropped."""
        return self._queue_size

    async def until_live(self, subscriber: Sink) -> None:
        """Return once Redis delivers every channel of ``subscriber`` to this hub (its
        ``SUBSCRIBE`` has been answered), or the subscriber is gone. From then on nothing
        published on them is missed: what a stream reads from durable state after this,
        and what it hears, together leave no gap (``homeFeed(after:)``)."""
        while subscriber in self._subscribers and not subscriber.channels <= self._confirmed:
            await self._synced.wait()

    def _wake_waiters(self) -> None:
        synced, self._synced = self._synced, asyncio.Event()
        synced.set()

    def remove(self, subscriber: Sink) -> None:
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
        self._wake_waiters()

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
                subscriber.end(DROPPED)
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
            self._handle(message)
            await self._drain(pubsub)

    async def _drain(self, pubsub: PubSub) -> None:
        """Handle the replies already read from the socket and parsed (a burst of thousands
        of messages arrives in a few reads) without ``get_message``'s per-message timeout
        and health check; a message straight to ``_dispatch``, anything else through
        redis-py's own handling. Only with the hiredis parser, whose buffer can be asked."""
        connection = pubsub.connection
        reader = getattr(getattr(connection, "_parser", None), "_reader", None)
        gets = getattr(reader, "gets", None)
        if gets is None or NOT_ENOUGH_DATA is None:
            return
        while (reply := gets()) is not NOT_ENOUGH_DATA and reply is not False:
            if isinstance(reply, list) and len(reply) == MESSAGE_REPLY_LENGTH and reply[0] in MESSAGE_KINDS:
                channel = reply[1]
                self._dispatch(channel.decode() if isinstance(channel, bytes) else channel, reply[2])
                continue
            message = await pubsub.handle_message(reply)
            if message is not None:
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind not in ("message", "subscribe", "unsubscribe"):
            return
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if kind == "message":
            self._dispatch(channel, message["data"])
        elif kind == "subscribe":
            self._confirmed.add(channel)
            self._wake_waiters()
        else:
            self._confirmed.discard(channel)

    async def _reconnect(self) -> None:
        async with self._commands:
            old, self._pubsub = self._pubsub, None
            LIVE_CHANNELS.dec(len(self._live))
            self._live.clear()
            self._confirmed.clear()
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
        for chunk in chunks(wanted):
            await pubsub.subscribe(*chunk)
            self._live.update(chunk)
            LIVE_CHANNELS.inc(len(chunk))
        for chunk in chunks(unwanted):
            # Unconfirmed from now: a subscriber arriving before the UNSUBSCRIBE's reply must
            # wait for the SUBSCRIBE that follows it, not trust the old confirmation.
            self._confirmed.difference_update(chunk)
            await pubsub.unsubscribe(*chunk)
            self._live.difference_update(chunk)
            LIVE_CHANNELS.dec(len(chunk))
