"""The two WebSocket protocols (graphql-transport-ws, legacy graphql-ws) as Starling runs
them: Strawberry's handlers, with

- **subscriptions only**: a query or mutation sent over a socket is refused with
  ``BAD_USER_INPUT`` (they go over HTTP, where every request is authenticated, rate-limited
  and answered with ``RateLimit-*`` headers). graphql-transport-ws allows them; refusing
  them keeps a socket, which authenticates once, from ever writing;
- a ``connection_init`` timeout for both protocols (Strawberry has one for
  graphql-transport-ws only): a socket that has not sent it in time is closed with 4408;
- ``terminate``, which the session watch calls when the connection's token dies: nothing
  more is sent, every operation ends, and the socket closes with the code given (4401).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.graphql import OperationType

from starling.resolvers.context import RequestContext

INIT_TIMEOUT_CODE = 4408  # graphql-transport-ws's code, used for both protocols


class TextFrameWebSocketAdapter(ASGIWebSocketAdapter):
    """Both subscription protocols carry JSON in text frames, while ``encode_json`` gives
    bytes (what HTTP responses want), which strawberry would send as binary frames. Once
    the connection is being terminated, whatever its operations still send is dropped."""

    terminating = False

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
