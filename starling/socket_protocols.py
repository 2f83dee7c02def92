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
  ``REQUEST_BODY_MAX_BYTES`` with 1009 ("message too big");
- **shared home feeds**: a subscription ``schema.shared`` can execute once for all its
  subscribers is handed to it instead of Strawberry's operation task; its frames are the
  shared payload spliced with the operation's id (``frame_prefix``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Coroutine, Mapping
from typing import Any

import orjson
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.graphql import OperationType

from starling.resolvers.context import RequestContext
from starling.schema.shared import SharedFeeds, SharedSubscription
from starling.server import WRITE_TEXT

INIT_TIMEOUT_CODE = 4408  # graphql-transport-ws's code, used for both protocols
BAD_REQUEST = 4400
DUPLICATE_ID = 4409  # graphql-transport-ws: "Subscriber for <id> already exists"
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
        await self.send_text(orjson.dumps(message).decode())

    async def send_text(self, text: str) -> None:
        if self.terminating:
            return
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    def write_now(self, text: str) -> bool:
        """Send a text frame without waiting, through the server's ``WRITE_TEXT`` extension;
        False when it cannot go at once (no such extension, the peer is not reading): then
        ``send_text``, which waits for the socket."""
        if self.terminating:
            return True  # dropped, as send_text drops it
        write = self.ws.scope.get("extensions", {}).get(WRITE_TEXT)
        if write is None:
            return False
        try:
            written: bool = write(text.encode())
        except OSError as exc:  # uvicorn's ClientDisconnected
            raise WebSocketDisconnected from exc
        return written

    async def terminate(self, code: int, reason: str) -> None:
        self.terminating = True
        # The client may be gone already, or the socket closing for another reason.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.ws.close(code=code, reason=reason)


class _SharedOperations:
    """Both handlers' side of shared subscriptions (``schema.shared``): the records by
    operation id, how their frames start and go out, and how they end."""

    websocket: Any
    view: Any
    context: RequestContext
    NEXT = "next"

    def _init_shared(self) -> None:
        self.shared: dict[str, SharedSubscription] = {}

    async def _open_shared(self, operation_id: str, payload: Mapping[str, Any]) -> bool:
        """Whether the operation is now a shared subscription (else Strawberry runs it)."""
        feeds: SharedFeeds | None = getattr(self.view, "shared_feeds", None)
        if feeds is None:
            return False
        record = await feeds.open(
            self.context,
            self,
            operation_id,
            payload["query"],
            payload.get("variables"),
            payload.get("operationName"),
        )
        if record is None:
            return False
        self.shared[operation_id] = record
        return True

    def _close_shared(self, operation_id: str) -> bool:
        record = self.shared.pop(operation_id, None)
        if record is None:
            return False
        record.close()
        return True

    def _close_all_shared(self) -> None:
        for operation_id in list(self.shared):
            self._close_shared(operation_id)

    def frame_prefix(self, operation_id: str) -> str:
        return f'{{"id":{orjson.dumps(operation_id).decode()},"type":"{self.NEXT}","payload":'

    def send_text(self, text: str) -> Coroutine[Any, Any, None]:
        adapter: TextFrameWebSocketAdapter = self.websocket
        return adapter.send_text(text)

    def write_now(self, text: str) -> bool:
        adapter: TextFrameWebSocketAdapter = self.websocket
        return adapter.write_now(text)

    async def end_shared(self, operation_id: str, errors: list[dict[str, Any]] | None) -> None:
        self.shared.pop(operation_id, None)
        adapter: TextFrameWebSocketAdapter = self.websocket
        with contextlib.suppress(WebSocketDisconnected):
            if errors:
                await adapter.send_json(
                    {"id": operation_id, "type": self.NEXT, "payload": {"data": None, "errors": errors}}
                )
            await adapter.send_json({"id": operation_id, "type": "complete"})


class _SubscriptionsOnly:
    """The schema as a socket sees it: ``stream`` runs subscriptions and refuses the rest."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["allowed_operation_types"] = (OperationType.SUBSCRIPTION,)
        return await self._schema.stream(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)


class TransportWSHandler(_SharedOperations, BaseGraphQLTransportWSHandler[RequestContext, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_shared()
        self.schema = _SubscriptionsOnly(self.schema)  # type: ignore[assignment]
        self.context.close_connection = self.terminate

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        # Strawberry cancels its connection_init timeout here but keeps the task, and with it
        # the CancelledError and its traceback, for the connection's life (~1 KiB a socket).
        # The cancelled task finishes by itself; shutdown has nothing left to wait for.
        self.connection_init_timeout_task = None

    async def handle_subscribe(self, message: Any) -> None:
        operation_id = message["id"]
        if operation_id in self.shared:
            await self.websocket.close(
                code=DUPLICATE_ID, reason=f"Subscriber for {operation_id} already exists"
            )
            return
        if (
            self.connection_acknowledged
            and operation_id not in self.operations
            and await self._open_shared(operation_id, message["payload"])
        ):
            return
        await super().handle_subscribe(message)

    async def cleanup_operation(self, operation_id: str) -> None:
        if not self._close_shared(operation_id):
            await super().cleanup_operation(operation_id)

    async def shutdown(self) -> None:
        self._close_all_shared()
        await super().shutdown()

    async def terminate(self, code: int, reason: str) -> None:
        adapter: TextFrameWebSocketAdapter = self.websocket
        adapter.terminating = True
        self._close_all_shared()
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        await adapter.terminate(code, reason)


class LegacyWSHandler(_SharedOperations, BaseGraphQLWSHandler[RequestContext, None]):
    """graphql-ws already refuses what is not a subscription (``schema.subscribe``)."""

    NEXT = "data"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_shared()
        self.context.close_connection = self.terminate

    async def handle_start(self, message: Any) -> None:
        operation_id = message["id"]
        if self.connection_acknowledged:
            if operation_id in self.tasks or operation_id in self.shared:
                await self.cleanup_operation(operation_id)  # a new start replaces the old
            if await self._open_shared(operation_id, message["payload"]):
                return
        await super().handle_start(message)

    async def cleanup_operation(self, operation_id: str) -> None:
        """``stop``: a shared subscription says ``complete``, as Strawberry's do."""
        if self._close_shared(operation_id):
            with contextlib.suppress(WebSocketDisconnected):
                await self.send_message({"type": "complete", "id": operation_id})
            return
        await super().cleanup_operation(operation_id)

    async def cleanup(self) -> None:
        self._close_all_shared()  # the socket is gone: nothing to say
        await super().cleanup()

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
        adapter: TextFrameWebSocketAdapter = self.websocket
        await adapter.terminate(code, reason)
        self._close_all_shared()
        for task in list(self.tasks.values()):
            task.cancel()  # their goodbyes ("complete") are dropped: the socket is closed
