"""A Redis loss under load: the server's Redis flushed in the middle of the mixed scenario.

While wrk sends the mixed load, a sampler reads ``homeFeed`` as other users, one request
every ``SAMPLE_INTERVAL_SECONDS``, and ``FLUSH_AT_SHARE`` of the way into the run the
harness sends ``FLUSHALL`` to the server's Redis: every home timeline, author list, cache,
counter, rate limit and queued job is gone at once, as when a Redis node comes back empty.
Every reader's next page then rebuilds its timeline from MongoDB, at most
``rebuild_concurrency_max`` at once per process.

What the report reads from it: the sampler's latency second by second around the flush,
its errors, and how long after the flush its latency was back to what it was before
(``recovered_after_s``), beside wrk's figures for the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.stats import percentile

SAMPLE_INTERVAL_SECONDS = 0.05
FLUSH_AT_SHARE = 1 / 3
# Recovered: from this second on, every second's median is within this factor of the
# median before the flush.
RECOVERED_FACTOR = 1.5
SAMPLE_QUERY = "query Sample { homeFeed(first: 20) { edges { node { id author { handle } likeCount } } } }"


@dataclass
class Samples:
    """(sent at, latency ms, answered without errors) per sampled read, on the monotonic
    clock, and when the flush was sent."""

    reads: list[tuple[float, float, bool]] = field(default_factory=list)
    flushed_at: float = 0.0

    def since_flush(self) -> list[tuple[float, float, bool]]:
        return [(sent - self.flushed_at, latency, ok) for sent, latency, ok in self.reads]

    def per_second(self) -> list[dict[str, Any]]:
        seconds: dict[int, list[tuple[float, bool]]] = {}
        for at, latency, ok in self.since_flush():
            seconds.setdefault(int(at // 1), []).append((latency, ok))
        rows = []
        for second in sorted(seconds):
            latencies = sorted(latency for latency, _ in seconds[second])
            rows.append(
                {
                    "second": second,
                    "reads": len(latencies),
                    "p50_ms": round(percentile(latencies, 50), 1),
                    "max_ms": round(latencies[-1], 1),
                    "errors": sum(1 for _, ok in seconds[second] if not ok),
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        rows, reads = self.per_second(), self.since_flush()
        before = sorted(latency for at, latency, _ in reads if at < 0)
        baseline = percentile(before, 50) if before else None
        recovered: int | None = None
        if baseline is not None:
            after = [row for row in rows if row["second"] >= 0]
            for index, row in enumerate(after):
                if all(later["p50_ms"] <= RECOVERED_FACTOR * baseline for later in after[index:]):
                    recovered = row["second"]
                    break
        after_flush = sorted(latency for at, latency, _ in reads if at >= 0)
        return {
            "reads": len(self.reads),
            "errors": sum(1 for _, _, ok in self.reads if not ok),
            "p50_before_ms": round(baseline, 1) if baseline is not None else None,
            "p99_after_ms": round(percentile(after_flush, 99), 1) if after_flush else None,
            "max_after_ms": round(after_flush[-1], 1) if after_flush else None,
            "recovered_after_s": recovered,
            "recovered_factor": RECOVERED_FACTOR,
            "per_second": rows,
        }


async def _sample(http: httpx.AsyncClient, token: str, samples: Samples) -> None:
    begun = time.monotonic()
    try:
        response = await http.post(
            "/graphql", json={"query": SAMPLE_QUERY}, headers={"Authorization": f"Bearer {token}"}
        )
        ok = response.status_code == 200 and not response.json().get("errors")
    except httpx.HTTPError:
        ok = False
    samples.reads.append((begun, (time.monotonic() - begun) * 1000, ok))


async def sample_reads(base_url: str, tokens: list[str], stop: asyncio.Event, samples: Samples) -> None:
    """Start a sampled read every ``SAMPLE_INTERVAL_SECONDS`` until ``stop``; readers walk
    the users from the end of the list (wrk's threads start at its beginning and middle)."""
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for number in itertools.count():
            if stop.is_set():
                break
            token = tokens[-1 - number % len(tokens)]
            tasks.append(asyncio.create_task(_sample(http, token, samples)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_INTERVAL_SECONDS)
        await asyncio.gather(*tasks)


async def flush_after(redis_url: str, delay: float, samples: Samples) -> None:
    await asyncio.sleep(delay)
    async with Redis.from_url(redis_url) as redis:
        samples.flushed_at = time.monotonic()
        await redis.flushall()
