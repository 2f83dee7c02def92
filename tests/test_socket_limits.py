"""What one client may hold open on an API process (subscriptions per connection, sockets
and anonymous subscriptions per address), and event work for many watchers not holding up
the request that caused it."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from prometheus_client import REGISTRY
from websockets.asyncio.client import ClientConnection

from tests.conftest import make_settings
from tests.realtime import GRAPHQL_TRANSPORT_WS, Listener, codes, serve_live

WATCH = (
    "subscription($id: ID!) { tweetActivity(tweetId: $id) { kind actor { handle } tweet { id likeCount } } }"
)


async def test_a_connection_holds_at_most_its_share_of_subscriptions(redis_url: str) -> None:
    async with serve_live(make_settings(redis_url, ws_subscriptions_per_connection=2)) as live:
        me = await live.api.sign_up("greedy")
        tweet = await live.api.post(me, "watched")
        request = GraphQLRequest(WATCH, variable_values={"id": tweet["id"]})
        async with live.client(me.token) as session:
            held = [session.subscribe(request) for _ in range(2)]
            pending = [asyncio.ensure_future(anext(stream)) for stream in held]
            await live.settled(2)
            with pytest.raises(TransportQueryError) as refused:
                await anext(session.subscribe(request))
            assert codes(refused.value.errors or []) == ["RATE_LIMITED"]
            # The two held go on.
            await live.api.gql(
                "mutation($id: ID!) { likeTweet(tweetId: $id) { id } }", {"id": tweet["id"]}, me.token
            )
            for result in await asyncio.gather(*pending):
                assert result["tweetActivity"]["kind"] == "LIKE"
            for stream in held:
                await stream.aclose()


async def test_anonymous_subscriptions_count_against_the_address(redis_url: str) -> None:
    settings = make_settings(redis_url, ws_anonymous_subscriptions_per_address=2)
    async with serve_live(settings) as live:
        me = await live.api.sign_up("author")
        tweet = await live.api.post(me, "watched by strangers")
        variables = {"id": tweet["id"]}
        async with (
            Listener(live.client(), WATCH, variables),
            Listener(live.client(), WATCH, variables),  # a second socket, the same address
        ):
            await live.settled(2)
            async with Listener(live.client(), WATCH, variables) as third:
                assert codes(await third.error()) == ["RATE_LIMITED"]
            # Signed-in subscriptions are the viewer's, not the address's.
            async with Listener(live.client(me.token), WATCH, variables):
                await live.settled(3)


async def test_an_address_holds_at_most_its_share_of_sockets(redis_url: str) -> None:
    async with serve_live(make_settings(redis_url, ws_sockets_per_address=2)) as live:
        url, protocols = live.ws_url, [GRAPHQL_TRANSPORT_WS]
        held = [await websockets.connect(url, subprotocols=protocols) for _ in range(2)]  # type: ignore[arg-type]
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, subprotocols=protocols)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 429
        body = json.loads(refused.value.response.body or b"{}")
        assert codes(body["errors"]) == ["RATE_LIMITED"]
        await held[0].close()
        await held[0].wait_closed()

        async def admitted() -> ClientConnection | None:
            try:
                return await websockets.connect(url, subprotocols=protocols)  # type: ignore[arg-type]
            except websockets.InvalidStatus:
                return None

        deadline = asyncio.get_running_loop().time() + 5
        while (again := await admitted()) is None:  # the server sees the close a moment later
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        for socket in (held[1], again):
            await socket.close()


async def test_rate_limits_off_lifts_the_address_caps(redis_url: str) -> None:
    settings = make_settings(redis_url, ws_sockets_per_address=1, rate_limits_enabled=False)
    async with serve_live(settings) as live:
        protocols = [GRAPHQL_TRANSPORT_WS]
        sockets = [await websockets.connect(live.ws_url, subprotocols=protocols) for _ in range(3)]  # type: ignore[arg-type]
        for socket in sockets:
            await socket.close()


def events_worked_on() -> float:
    return REGISTRY.get_sample_value("starling_live_events_sent_total") or 0.0


LIKE = "mutation($id: ID!) { likeTweet(tweetId: $id) { id likeCount viewerHasLiked author { handle } } }"
WATCHERS_PER_SOCKET = 100
SOCKETS = 3


async def test_a_like_is_answered_before_its_many_watchers_are_served(redis_url: str) -> None:
    """300 anonymous watchers of one tweet; each like wakes them all. The like's answer must
    not wait for their events: when it arrives, only a few have been worked on (at most a
    few turns of LIVE_EVENT_CONCURRENCY), and all of them are served soon after. Without the
    pace, the 300 advance in lockstep with the like, whose answer then comes after nearly
    all of them."""
    watchers = WATCHERS_PER_SOCKET * SOCKETS
    settings = make_settings(redis_url, live_event_concurrency=4)
    async with serve_live(settings) as live:
        api = live.api
        author = await api.sign_up("author")
        fans = [await api.sign_up(f"fan{n}") for n in range(3)]
        tweet = await api.post(author, "the whole world is watching")
        sockets = []
        for _ in range(SOCKETS):
            socket = await websockets.connect(
                live.ws_url, subprotocols=[GRAPHQL_TRANSPORT_WS], max_queue=None
            )  # type: ignore[list-item]
            await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
            await socket.recv()
            for n in range(WATCHERS_PER_SOCKET):
                payload = {"query": WATCH, "variables": {"id": tweet["id"]}}
                await socket.send(json.dumps({"id": str(n), "type": "subscribe", "payload": payload}))
            sockets.append(socket)
        await live.settled(watchers)

        for fan in fans:
            before = events_worked_on()
            await api.gql(LIKE, {"id": tweet["id"]}, fan.token)
            during = events_worked_on() - before
            assert during < watchers / 2, (
                f"{during} of {watchers} watchers were served before the like's answer"
            )

            async def all_served(since: float = before) -> bool:
                return events_worked_on() - since >= watchers

            deadline = asyncio.get_running_loop().time() + 20
            while not await all_served():
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
        for socket in sockets:
            await socket.close()
