"""Tracing (TRACING_ENABLED): one trace spans a postTweet request and the fan-out job it
enqueued, with Redis commands inside both; off by default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from starling import tracing
from starling.config import Settings
from starling.schema import schema
from tests.api import eventually
from tests.harness import started

POST = 'mutation PostTweet { postTweet(text: "traced from end to end") { id } }'


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracing.enable(Settings(tracing_enabled=True), exporter=spans)
    try:
        yield spans
    finally:
        tracing.disable()


async def test_one_trace_spans_a_post_and_its_fanout_job(
    redis_url: str, exporter: InMemorySpanExporter
) -> None:
    async with started(redis_url, tracing_enabled=True) as harness:
        api = harness.api
        author, reader = await api.sign_up("tracer"), await api.sign_up("follower")
        await api.follow(reader, author)
        await api.feed_page(reader)  # a built timeline, for the fan-out to write to
        exporter.clear()
        response = await api.http.post(
            "/graphql", json={"query": POST}, headers={"Authorization": f"Bearer {author.token}"}
        )
        assert response.json()["data"]["postTweet"]["id"]

        def job_spans() -> list:
            return [s for s in exporter.get_finished_spans() if s.name == "job fanout_tweet"]

        async def fanned_out() -> bool:
            return bool(job_spans())

        await eventually(fanned_out)
    spans = exporter.get_finished_spans()
    [operation] = [s for s in spans if s.name == "GraphQL Query: PostTweet"]
    [request] = [s for s in spans if s.kind.name == "SERVER" and s.name.startswith("POST /graphql")]
    [job] = job_spans()
    trace_id = request.context.trace_id
    assert operation.context.trace_id == trace_id and job.context.trace_id == trace_id
    assert job.parent is not None and job.parent.trace_id == trace_id  # a child, not a new root
    redis_in_job = [s for s in spans if s.parent is not None and s.parent.span_id == job.context.span_id]
    assert redis_in_job, "the job's Redis and MongoDB calls are spans inside it"
    assert any(s.context.trace_id == trace_id and s.attributes.get("db.system") == "redis" for s in spans)
    assert not [s for s in spans if s.name.startswith("GraphQL Resolving")], (
        "per-field spans are off by default"
    )


def test_string_literals_never_reach_a_span() -> None:
    query = 'mutation { logIn(handle: "demo", password: "hunter \\" 2") { token } } # """block"""'
    assert "hunter" not in tracing.redact_literals(query) and "demo" not in tracing.redact_literals(query)
    assert tracing.redact_literals(query).startswith('mutation { logIn(handle: "?", password: "?")')


def test_tracing_is_off_by_default() -> None:
    assert Settings().tracing_enabled is False
    assert tracing.middleware(Settings()) == []
    assert not any("OpenTelemetry" in getattr(ext, "__name__", "") for ext in schema.extensions)
