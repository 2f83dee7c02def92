"""The WebSocket side of the GraphQL view: frames in and out for both protocols
(graphql-transport-ws and the legacy graphql-ws).

Strawberry's protocol handlers trust a frame's shape once it is JSON: a ``payload`` that is
a list, a ``query`` that is a number, an ``id`` missing from ``stop`` made them raise
(the connection died with a traceback, or the operation answered INTERNAL_SERVER_ERROR).
Here every frame is checked first, and one the protocols cannot handle closes the socket
with 4400 (graphql-transport-ws's "bad request") and the reason; so does a frame over
``REQUEST_BODY_MAX_BYTES`` with 1009 ("message too big").
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected

BAD_REQUEST = 4400
MESSAGE_TOO_BIG = 1009  # RFC 6455
# Message types that name an operation by `id`, in either protocol.
WITH_ID = frozenset({"subscribe", "complete", "start", "stop"})
# ...and those whose payload is an operation: {query, variables, operationName, extensions}.
OPERATIONS = frozenset({"subscribe", "start"})
_NULL = type(None)
OPERATION_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "query": ((str,), "a string"),
    "variables": ((dict, _NULL), "an object or null"),
    "operationName": ((str, _NULL), "a string or null"),
    "extensions": ((dict, _NULL), "an object or null"),
}


def frame_problem(message: Mapping[str, Any]) -> str | None:
    """Why a JSON object frame cannot be handled, or None when it can."""
    kind = message.get("type")
    if kind in WITH_ID and not isinstance(message.get("id"), str):
        return f"A {kind} message needs a string `id`"
    if kind not in OPERATIONS:
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return f"A {kind} message's payload must be an object"
    for name, (types, expected) in OPERATION_FIELDS.items():
        if not isinstance(payload.get(name), types):
            return f"The operation's `{name}` must be {expected}"
    return None


class TextFrameWebSocketAdapter(ASGIWebSocketAdapter):
    """Both subscription protocols carry JSON in text frames, while ``encode_json`` gives
    bytes (what HTTP responses want), which strawberry would send as binary frames."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        """Strawberry's loop, with the checks of the module doc. JSON that is not an object
        counts as invalid JSON (graphql-transport-ws closes 4400; graphql-ws ignores it)."""
        max_bytes: int = self.view.message_max_bytes  # type: ignore[attr-defined]
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if len(text) > max_bytes:
                    await self.close(MESSAGE_TOO_BIG, f"Messages are at most {max_bytes} bytes")
                    return
                try:
                    message = orjson.loads(text)
                except orjson.JSONDecodeError:
                    message = None
                if not isinstance(message, dict):
                    if ignore_parsing_errors:
                        continue
                    raise NonJsonMessageReceived
                if problem := frame_problem(message):
                    await self.close(BAD_REQUEST, problem)
                    return
                yield message
        except KeyError as exc:  # a binary frame
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc
