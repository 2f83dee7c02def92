"""Malformed WebSocket frames, in both protocols, over a real socket: each is answered the
way the protocol says (a close code with a reason, or an error message with its code),
never a dead connection or a traceback (``starling.websocket``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
import websockets

from starling.config import Settings
from tests.conftest import make_settings
from tests.realtime import GRAPHQL_TRANSPORT_WS, GRAPHQL_WS, LiveApp, serve_live

# One server for the module: the cases share nothing but the socket's endpoint.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(standalone_redis_url: str) -> AsyncIterator[LiveApp]:
    settings: Settings = make_settings(standalone_redis_url)
    async with serve_live(settings) as started:
        yield started


INIT = {"type": "connection_init"}
ACTIVITY = 'subscription { tweetActivity(tweetId: "1") { kind } }'
COSTLY = "subscription { homeFeed { author { followers(first: 100) { nodes { following(first: 100) { nodes { id } } } } } } }"  # noqa: E501
ANSWER_SECONDS = 5.0


def frame(value: Any) -> str | bytes:
    return value if isinstance(value, str | bytes) else json.dumps(value)


def subscribe(payload: Any, id: Any = "1", kind: str = "subscribe") -> dict[str, Any]:
    return {"id": id, "type": kind, "payload": payload}


@dataclass(frozen=True)
class Closed:
    code: int
    reason: str  # a part of it


@dataclass(frozen=True)
class Error:
    code: str  # extensions.code of the operation's first error
    text: str  # a part of its message


@dataclass(frozen=True)
class StaysOpen:
    pass


Outcome = Closed | Error | StaysOpen

TRANSPORT_WS: dict[str, tuple[list[Any], Outcome]] = {
    "not JSON": (["{not json"], Closed(4400, "valid JSON")),
    "JSON list": (["[1, 2]"], Closed(4400, "valid JSON")),
    "JSON string": (['"connection_init"'], Closed(4400, "valid JSON")),
    "JSON number": (["5"], Closed(4400, "valid JSON")),
    "JSON null": (["null"], Closed(4400, "valid JSON")),
    "binary frame": ([b"\x00\x01"], Closed(4400, "text")),
    "no type": ([{}], Closed(4400, "parse")),
    "unknown type": ([{"type": "nope"}], Closed(4400, "Unknown message type")),
    "type a number": ([{"type": 5}], Closed(4400, "Unknown message type")),
    "subscribe before connection_init": ([subscribe({"query": ACTIVITY})], Closed(4401, "Unauthorized")),
    "connection_init twice": ([INIT, INIT], Closed(4429, "Too many")),
    "init payload a list": ([{"type": "connection_init", "payload": [1]}], Closed(4400, "init payload")),
    "payload a list": ([INIT, subscribe([1])], Closed(4400, "payload must be an object")),
    "payload missing": ([INIT, {"id": "1", "type": "subscribe"}], Closed(4400, "payload must be an object")),
    "query a number": ([INIT, subscribe({"query": 5})], Closed(4400, "`query` must be a string")),
    "query missing": ([INIT, subscribe({"variables": {}})], Closed(4400, "`query` must be a string")),
    "variables a list": (
        [INIT, subscribe({"query": ACTIVITY, "variables": [1]})],
        Closed(4400, "`variables`"),
    ),
    "operationName a number": (
        [INIT, subscribe({"query": ACTIVITY, "operationName": 5})],
        Closed(4400, "`operationName`"),
    ),
    "extensions a string": (
        [INIT, subscribe({"query": ACTIVITY, "extensions": "x"})],
        Closed(4400, "`extensions`"),
    ),
    "id a number": ([INIT, subscribe({"query": ACTIVITY}, id=5)], Closed(4400, "string `id`")),
    "id missing": (
        [INIT, {"type": "subscribe", "payload": {"query": ACTIVITY}}],
        Closed(4400, "string `id`"),
    ),
    "complete without id": ([INIT, {"type": "complete"}], Closed(4400, "string `id`")),
    "unknown operation name": (
        [INIT, subscribe({"query": ACTIVITY, "operationName": "Nope"})],
        Error("BAD_USER_INPUT", "Nope"),
    ),
    "syntax error": ([INIT, subscribe({"query": "subscription {"})], Error("BAD_USER_INPUT", "Syntax Error")),
    "over the cost limit": ([INIT, subscribe({"query": COSTLY})], Error("BAD_USER_INPUT", "10,203 objects")),
    "oversized frame": (
        [{"type": "connection_init", "payload": {"pad": "x" * (1024 * 1024)}}],
        Closed(1009, "at most"),
    ),
    "complete of an unknown id": ([INIT, {"id": "9", "type": "complete"}], StaysOpen()),
    "ping with a list payload": ([INIT, {"type": "ping", "payload": [1]}], StaysOpen()),
}

LEGACY_WS: dict[str, tuple[list[Any], Outcome]] = {
    "start before connection_init": (
        [subscribe({"query": ACTIVITY}, kind="start")],
        Closed(4401, "Unauthorized"),
    ),
    "payload a list": ([INIT, subscribe([1], kind="start")], Closed(4400, "payload must be an object")),
    "query a number": (
        [INIT, subscribe({"query": 5}, kind="start")],
        Closed(4400, "`query` must be a string"),
    ),
    "variables a string": (
        [INIT, subscribe({"query": ACTIVITY, "variables": "x"}, kind="start")],
        Closed(4400, "`variables`"),
    ),
    "stop without id": ([INIT, {"type": "stop"}], Closed(4400, "string `id`")),
    "over the cost limit": (
        [INIT, subscribe({"query": COSTLY}, kind="start")],
        Error("BAD_USER_INPUT", "objects"),
    ),
    "oversized frame": (
        [{"type": "connection_init", "payload": {"pad": "x" * (1024 * 1024)}}],
        Closed(1009, "at most"),
    ),
    # The legacy protocol ignores what it cannot parse, as it always did.
    "not JSON": ([INIT, "{not json"], StaysOpen()),
    "JSON list": ([INIT, "[1]"], StaysOpen()),
    "unknown type": ([INIT, {"type": "zzz"}], StaysOpen()),
}


# Sent after a case's frames: what an open connection answers (a pong; graphql-ws has no
# ping, so an operation with a syntax error, answered with an error for `probe`).
PROBE_ID = "probe"
PROBES = {
    GRAPHQL_TRANSPORT_WS: ({"type": "ping"}, lambda message: message["type"] == "pong"),
    GRAPHQL_WS: (
        subscribe({"query": "subscription {"}, id=PROBE_ID, kind="start"),
        lambda message: message.get("id") == PROBE_ID,
    ),
}


async def exchange(
    live: LiveApp, protocol: str, frames: list[Any], error_expected: bool
) -> tuple[list[dict[str, Any]], Closed | None]:
    """Send ``frames`` then the protocol's probe; return the messages received until the
    server closes (with its close code) or has answered the probe (None: still open), and,
    when ``error_expected``, an operation's error has come too."""
    probe, is_answer = PROBES[protocol]
    received: list[dict[str, Any]] = []
    async with websockets.connect(live.ws_url, subprotocols=[protocol], max_size=None) as socket:
        try:
            for item in [*frames, probe]:
                await socket.send(frame(item))
            async with asyncio.timeout(ANSWER_SECONDS):
                while not (
                    any(is_answer(message) for message in received)
                    and (operation_errors(received) or not error_expected)
                ):
                    received.append(json.loads(await socket.recv()))
            return received, None
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "the connection died without a close frame"
            return received, Closed(closed.rcvd.code, closed.rcvd.reason)


def operation_errors(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The errors of the case's operation (the probe's aside)."""
    for message in messages:
        if message.get("id") == PROBE_ID:
            continue
        if message["type"] == "error":  # graphql-transport-ws: a list; graphql-ws: one error
            payload = message["payload"]
            return payload if isinstance(payload, list) else [payload]
        if message["type"] in ("next", "data") and message["payload"].get("errors"):
            return message["payload"]["errors"]
    return []


async def check(live: LiveApp, protocol: str, frames: list[Any], expected: Outcome) -> None:
    messages, closed = await exchange(live, protocol, frames, isinstance(expected, Error))
    assert "Traceback" not in json.dumps(messages)
    if isinstance(expected, Closed):
        assert closed is not None, f"expected a close {expected}, got {messages}"
        assert closed.code == expected.code and expected.reason in closed.reason, closed
    elif isinstance(expected, Error):
        assert closed is None, closed
        errors = operation_errors(messages)
        assert errors, messages
        assert errors[0]["extensions"]["code"] == expected.code and expected.text in errors[0]["message"], (
            errors
        )
    else:
        assert closed is None, closed


@pytest.mark.parametrize(("frames", "expected"), TRANSPORT_WS.values(), ids=TRANSPORT_WS.keys())
async def test_graphql_transport_ws_frames(live: LiveApp, frames: list[Any], expected: Outcome) -> None:
    await check(live, GRAPHQL_TRANSPORT_WS, frames, expected)


@pytest.mark.parametrize(("frames", "expected"), LEGACY_WS.values(), ids=LEGACY_WS.keys())
async def test_graphql_ws_frames(live: LiveApp, frames: list[Any], expected: Outcome) -> None:
    await check(live, GRAPHQL_WS, frames, expected)
