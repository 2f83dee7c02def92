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

The package, one module per concern:

* ``publishing``: encoding events and publishing them (``publish``, ``queue_*_events``);
* ``presence``: ``Presence``, the shared set of users holding a subscription;
* ``hub``: ``EventHub`` and its ``Subscriber`` objects (``SubscriberDropped``).
"""

from starling.store.pubsub.hub import EventHub, Subscriber, SubscriberDropped
from starling.store.pubsub.presence import Presence
from starling.store.pubsub.publishing import (
    Event,
    publish,
    queue_feed_events,
    queue_live_feed_events,
    queue_post_events,
)

__all__ = [
    "Event",
    "EventHub",
    "Presence",
    "Subscriber",
    "SubscriberDropped",
    "publish",
    "queue_feed_events",
    "queue_live_feed_events",
    "queue_post_events",
]
