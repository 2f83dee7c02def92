"""/metrics after real traffic: every Starling series moves when what it measures happens.

Series are process-wide (one registry), so each check compares a scrape before with one
after the traffic that must move it."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.api import eventually
from tests.harness import started
from tests.realtime import Listener, LiveApp

HOME_FEED = "subscription { homeFeed { id } }"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every label set that includes ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, sample_labels), v in samples.items() if n == name and wanted <= set(sample_labels))


async def test_each_series_moves_with_the_traffic_it_measures(redis_url: str) -> None:
    async with started(redis_url, run_worker_in_process=False) as harness:
        api, http = harness.api, harness.api.http
        before = await scrape(http)
        author, reader = await api.sign_up("metered"), await api.sign_up("reader")
        await api.follow(reader, author)
        await api.gql("query ReaderFeed { homeFeed(first: 5) { nodes { id } } }", token=reader.token)
        await api.post(author, "counted #metrics")
        queued = await scrape(http)  # the fan-out job waits: no worker runs yet
        assert value(queued, "starling_queue_depth") >= 1

        await harness.run_worker()
        await api.gql(
            "query ReaderFeed { homeFeed(first: 5) { nodes { id text author { handle } } } }",
            token=reader.token,
        )
        assert "UNAUTHENTICATED" in await api.error_codes(
            "query ReaderFeed { homeFeed { nodes { id } } }", token="forged"
        )
        assert "BAD_USER_INPUT" in await api.error_codes("query Broken { nope }")
        after = await scrape(http)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("starling_graphql_requests_total", operation="ReaderFeed", outcome="ok") == 2
    assert moved("starling_graphql_requests_total", operation="ReaderFeed", outcome="error") == 1
    assert moved("starling_graphql_requests_total", operation="Broken", outcome="error") == 1
    assert (
        moved("starling_graphql_requests_total", operation="anonymous", outcome="ok") >= 3
    )  # signUp, follow...
    assert moved("starling_graphql_request_duration_seconds_count", operation="ReaderFeed", outcome="ok") == 2
    assert moved("starling_graphql_request_duration_seconds_sum", operation="ReaderFeed") > 0
    assert moved("starling_graphql_errors_total", code="UNAUTHENTICATED") == 1
    assert moved("starling_graphql_errors_total", code="BAD_USER_INPUT") >= 1
    assert moved("starling_dataloader_batch_size_count") > 0
    assert moved("starling_dataloader_batch_size_sum") >= moved("starling_dataloader_batch_size_count")
    assert moved("starling_fanout_jobs_total") >= 1
    assert moved("starling_fanout_deliveries_total") >= 1  # the reader's built timeline
    assert moved("starling_fanout_lag_seconds_count") >= 1
    assert moved("starling_worker_jobs_total", job="fanout_tweet", outcome="ok") >= 1
    assert moved("starling_worker_job_duration_seconds_count", job="fanout_tweet") >= 1
    assert moved("starling_mongo_commands_total") > 0  # the series dashboards already use
    assert moved("starling_redis_round_trips_total") > 0
    assert value(after, "starling_queue_depth") == 0


async def test_sockets_and_subscriptions_are_counted_while_open(live: LiveApp) -> None:
    reader = await live.api.sign_up("listener")
    http = live.api.http
    idle = await scrape(http)
    async with Listener(live.client(reader.token), HOME_FEED):
        await live.settled(1)
        busy = await scrape(http)
    await live.settled(0)

    async def closed() -> bool:
        return value(await scrape(http), "starling_active_websockets") == value(
            idle, "starling_active_websockets"
        )

    await eventually(closed)
    assert value(busy, "starling_active_websockets") == value(idle, "starling_active_websockets") + 1
    assert value(busy, "starling_active_subscriptions") == value(idle, "starling_active_subscriptions") + 1
    assert value(await scrape(http), "starling_active_subscriptions") == value(
        idle, "starling_active_subscriptions"
    )


async def test_an_operation_refused_by_its_budget_is_counted_with_its_code(redis_url: str) -> None:
    async with started(redis_url, rate_limit_query_cost=2, run_worker_in_process=False) as harness:
        api, http = harness.api, harness.api.http
        spender = await api.sign_up("spender")
        before = await scrape(http)
        answers = [await api.http.post("/graphql", json={"query": "query Spent { viewer { id } }"},
                                       headers={"Authorization": f"Bearer {spender.token}"})
                   for _ in range(3)]  # fmt: skip
        after = await scrape(http)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    refused = answers[-1]
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert refused.json()["extensions"]["cost"]["remaining"] == 0
    assert moved("starling_graphql_requests_total", operation="Spent", outcome="ok") == 2
    assert moved("starling_graphql_requests_total", operation="Spent", outcome="error") == 1
    assert moved("starling_graphql_errors_total", code="RATE_LIMITED") == 1
    assert moved("starling_rate_limited_total", limit="cost") == 1
