"""OpenTelemetry tracing, optional and off by default (``TRACING_ENABLED``; the ``tracing``
extra installs the packages).

When on, a process exports over OTLP/HTTP (``OTLP_ENDPOINT`` or the exporter's own
``OTEL_EXPORTER_OTLP_*`` variables):

* a server span per HTTP request and WebSocket (OpenTelemetry's ASGI middleware);
* GraphQL operation, parse and validate spans (Strawberry's ``OpenTelemetryExtension``),
  with per-field spans only when ``TRACING_FIELD_SPANS`` is set (a span per field and item
  costs more than most resolvers), and string literals of the query text replaced by
  ``"?"`` (a password written inline in a mutation must not reach a trace);
* a span per Redis command (redis-py instrumentation) and per MongoDB command on a real
  server (PyMongo's command monitoring; the embedded engine is not instrumented);
* a span per background job, continuing the trace of the request that enqueued it: the
  W3C ``traceparent`` travels with the job (``store.job_context``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.middleware import Middleware

from starling.config import Settings
from starling.store import job_context

TRACER_NAME = "starling"
_STRING_LITERAL = re.compile(r'"""(?:[^"]|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"')


def redact_literals(query: str) -> str:
    """The query with every string literal (block strings too) replaced by ``"?"``."""
    return _STRING_LITERAL.sub('"?"', query)


@dataclass
class _Tracing:
    provider: Any
    propagator: job_context.Propagator
    extension: type
    instrumentors: list[Any]


_active: _Tracing | None = None


def enable(settings: Settings, exporter: Any = None) -> Any:
    """Start tracing in this process (idempotent); returns the tracer provider.

    ``exporter`` replaces the OTLP exporter (tests pass an in-memory one, exported
    synchronously)."""
    global _active
    if _active is not None:
        return _active.provider
    try:
        from opentelemetry import propagate, trace
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
        from opentelemetry.trace import SpanKind
        from strawberry.extensions import LifecycleStep, SchemaExtension
        from strawberry.extensions.tracing import OpenTelemetryExtension
    except ImportError as exc:
        raise RuntimeError(
            "TRACING_ENABLED needs the OpenTelemetry packages: install Starling with the "
            f"`tracing` extra ({exc.name} is missing)"
        ) from exc

    class NoOrphanClientSpans(Sampler):
        """Datastore calls outside any request or job (arq polling its queue, the event hub's
        pings) would each start a trace of one span: those are dropped."""

        def should_sample(
            self, parent_context: Any, trace_id: int, name: str, kind: Any = None, *_: Any, **__: Any
        ) -> Any:
            parent = trace.get_current_span(parent_context).get_span_context()
            if kind is SpanKind.CLIENT and not parent.is_valid:
                return SamplingResult(Decision.DROP)
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE, trace_state=parent.trace_state if parent.is_valid else None
            )

        def get_description(self) -> str:
            return "NoOrphanClientSpans"

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.tracing_service_name}),
        sampler=NoOrphanClientSpans(),
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = trace.get_tracer(TRACER_NAME, tracer_provider=provider)

    def inject(carrier: job_context.Carrier) -> None:
        propagate.inject(carrier)

    @contextlib.contextmanager
    def extract(carrier: job_context.Carrier, job_name: str) -> Iterator[None]:
        parent = propagate.extract(carrier)
        with tracer.start_as_current_span(f"job {job_name}", context=parent, kind=SpanKind.CONSUMER) as span:
            span.set_attribute("messaging.system", "arq")
            span.set_attribute("messaging.operation.name", job_name)
            yield

    class StarlingOpenTelemetry(OpenTelemetryExtension):
        """Strawberry's extension on this provider, with the query's literals redacted."""

        def __init__(self, *, execution_context: Any = None) -> None:
            super().__init__(execution_context=execution_context, tracer_provider=provider)

        def on_operation(self) -> Generator[None, None, None]:
            steps = super().on_operation()
            next(steps)  # the operation span is open, with the query text
            query = self.execution_context.query
            if query:
                self._span_holder[LifecycleStep.OPERATION].set_attribute("query", redact_literals(query))
            yield
            with contextlib.suppress(StopIteration):
                next(steps)

    class WithoutFieldSpans(StarlingOpenTelemetry):
        # Without a resolve hook of its own, Strawberry does not wrap every resolver at all.
        resolve = SchemaExtension.resolve  # type: ignore[assignment]

    extension = StarlingOpenTelemetry if settings.tracing_field_spans else WithoutFieldSpans
    instrumentors: list[Any] = [RedisInstrumentor(), PymongoInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    propagator = job_context.Propagator(inject=inject, extract=extract)
    job_context.register(propagator)
    _active = _Tracing(provider, propagator, extension, instrumentors)
    return provider


def disable() -> None:
    """Stop tracing in this process (tests); spans already ended are flushed first."""
    global _active
    if _active is None:
        return
    job_context.unregister(_active.propagator)
    for instrumentor in _active.instrumentors:
        instrumentor.uninstrument()
    _active.provider.shutdown()
    _active = None


def schema_extensions(settings: Settings) -> list[type]:
    """The schema extensions of a traced app (none when tracing is off); enables tracing."""
    if not settings.tracing_enabled:
        return []
    enable(settings)
    return [_active.extension] if _active is not None else []


def middleware(settings: Settings) -> list[Middleware]:
    """The ASGI middleware of a traced app (none when tracing is off); enables tracing."""
    if not settings.tracing_enabled:
        return []
    provider = enable(settings)
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    # Per-message spans of a long-lived WebSocket would outnumber everything else.
    return [Middleware(OpenTelemetryMiddleware, tracer_provider=provider, exclude_spans=["receive", "send"])]
