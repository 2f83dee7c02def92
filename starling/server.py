"""Running the app under uvicorn, the same way for ``starling dev`` and ``starling serve``.

* Logging: ``starling.logs`` configures every logger, uvicorn's included (in each worker
  process too); uvicorn's access log is off, ``starling.request_log`` writes request lines.
* Graceful shutdown: on SIGTERM uvicorn stops accepting, lets in-flight requests finish and
  cancels what still runs after ``SHUTDOWN_TIMEOUT_SECONDS``; then the lifespan shutdown
  runs (the in-process worker drains, connections close).
* WebSockets are closed with 1001 (going away: reconnect, to another instance if there is
  one) instead of uvicorn's 1012 (service restart), as the API contract says.
* A WebSocket's idle cost is what a process holding many live subscribers pays per
  subscriber: the protocol keeps its received messages and its writable state in slim
  structures (uvicorn's ``asyncio.Queue`` and ``asyncio.Event`` cost four deques, ~3 KiB, per
  socket) and lets go of the handshake's request and response (~2 KiB) once the handshake is sent.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import uvicorn
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from starling.config import Settings
from starling.logs import LogFormat, logging_config

GOING_AWAY = 1001
# The scope extension through which the app writes a text frame without awaiting the ASGI
# send (``GoingAwayWebSocketProtocol.write_text``): ``extensions[WRITE_TEXT](payload)``.
WRITE_TEXT = "starling.websocket.write_text"
FIN_TEXT = 0x81  # RFC 6455: FIN, opcode 1 (text); server frames are not masked
SHORT_PAYLOAD_MAX = 125
MEDIUM_PAYLOAD_MAX = 0xFFFF


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size <= SHORT_PAYLOAD_MAX:
        return struct.pack("!BB", FIN_TEXT, size) + payload
    if size <= MEDIUM_PAYLOAD_MAX:
        return struct.pack("!BBH", FIN_TEXT, 126, size) + payload
    return struct.pack("!BBQ", FIN_TEXT, 127, size) + payload


class Inbox:
    """The part of ``asyncio.Queue`` uvicorn's protocol uses for the events a socket received
    (``put_nowait``, ``get``, ``empty``): a list, and futures only while the app waits."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return self._items.pop(0)


class Flag:
    """The part of ``asyncio.Event`` uvicorn's protocol uses for "the transport takes
    writes" (``set``, ``clear``, ``is_set``, ``wait``), with no deque until someone waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self, value: bool) -> None:
        self._set = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if not self._set:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            await waiter
        return True


class GoingAwayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol, closing with 1001 when the server shuts down,
    and lighter per socket (module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag(True)  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused
        if scope is not None:
            scope["extensions"][WRITE_TEXT] = self.write_text

    def write_text(self, payload: bytes) -> bool:
        """Write one text frame now; False when it cannot go at once (the handshake is not
        through, the transport is paused, or frames are compressed): then the ASGI send,
        which waits. ``ClientDisconnected`` when the socket is closed or closing."""
        if self.disconnected or self.close_sent or self.transport.is_closing():
            raise ClientDisconnected
        conn = self.conn
        if not self.handshake_complete or not self.writable.is_set() or conn.extensions:
            return False
        if conn.state is not State.OPEN:
            raise ClientDisconnected
        self.transport.write(text_frame(payload))
        return True

    def start_keepalive(self) -> None:
        # Called once the handshake's response is written: nothing reads the handshake's
        # request or response again (the app has its scope). websockets' parser generator
        # holds the request for the connection's life too: its headers are emptied.
        self.request.headers.clear()
        self.request = self.response = None  # type: ignore[assignment]
        super().start_keepalive()

    def shutdown(self) -> None:
        """uvicorn's, with the close code changed (it is not a parameter)."""
        self.stop_keepalive()
        if self.close_sent:
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.transport.close()
            return
        if self.handshake_complete:
            self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
            self.conn.send_close(GOING_AWAY)
            self.transport.write(b"".join(self.conn.data_to_send()))
        else:
            self.send_500_response()
        self.transport.close()


def run(app: Any, settings: Settings, log_format: LogFormat, **options: Any) -> None:
    """``uvicorn.run`` with Starling's logging, shutdown and WebSocket settings; ``options``
    are uvicorn's (host, port, workers, factory...)."""
    uvicorn.run(
        app,
        log_config=logging_config(settings.log_level, log_format),
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        ws=f"{__name__}:{GoingAwayWebSocketProtocol.__name__}",
        # The client address is Starling's to work out (TRUSTED_PROXY_HOPS, app.client_address):
        # uvicorn's own X-Forwarded-For handling would trust any proxy on loopback.
        proxy_headers=False,
        # A WebSocket frame is a request too (socket_protocols checks it again, with an answer).
        ws_max_size=settings.request_body_max_bytes,
        **options,
    )
