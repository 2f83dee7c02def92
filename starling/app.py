"""The Starlette application: routes, lifespan and the GraphQL endpoint.

Routes: ``/graphql`` (GraphiQL in a browser when enabled, queries over HTTP, subscriptions
over WebSocket), ``/healthz`` (the process answers), ``/readyz`` (MongoDB and Redis
answer), ``/metrics`` (Prometheus), and with the local media store its upload endpoint and
images (``media_routes``). Every route sits behind the request body limit
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
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import Address, Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.async_base_view import AsyncHTTPRequestAdapter
from strawberry.http.types import QueryParams
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from starling import tracing
from starling.config import Settings
from starling.graphiql import ASSET_DIR, ASSET_ROUTE, offline_page
from starling.http_body import BodyLimit, error_response
from starling.media_routes import media_routes, upload_body_limit
from starling.origins import AllowedOrigins
from starling.persisted_queries import PersistedQueries, PersistedQueryError
from starling.request_log import RequestLogMiddleware
from starling.resolvers.capacity import LiveCapacity, Tally
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import RateLimited
from starling.resolvers.limits import RateLimits, retry_after_seconds
from starling.resolvers.sessions import SessionWatch
from starling.schema import build_schema
from starling.schema.errors import classify
from starling.schema.limits import Documents
from starling.schema.shared import SharedFeeds
from starling.socket_protocols import LegacyWSHandler, TextFrameWebSocketAdapter, TransportWSHandler
from starling.store.gauges import sample_gauges
from starling.store.media.local import local_media_dir
from starling.store.mongo import Mongo
from starling.store.pubsub.hub import EventHub
from starling.store.services import Services

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0
CORS_MAX_AGE_SECONDS = 600
# Response headers a browser page may read (rate limits announce themselves in these).
CORS_EXPOSED_HEADERS = [
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
]
# Strawberry's HTTP refusals, by status, as GraphQL error codes.
HTTP_ERROR_CODES = {404: "NOT_FOUND"}


def client_address(client: Address | None, headers: Headers, proxy_hops: int) -> str | None:
    """The address rate limits and caps count a client by: the TCP peer's, or, behind
    ``proxy_hops`` trusted proxies that each append the address they saw to
    ``X-Forwarded-For``, the entry that many from the right (what the outermost proxy saw;
    entries further left are whatever the client claimed)."""
    if proxy_hops:
        forwarded = [
            entry.strip() for value in headers.getlist("x-forwarded-for") for entry in value.split(",")
        ]
        forwarded = [entry for entry in forwarded if entry]
        if len(forwarded) >= proxy_hops:
            return forwarded[-proxy_hops]
    return client.host if client else None


def rate_limit_headers(limits: RateLimits) -> dict[str, str]:
    """The IETF ``RateLimit-*`` fields (draft-ietf-httpapi-ratelimit-headers) of the budget
    closest to running out, plus ``Retry-After`` when a budget refused."""
    decision = limits.headline()
    if decision is None:
        return {}
    headers = {
        "RateLimit-Limit": str(decision.limit.amount),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_after)),
        "RateLimit-Policy": f"{decision.limit.amount};w={math.ceil(decision.limit.period_seconds)}",
    }
    if not decision.allowed:
        headers["Retry-After"] = str(retry_after_seconds(decision))
    return headers


class StarlingGraphQL(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view with Starling's context, error shape, request parsing,
    persisted queries, origin check, rate limit headers and WebSocket protocols
    (``socket_protocols``)."""

    websocket_adapter_class = TextFrameWebSocketAdapter
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self,
        *args: Any,
        persisted_queries: PersistedQueries,
        shared_feeds: SharedFeeds | None = None,
        origins: AllowedOrigins | None = None,
        message_max_bytes: int = Settings.model_fields["request_body_max_bytes"].default,
        **kwargs: Any,
    ) -> None:
        # Subscriptions are counted by themselves (resolvers.capacity), with an error code.
        super().__init__(*args, **{**kwargs, "max_subscriptions_per_connection": None})
        self.persisted_queries = persisted_queries
        self.shared_feeds = shared_feeds  # home feeds executed once per event (schema.shared)
        self.origins = origins or AllowedOrigins.parse("")
        self.message_max_bytes = message_max_bytes

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        # Called for cross-origin handshakes only: same-origin and non-browser clients pass.
        return self.origins.allows(origin)

    @property
    def graphql_ide_html(self) -> str:
        return offline_page()  # the assets come from Starling, not a CDN

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        state = request.app.state
        services: Services = state.services
        settings = services.settings
        address = client_address(request.client, request.headers, settings.trusted_proxy_hops)
        live: LiveCapacity = state.live
        context = RequestContext(
            services=services,
            authorization=request.headers.get("authorization"),
            request=request,
            response=response,
            hub=state.hub,
            client_address=address,
            limits=RateLimits(services, address) if settings.rate_limits_enabled else None,
            live=live,
            subscriptions=live.connection_tally(),
            sessions=state.sessions,
        )
        request.state.context = context
        return context

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
        """``connection_init``: a signed-in connection is watched until its token dies."""
        viewer = await context.viewer()
        if viewer is not None:
            context.watch_session(viewer)
        return UNSET

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Parse errors never reach the schema's extensions; code them here too.
        if result.errors:
            result.errors = [classify(error) for error in result.errors]
        context: RequestContext | None = getattr(request.state, "context", None)
        if context is not None and context.limits is not None and isinstance(context.response, Response):
            context.response.headers.update(rate_limit_headers(context.limits))
            if result.data is None and any(_code(error) == "RATE_LIMITED" for error in result.errors or []):
                context.response.status_code = 429  # refused as a whole: nothing ran
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
        data: dict[str, Any] = dict(params)
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
        if scope["type"] == "websocket":
            await self._serve_socket(WebSocket(scope, receive=receive, send=send))
            return
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

    async def _serve_socket(self, websocket: WebSocket) -> None:
        """One WebSocket, counted against its address's cap for as long as it is open."""
        context = await self.get_context(websocket, websocket)
        sockets: Tally = websocket.app.state.live.sockets
        try:
            sockets.check(context.client_address)
        except RateLimited as refused:
            await refuse_socket(websocket, refused)
            return
        with sockets.hold(context.client_address):
            try:
                await self.run(websocket, context=context)
            finally:
                context.end_session()


def _code(error: GraphQLError) -> object:
    return (error.extensions or {}).get("code")


async def refuse_socket(websocket: WebSocket, refused: RateLimited) -> None:
    """Refuse a handshake with HTTP 429 and a GraphQL error body; with a server that cannot
    answer a handshake with a response, accept and close with 1013 (try again later)."""
    body = orjson.dumps({"errors": [{"message": refused.message, "extensions": refused.extensions}]})
    try:
        await websocket.send_denial_response(Response(body, status_code=429, media_type="application/json"))
    except RuntimeError:
        await websocket.accept()
        await websocket.close(code=1013, reason="Too many WebSockets from your address")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    probes = (
        ("mongodb", services.mongo.ping()),
        ("redis", services.redis.ping()),
        ("queue_redis", services.queue_redis.ping()),
    )
    for name, probe in probes:
        try:
            await asyncio.wait_for(probe, READY_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready", whatever its kind
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    await sample_gauges(request.app.state.services, request.app.state.hub)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def home(request: Request) -> Response:
    return RedirectResponse("/graphql")


StartupHook = Callable[[Services], Awaitable[None]]


class BackgroundWorker(Protocol):
    """Work the process runs beside the API (the in-process arq worker of ``starling dev``)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


WorkerFactory = Callable[[Services, Settings], BackgroundWorker]


def create_app(
    settings: Settings,
    *,
    mongo: Mongo | None = None,
    on_ready: Sequence[StartupHook] = (),
    worker: WorkerFactory | None = None,
) -> Starlette:
    """The ASGI app. ``settings.redis_url`` and ``settings.token_secret`` must be set (the
    CLI fills them in for ``starling dev``); ``mongo`` lets a caller share an embedded
    engine with other components of the same process; ``on_ready`` hooks run once the
    services are open (demo seeding); ``worker`` builds what runs beside the API once the
    services are open (the CLI hands in the in-process arq worker: the app does not know
    the worker)."""
    settings.require("redis_url", "token_secret", role="the API app (`starling dev` sets both itself)")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await Services.open(settings, mongo=mongo)
        app.state.services = services
        # One Redis subscription connection for every live subscriber of this process.
        hub = EventHub(
            services.queue_redis,
            queue_size=settings.subscriber_queue_size,
            ping_seconds=settings.event_hub_ping_seconds,
            reconnect_seconds=settings.event_hub_reconnect_seconds,
        )
        await hub.start()
        app.state.hub = hub
        app.state.live = LiveCapacity.from_settings(settings)
        sessions = SessionWatch(services, hub, settings.ws_token_recheck_seconds)
        await sessions.start()
        app.state.sessions = sessions
        background = worker(services, settings) if worker is not None else None
        if background is not None:
            background.start()
        for hook in on_ready:
            await hook(services)
        log.info(
            "Starling ready: MongoDB %s, Redis %s, worker %s",
            "embedded (mongomock)" if services.mongo.embedded else "server",
            settings.redis_url,
            "in-process" if background else "external (`starling worker`)",
        )
        try:
            yield
        finally:
            if background is not None:
                await background.stop()
            await sessions.stop()
            await hub.stop()
            await services.close(close_mongo=mongo is None)

    # graphql-ws clients get a `ka` message every interval; graphql-transport-ws clients get
    # pongs to their pings, and uvicorn pings every WebSocket (ws_ping_interval) to find and
    # close dead peers, whose subscriptions are then cleaned up.
    origins = AllowedOrigins.parse(settings.cors_allowed_origins)
    if settings.graphiql_enabled:
        offline_page()  # a page naming an asset Starling does not ship fails here, not in a browser
    documents = Documents.from_settings(settings)
    schema = build_schema(
        documents,
        tracing.schema_extensions(settings),
        compiled_execution=settings.graphql_compiled_execution,
        differential_check=settings.graphql_execution_differential_check,
    )
    graphql = StarlingGraphQL(
        schema,
        shared_feeds=SharedFeeds(schema._schema, documents, schema.execution_context_class),
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        keep_alive=True,
        keep_alive_interval=settings.ws_keep_alive_seconds,
        connection_init_wait_timeout=timedelta(seconds=settings.ws_connection_init_timeout_seconds),
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
            *(
                [Mount(ASSET_ROUTE, StaticFiles(directory=ASSET_DIR), name="graphiql-assets")]
                if settings.graphiql_enabled
                else []
            ),
            *(media_routes(local_media_dir(settings)) if settings.media_store == "local" else []),
        ],
        middleware=[
            *tracing.middleware(settings),
            Middleware(RequestLogMiddleware),
            # Outside the body limit, so that every answer (a 413 included) carries the CORS
            # headers; the two above only observe.
            Middleware(
                CORSMiddleware,
                allow_origins=["*"] if origins.any else [],
                allow_origin_regex=origins.regex,
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
                expose_headers=CORS_EXPOSED_HEADERS,
                max_age=CORS_MAX_AGE_SECONDS,
            ),
            Middleware(
                BodyLimit,
                max_bytes=settings.request_body_max_bytes,
                larger=upload_body_limit(settings.media_max_bytes) if settings.media_store == "local" else {},
            ),
        ],
        lifespan=lifespan,
    )
