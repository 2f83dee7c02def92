"""HTTP request bodies: bounded while they are read, and errors in the GraphQL shape.

``BodyLimit`` is ASGI middleware: a request whose ``Content-Length`` is over the limit is
answered 413 before a byte of its body is read; one sent without a length (chunked) is
counted as it arrives and answered 413 as soon as it passes the limit, so the server never
holds more than ``REQUEST_BODY_MAX_BYTES`` of it (the 50 MB body of issue 10 was read and
parsed whole). Paths under a prefix of ``larger`` (media uploads) have that limit instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def error_response(message: str, status_code: int = 400, code: str = "BAD_USER_INPUT") -> Response:
    """A GraphQL error body for a request that never reached the schema."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes the limit; ``BodyLimit`` answers it."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    def limit_for(self, path: str) -> int:
        return next(
            (limit for prefix, limit in self.larger.items() if path.startswith(prefix)), self.max_bytes
        )

    def too_large(self, max_bytes: int) -> Response:
        return error_response(f"The request body is over {max_bytes:,} bytes.", 413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            await self.too_large(max_bytes)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if started:  # nothing reads a body after answering; if something did, say so
                raise
            await self.too_large(max_bytes)(scope, receive, send)
