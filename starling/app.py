"""The Starlette application: routes, lifespan and the GraphQL endpoint.

Routes: ``/graphql`` (GraphiQL in a browser when enabled, queries over HTTP, subscriptions
over WebSocket), ``/healthz`` (the process answers), ``/readyz`` (MongoDB and Redis
answer), ``/metrics`` (Prometheus). Every route sits behind the request body limit
(``http_body``) and CORS for the origins of ``CORS_ALLOWED_ORIGINS`` (``origins``).

A request the schema never sees (a body that is not a JSON object, a wrong type for
``query``, ``operationName``, ``variables`` or ``extensions``) is answered 400 with a
GraphQL error, ``extensions.code`` ``BAD_USER_INPUT``. Batches (a JSON array) are not
supported: Strawberry answers them 400 too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import orjson
from cross_web import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.async_base_view import AsyncHTTPRequestAdapter
from strawberry.http.types import QueryParams
from strawberry.types import ExecutionResult

from starling.config import Settings, get_settings
from starling.http_body import BodyLimit, error_response
from starling.origins import AllowedOrigins
from starling.persisted_queries import PersistedQueries, PersistedQueryError
from starling.resolvers.context import RequestContext
from starling.resolvers.tokens import restore_revocations
from starling.schema import build_schema
from starling.schema.errors import classify
from starling.schema.limits import Documents
from starling.store.mongo import Mongo
from starling.store.pubsub import EventHub
from starling.store.services import Services
from starling.websocket import TextFrameWebSocketAdapter
from starling.workers.inprocess import InProcessWorker

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0
CORS_MAX_AGE_SECONDS = 600
# Response headers a browser page may read (rate limits announce themselves in these).
CORS_EXPOSED_HEADERS = ["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]
# Strawberry's HTTP refusals, by status, as GraphQL error codes.
HTTP_ERROR_CODES = {404: "NOT_FOUND"}


class StarlingGraphQL(GraphQL):
    """Strawberry's ASGI view with Starling's context, error shape, request parsing,
    persisted queries and origin check."""

    websocket_adapter_class = TextFrameWebSocketAdapter

    def __init__(
        self,
        *args: Any,
        persisted_queries: PersistedQueries,
        origins: AllowedOrigins | None = None,
        message_max_bytes: int = Settings.model_fields["request_body_max_bytes"].default,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.persisted_queries = persisted_queries
        self.origins = origins or AllowedOrigins.parse("")
        self.message_max_bytes = message_max_bytes

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        # Called for cross-origin handshakes only: same-origin and non-browser clients pass.
        return self.origins.allows(origin)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        return RequestContext(
            services=request.app.state.services,
            authorization=request.headers.get("authorization"),
            request=request,
            response=response,
            hub=request.app.state.hub,
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Parse errors never reach the schema's extensions; code them here too.
        if result.errors:
            result.errors = [classify(error) for error in result.errors]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        """orjson: strict UTF-8 (invalid bytes, latin-1 text and lone surrogates are
        refused) and nesting bounded (1024 levels); what it refuses is answered 400."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise HTTPException(400, f"The request is not valid JSON: {exc.msg}.") from None

    def parse_json(self, data: str | bytes) -> Any:
        """A POST body: a JSON object (an array is a batch, which Strawberry refuses)."""
        body = self.decode_json(data)
        if not isinstance(body, dict | list):
            raise HTTPException(400, "A GraphQL request body must be a JSON object.")
        return body

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        # GET: ``variables`` and ``extensions`` are JSON text; their types are checked with
        # the body's fields (``parse_http_body``).
        data = dict(params)
        for name in ("variables", "extensions"):
            if data.get(name):
                data[name] = self.decode_json(data[name])
        return data

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item.operation_name, str | None):
                raise HTTPException(400, "The GraphQL operation's `operationName` must be a string or null.")
            self.persisted_queries.resolve(item)
        return data

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            # Malformed JSON, a missing query, a wrong method: still a GraphQL error body.
            code = HTTP_ERROR_CODES.get(exc.status_code, "BAD_USER_INPUT")
            response = error_response(exc.reason, exc.status_code, code)
        except PersistedQueryError as exc:
            response = error_response(exc.message, exc.status_code, exc.code)
        await response(scope, receive, send)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    for name, probe in (("mongodb", services.mongo.ping()), ("redis", services.redis.ping())):
        try:
            await asyncio.wait_for(probe, READY_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready", whatever its kind
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def home(request: Request) -> Response:
    return RedirectResponse("/graphql")


StartupHook = Callable[[Services], Awaitable[None]]


def create_app(
    settings: Settings, *, mongo: Mongo | None = None, on_ready: Sequence[StartupHook] = ()
) -> Starlette:
    """The ASGI app. ``settings.redis_url`` and ``settings.token_secret`` must be set (the
    CLI fills them in for ``starling dev``); ``mongo`` lets a caller share an embedded
    engine with other components of the same process; ``on_ready`` hooks run once the
    services are open (demo seeding)."""
    if settings.redis_url is None or settings.token_secret is None:
        raise ValueError("create_app needs settings.redis_url and settings.token_secret")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.redis_url is not None
        services = await Services.open(settings, settings.redis_url, mongo=mongo)
        app.state.services = services
        # One Redis subscription connection for every live subscriber of this process.
        hub = EventHub(
            services.redis,
            queue_size=settings.subscriber_queue_size,
            ping_seconds=settings.event_hub_ping_seconds,
            reconnect_seconds=settings.event_hub_reconnect_seconds,
        )
        await hub.start()
        app.state.hub = hub
        await restore_revocations(services)
        worker = InProcessWorker(services, settings) if settings.run_worker_in_process else None
        if worker is not None:
            worker.start()
        for hook in on_ready:
            await hook(services)
        log.info(
            "Starling ready: MongoDB %s, Redis %s, worker %s",
            "embedded (mongomock)" if services.mongo.embedded else "server",
            settings.redis_url,
            "in-process" if worker else "external (`starling worker`)",
        )
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await hub.stop()
            await services.close(close_mongo=mongo is None)

    # graphql-ws clients get a `ka` message every interval; graphql-transport-ws clients get
    # pongs to their pings, and uvicorn pings every WebSocket (ws_ping_interval) to find and
    # close dead peers, whose subscriptions are then cleaned up.
    origins = AllowedOrigins.parse(settings.cors_allowed_origins)
    graphql = StarlingGraphQL(
        build_schema(Documents.from_settings(settings)),
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        keep_alive=True,
        keep_alive_interval=settings.ws_keep_alive_seconds,
        persisted_queries=PersistedQueries(
            settings.persisted_queries_max,
            settings.persisted_queries_max_bytes,
            settings.persisted_queries_entry_max_bytes,
        ),
        origins=origins,
        message_max_bytes=settings.request_body_max_bytes,
    )
    return Starlette(
        routes=[
            Route("/", home),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        middleware=[
            # Outermost, so that every answer (a 413 included) carries the CORS headers.
            Middleware(
                CORSMiddleware,
                allow_origins=["*"] if origins.any else [],
                allow_origin_regex=origins.regex,
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
                expose_headers=CORS_EXPOSED_HEADERS,
                max_age=CORS_MAX_AGE_SECONDS,
            ),
            Middleware(BodyLimit, max_bytes=settings.request_body_max_bytes),
        ],
        lifespan=lifespan,
    )


def app_from_environment() -> Starlette:
    """The factory ``starling serve`` hands to uvicorn (one call per worker process)."""
    return create_app(get_settings())
