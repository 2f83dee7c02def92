"""WebSockets end with their token (log-out, password change, expiry, a missed revocation
event), and only subscriptions run on them: over real sockets, in both protocols."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
import websockets
from gql import GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError
from websockets.asyncio.client import ClientConnection

from starling.resolvers.tokens import read_token
from starling.store import auth_state
from tests.api import PASSWORD, Account, Api
from tests.conftest import make_settings
from tests.realtime import GRAPHQL_TRANSPORT_WS, GRAPHQL_WS, PROTOCOLS, Listener, LiveApp, codes, serve_live

HOME_FEED = "subscription { homeFeed { id text } }"
CLOSED_WITHIN_SECONDS = 5.0
UNAUTHORIZED = 4401


async def open_socket(live: LiveApp, protocol: str, token: str | None) -> ClientConnection:
    """A raw WebSocket that has been through ``connection_init``."""
    socket = await websockets.connect(live.ws_url, subprotocols=[protocol])  # type: ignore[list-item]
    payload = {"authorization": f"Bearer {token}"} if token else {}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    return socket


async def start(socket: ClientConnection, protocol: str, operation_id: str, query: str) -> None:
    kind = "subscribe" if protocol == GRAPHQL_TRANSPORT_WS else "start"
    await socket.send(json.dumps({"id": operation_id, "type": kind, "payload": {"query": query}}))


async def next_message(socket: ClientConnection) -> dict[str, Any]:
    """The next message that is not a keep-alive."""
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), CLOSED_WITHIN_SECONDS))
        if message["type"] not in ("ka", "ping", "pong"):
            return message


async def closed_with(socket: ClientConnection) -> int | None:
    """Wait (at most CLOSED_WITHIN_SECONDS) for the server to close ``socket``, reading what
    it sends meanwhile, none of which may be data; returns the close code."""

    async def drain() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):  # raised for codes but 1000
            async for raw in socket:
                assert json.loads(raw)["type"] in ("ka", "ping", "pong", "complete"), raw

    await asyncio.wait_for(drain(), CLOSED_WITHIN_SECONDS)
    return socket.close_code


async def second_token(api: Api, account: Account) -> str:
    data = await api.gql(
        "mutation($h: String!, $p: String!) { logIn(handle: $h, password: $p) { token } }",
        {"h": account.handle, "p": PASSWORD},
    )
    return data["logIn"]["token"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_log_out_closes_the_sockets_of_that_token_at_once(live: LiveApp, protocol: str) -> None:
    api = live.api
    me = await api.sign_up("leaver")
    other_token = await second_token(api, me)
    leaving = await open_socket(live, protocol, me.token)
    staying = await open_socket(live, protocol, other_token)
    await start(leaving, protocol, "1", HOME_FEED)
    await start(staying, protocol, "1", HOME_FEED)
    await live.settled(2)

    assert await api.gql("mutation { logOut }", token=me.token) == {"logOut": True}
    assert await closed_with(leaving) == UNAUTHORIZED
    assert "revoked" in (leaving.close_reason or "")

    # The other token's socket goes on; the closed one hears nothing more and runs nothing.
    tweet = await api.post(Account(me.id, me.handle, other_token), "after the log-out")
    delivered = await next_message(staying)
    assert delivered["payload"]["data"]["homeFeed"]["id"] == tweet["id"]
    with pytest.raises(websockets.ConnectionClosed):
        await start(leaving, protocol, "2", 'mutation { postTweet(text: "as a ghost") { id } }')
    await staying.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_gql_client_subscribed_with_a_logged_out_token_gets_nothing_more(
    live: LiveApp, protocol: str
) -> None:
    api = live.api
    me = await api.sign_up("gqluser")
    async with Listener(live.client(me.token, protocol), HOME_FEED) as feed:
        await live.settled(1)
        first = await api.post(me, "before")
        assert (await feed.next())["homeFeed"]["id"] == first["id"]
        await api.gql("mutation { logOut }", token=me.token)
        with pytest.raises(TransportError):
            await feed.next(within=CLOSED_WITHIN_SECONDS)
    await live.settled(0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_changing_the_password_closes_every_socket_of_the_user(live: LiveApp, protocol: str) -> None:
    api = live.api
    me = await api.sign_up("changer")
    sockets = [await open_socket(live, protocol, token) for token in (me.token, await second_token(api, me))]
    for socket in sockets:
        await start(socket, protocol, "1", HOME_FEED)
    await live.settled(2)
    data = await api.gql(
        'mutation($p: String!) { changePassword(oldPassword: $p, newPassword: "a brand new secret") '
        "{ token } }",
        {"p": PASSWORD},
        me.token,
    )
    for socket in sockets:
        assert await closed_with(socket) == UNAUTHORIZED
    # The fresh token opens a socket that works.
    fresh = await open_socket(live, protocol, data["changePassword"]["token"])
    await start(fresh, protocol, "1", HOME_FEED)
    await live.settled(1)
    await fresh.close()


async def test_a_token_expiring_closes_its_socket(redis_url: str) -> None:
    async with serve_live(make_settings(redis_url, token_ttl_seconds=3)) as live:
        me = await live.api.sign_up("shortlived")
        socket = await open_socket(live, GRAPHQL_TRANSPORT_WS, me.token)
        await start(socket, GRAPHQL_TRANSPORT_WS, "1", HOME_FEED)
        await live.settled(1)
        assert await closed_with(socket) == UNAUTHORIZED
        assert "expired" in (socket.close_reason or "")


async def test_a_revocation_whose_event_was_lost_closes_the_socket_at_the_next_recheck(
    redis_url: str,
) -> None:
    async with serve_live(make_settings(redis_url, ws_token_recheck_seconds=0.3)) as live:
        me = await live.api.sign_up("missed")
        socket = await open_socket(live, GRAPHQL_WS, me.token)
        await start(socket, GRAPHQL_WS, "1", HOME_FEED)
        await live.settled(1)
        # Revoked in Redis, with no announcement: as if the event had been published while
        # this process's hub was reconnecting.
        services = live.services
        secret = services.settings.token_secret
        assert secret is not None
        viewer = read_token(secret, me.token)
        assert viewer is not None
        expiry = int(viewer.expires_at.timestamp())
        await auth_state.write(
            services.redis,
            services.keys,
            viewer.user_id,
            ttl_seconds=services.settings.token_ttl_seconds,
            revoked=[(viewer.token_id, expiry)],
        )
        assert await closed_with(socket) == UNAUTHORIZED


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "operation",
    ['mutation { postTweet(text: "over a socket") { id } }', "{ viewer { handle } }"],
)
async def test_queries_and_mutations_are_refused_over_a_socket(
    live: LiveApp, protocol: str, operation: str
) -> None:
    me = await live.api.sign_up("socketeer")
    async with live.client(me.token, protocol) as session:
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(GraphQLRequest(operation))
    errors = refused.value.errors or []
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert "HTTP" in errors[0]["message"]
    tweets = await live.api.gql("query($h: String!) { user(handle: $h) { tweetsCount } }", {"h": "socketeer"})
    assert tweets["user"]["tweetsCount"] == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_that_never_initialises_is_closed(redis_url: str, protocol: str) -> None:
    async with serve_live(make_settings(redis_url, ws_connection_init_timeout_seconds=0.3)) as live:
        socket = await websockets.connect(live.ws_url, subprotocols=[protocol])  # type: ignore[list-item]
        assert await closed_with(socket) == 4408
