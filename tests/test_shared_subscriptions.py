"""Shared execution of home feeds (``schema.shared``): one execution per event for every
subscriber of the same operation, through the public API over both protocols."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from tests.api import Account
from tests.realtime import GRAPHQL_TRANSPORT_WS, GRAPHQL_WS, PROTOCOLS, Listener, LiveApp, like

pytestmark = pytest.mark.both_redis_topologies

FEED = (
    "subscription { homeFeed { id text viewerHasLiked author { handle viewerIsFollowing followsViewer } } }"
)
NEXT = {GRAPHQL_TRANSPORT_WS: "next", GRAPHQL_WS: "data"}
START = {GRAPHQL_TRANSPORT_WS: "subscribe", GRAPHQL_WS: "start"}


async def counter(live: LiveApp, name: str) -> float:
    text = (await live.api.http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def publish_to(live: LiveApp, readers: list[Account], tweet_id: str) -> None:
    """Announce a tweet on the readers' feed channels, as the fan-out does."""
    keys = live.services.keys
    async with live.services.queue_redis.pipeline(transaction=False) as pipe:
        for reader in readers:
            pipe.publish(keys.feed_events(int(reader.id)), json.dumps({"tweet_id": int(tweet_id)}))
        await pipe.execute()


@contextlib.asynccontextmanager
async def raw_socket(live: LiveApp, token: str, protocol: str, operation_id: str) -> AsyncIterator[Any]:
    async with websockets.connect(live.ws_url, subprotocols=[protocol]) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(
            json.dumps({"id": operation_id, "type": START[protocol], "payload": {"query": FEED}})
        )
        yield socket


async def next_result(socket: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 5))
        if message["type"] != "ka":
            return message


async def test_one_execution_serves_every_subscriber_each_with_its_own_id_and_viewer_fields(
    live: LiveApp,
) -> None:
    api = live.api
    author = await api.sign_up("author")
    readers = [await api.sign_up(f"reader{n}") for n in range(6)]
    tweet = await api.post(author, "one for all")
    await like(api, readers[0], tweet["id"])
    await api.follow(readers[1], author)
    await api.follow(author, readers[2])
    # Counted from before the sockets open: the post's own fan-out may reach reader1 once it
    # follows (a race); then it is that event's execution the test's publish reuses, and
    # reader1's second announcement of the tweet is not sent again.
    executions = await counter(live, "starling_live_shared_executions_total")
    deliveries = await counter(live, "starling_live_shared_deliveries_total")
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for n, reader in enumerate(readers):
            protocol = PROTOCOLS[n % 2]
            operation_id = f"op-{n}"
            sockets.append(
                (
                    await stack.enter_async_context(raw_socket(live, reader.token, protocol, operation_id)),
                    protocol,
                    operation_id,
                )
            )
        await live.settled(len(readers))
        await publish_to(live, readers, tweet["id"])
        frames = [await next_result(socket) for socket, _, _ in sockets]
        assert await counter(live, "starling_live_shared_executions_total") == executions + 1
        assert await counter(live, "starling_live_shared_deliveries_total") == deliveries + len(readers)
    for n, ((_, protocol, operation_id), frame) in enumerate(zip(sockets, frames, strict=True)):
        assert frame["id"] == operation_id and frame["type"] == NEXT[protocol]
        feed = frame["payload"]["data"]["homeFeed"]
        assert feed["id"] == tweet["id"] and feed["text"] == "one for all"
        assert feed["viewerHasLiked"] is (n == 0)
        assert feed["author"] == {"handle": "author", "viewerIsFollowing": n == 1, "followsViewer": n == 2}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_blocked_or_muted_authors_tweet_reaches_neither_the_blocker_nor_the_muter(
    live: LiveApp, protocol: str
) -> None:
    api = live.api
    author, other = await api.sign_up("author"), await api.sign_up("other")
    fan, muter, blocker = [await api.sign_up(handle) for handle in ("fan", "muter", "blocker")]
    readers = [fan, muter, blocker]
    await api.gql("mutation($id: ID!) { mute(userId: $id) { id } }", {"id": author.id}, muter.token)
    await api.gql("mutation($id: ID!) { block(userId: $id) { id } }", {"id": author.id}, blocker.token)
    hidden = await api.post(author, "not for everyone")
    shown = await api.post(other, "for everyone")
    async with contextlib.AsyncExitStack() as stack:
        feeds = [
            await stack.enter_async_context(Listener(live.client(reader.token, protocol), FEED))
            for reader in readers
        ]
        await live.settled(len(readers))
        await publish_to(live, readers, hidden["id"])
        await publish_to(live, readers, shown["id"])
        received = [
            [(await feed.next())["homeFeed"]["id"] for _ in range(count)]
            for feed, count in zip(feeds, (2, 1, 1), strict=True)
        ]
    assert received == [[hidden["id"], shown["id"]], [shown["id"]], [shown["id"]]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_shared_subscription_ends_when_the_client_completes_it(live: LiveApp, protocol: str) -> None:
    reader = await live.api.sign_up("reader")
    async with Listener(live.client(reader.token, protocol), FEED) as feed:
        await live.settled(1)
        assert live.app.state.hub.subscriber_count == 2  # and the session watch's
        await feed.stop()
    await live.settled(0)
