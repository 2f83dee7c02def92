"""The two WebSocket protocols (graphql-transport-ws, legacy graphql-ws) as Starling runs
them: Strawberry's handlers, with

- **subscriptions only**: a query or mutation sent over a socket is refused with
  ``BAD_USER_INPUT`` (they go over HTTP, where every request is authenticated, rate-limited
  and answered with ``RateLimit-*`` headers). graphql-transport-ws allows them; refusing
  them keeps a socket, which authenticates once, from ever writing;
- a ``connection_init`` timeout for both protocols (Strawberry has one for
  graphql-transport-ws only): a socket that has not sent it in time is closed with 4408;
- ``terminate``, which the session watch calls when the connection's token dies: nothing
  more is sent, every operation ends, and the socket closes with the code given (4401);
- **frames checked first**: Strawberry's protocol handlers trust a frame's shape once it is
  JSON (a ``payload`` that is a list, a ``query`` that is a number, an ``id`` missing from
  ``stop`` made them raise: the connection died with a traceback, or the operation
  answered INTERNAL_SERVER_ERROR). A frame the protocols cannot handle closes the socket
  with 4400 (graphql-transport-ws's "bad request") and the reason; so does a frame over
  ``REQUEST_BODY_MAX_BYTES`` with 1009 ("message too big").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.graphql import OperationType

from starling.resolvers.context import RequestContext

INIT_TIMEOUT_CODE = 4408  # graphql-transport-ws's code, used for both protocols
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
    bytes (what HTTP responses want), which strawberry would send as binary frames. Once
    the connection is being terminated, whatever its operations still send is dropped."""

    terminating = False

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
        if self.terminating:
            return
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    async def terminate(self, code: int, reason: str) -> None:
        self.terminating = True
        # The client may be gone already, or the socket closing for another reason.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.ws.close(code=code, reason=reason)


class _SubscriptionsOnly:
    """The schema as a socket sees it: ``stream`` runs subscriptions and refuses the rest."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["allowed_operation_types"] = (OperationType.SUBSCRIPTION,)
        return await self._schema.stream(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)


class TransportWSHandler(BaseGraphQLTransportWSHandler[RequestContext, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = _SubscriptionsOnly(self.schema)  # type: ignore[assignment]
        self.context.close_connection = self.terminate

    async def terminate(self, code: int, reason: str) -> None:
        adapter: TextFrameWebSocketAdapter = self.websocket  # type: ignore[assignment]
        adapter.terminating = True
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        await adapter.terminate(code, reason)


class LegacyWSHandler(BaseGraphQLWSHandler[RequestContext, None]):
    """graphql-ws already refuses what is not a subscription (``schema.subscribe``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context.close_connection = self.terminate

    async def handle(self) -> None:
        timeout = asyncio.create_task(self._close_unless_initialised())
        try:
            await super().handle()
        finally:
            timeout.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timeout

    async def _close_unless_initialised(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self.connection_acknowledged:
            await self.websocket.close(code=INIT_TIMEOUT_CODE, reason="Connection initialisation timeout")

    async def terminate(self, code: int, reason: str) -> None:
        adapter: TextFrameWebSocketAdapter = self.websocket  # type: ignore[assignment]
        await adapter.terminate(code, reason)
        for task in list(self.tasks.values()):
            task.cancel()  # their goodbyes ("complete") are dropped: the socket is closed
