"""SIGTERM to a real `starling serve` with requests in flight: it stops accepting, finishes
the requests it has, closes WebSockets with 1001 (going away) and exits cleanly within
SHUTDOWN_TIMEOUT_SECONDS. The API alone, on the embedded engine (`serve --embedded`)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from tests.api import Api
from tests.dev_process import StarlingProcess

SHUTDOWN_TIMEOUT_SECONDS = 5
BODY_PAUSE_SECONDS = 1.5  # how long each in-flight request is still sending its body
IN_FLIGHT = 3
VIEWER = b'{"query": "{ viewer { handle } }"}'


async def slow_body() -> AsyncIterator[bytes]:
    """A request body that arrives in two parts: the request is in flight in between."""
    yield VIEWER[:10]
    await asyncio.sleep(BODY_PAUSE_SECONDS)
    yield VIEWER[10:]


async def subscribed_socket(base_url: str, token: str) -> websockets.ClientConnection:
    socket = await websockets.connect(
        base_url.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"]
    )
    await socket.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    await socket.send(
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "subscription { homeFeed { id } }"}})
    )
    return socket


@pytest.fixture
def serve(redis_url: str) -> StarlingProcess:
    tag = uuid.uuid4().hex[:10]
    return StarlingProcess.start(
        ["serve", "--embedded"],
        env={
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": f"s{tag}:",
            "QUEUE_NAME": f"s{tag}:queue",
            "TOKEN_SECRET": uuid.uuid4().hex * 2,
            "SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_TIMEOUT_SECONDS),
            "LOG_LEVEL": "INFO",
        },
    )


async def test_sigterm_finishes_in_flight_requests_and_closes_websockets_with_1001(
    serve: StarlingProcess,
) -> None:
    try:
        serve.wait_ready()
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=30) as http:
            account = await Api(http).sign_up("stayer")
            socket = await subscribed_socket(serve.base_url, account.token)
            headers = {"Authorization": f"Bearer {account.token}", "content-type": "application/json"}
            in_flight = [
                asyncio.create_task(http.post("/graphql", content=slow_body(), headers=headers))
                for _ in range(IN_FLIGHT)
            ]
            await asyncio.sleep(BODY_PAUSE_SECONDS / 3)  # every request has started sending
            serve.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), SHUTDOWN_TIMEOUT_SECONDS)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001

            await asyncio.sleep(0.3)
            async with httpx.AsyncClient(base_url=serve.base_url) as fresh:
                with pytest.raises(httpx.ConnectError):  # no longer accepting
                    await fresh.get("/healthz")

            responses = await asyncio.gather(*in_flight)
        assert [r.status_code for r in responses] == [200] * IN_FLIGHT
        assert [r.json()["data"] for r in responses] == [{"viewer": {"handle": "stayer"}}] * IN_FLIGHT
        returncode = await asyncio.to_thread(serve.process.wait, SHUTDOWN_TIMEOUT_SECONDS + 5)
        elapsed = time.monotonic() - signalled
    finally:
        output = serve.stop()
    assert returncode == 0, output
    assert elapsed < SHUTDOWN_TIMEOUT_SECONDS + 1, f"took {elapsed:.1f}s to exit"
    # `serve` logs JSON lines, start-up information at INFO.
    entries = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(e["level"] == "INFO" and e["message"].startswith("starling serve on") for e in entries)
    assert any(e["logger"] == "starling.requests" and e.get("status") == 200 for e in entries)
