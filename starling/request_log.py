"""The ASGI middleware around the whole app: a request ID per request, one log line per
HTTP request, and the count of open WebSockets.

The request ID is the client's ``X-Request-ID`` when it is a sane token, else a new one;
it is returned in the ``X-Request-ID`` response header (on a WebSocket, in the handshake
response), set in ``store.job_context.REQUEST_ID`` so every log line of the request and of
the jobs it enqueues carries it.

The request line (``starling.requests`` at INFO) replaces uvicorn's access log, which
would print the query string: method, path, status, duration, and the GraphQL operations
the request ran with their error codes (``schema.observability`` records them in the ASGI
scope under ``OPERATIONS_SCOPE_KEY``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starling.schema.observability import OPERATIONS_SCOPE_KEY, OperationRecord
from starling.store.job_context import REQUEST_ID
from starling.store.metrics import ACTIVE_WEBSOCKETS

log = logging.getLogger("starling.requests")

HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER and _VALID_ID.match(value):
            return str(value.decode())
    return uuid.uuid4().hex


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = REQUEST_ID.set(request_id)
        try:
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send, request_id)
            else:
                await self._http(scope, receive, send, request_id)
        finally:
            REQUEST_ID.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding
        operations: list[OperationRecord] = []
        scope[OPERATIONS_SCOPE_KEY] = operations

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            codes = sorted({code for operation in operations for code in operation.codes})
            fields: dict[str, Any] = {
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "duration_ms": duration_ms,
            }
            if operations:
                fields["operations"] = [operation.name for operation in operations]
                fields["error_codes"] = codes
            described = " ".join(operation.describe() for operation in operations)
            log.info(
                "%s %s %d %.1f ms%s",
                fields["method"],
                fields["path"],
                status,
                duration_ms,
                f" {described}" if described else "",
                extra=fields,
            )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        async def send_with_id(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id.encode())]
            await send(message)

        ACTIVE_WEBSOCKETS.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            ACTIVE_WEBSOCKETS.dec()
