"""Post-to-visible latency: how long after a post starts its author's followers see it.

While wrk loads the server, probes run from the harness: every ``interval`` one author
(whose followers get the tweet by fan-out, not a celebrity) posts through GraphQL, and one
of their followers polls their ``homeFeed`` until the new tweet is on it. The latency is
from sending the post to the first poll that shows it; a probe that has not seen it after
``give_up`` seconds counts as a miss (and as ``give_up`` in the percentiles).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.stats import percentile

POST = "mutation Post($text: String!) { postTweet(text: $text) { id } }"
NEWEST = "query Newest { homeFeed(first: 20) { edges { node { id } } } }"
POLL_SECONDS = 0.02


@dataclass
class Visibility:
    latencies: list[float] = field(default_factory=list)
    misses: int = 0
    errors: int = 0

    def summary(self) -> dict[str, Any]:
        seen = sorted(self.latencies)
        return {
            "probes": len(seen) + self.misses,
            "misses": self.misses,
            "errors": self.errors,
            "p50_ms": round(percentile(seen, 50) * 1000, 1) if seen else None,
            "p99_ms": round(percentile(seen, 99) * 1000, 1) if seen else None,
            "max_ms": round(seen[-1] * 1000, 1) if seen else None,
        }


async def _gql(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def _probe(
    http: httpx.AsyncClient, author: str, reader: str, number: int, give_up: float, result: Visibility
) -> None:
    started = time.monotonic()
    try:
        posted = await _gql(http, author, POST, {"text": f"visibility probe {number} #bench"})
        tweet_id = posted["postTweet"]["id"]
        while time.monotonic() - started < give_up:
            page = await _gql(http, reader, NEWEST)
            if any(edge["node"]["id"] == tweet_id for edge in page["homeFeed"]["edges"]):
                result.latencies.append(time.monotonic() - started)
                return
            await asyncio.sleep(POLL_SECONDS)
        result.misses += 1
        result.latencies.append(give_up)
    except (httpx.HTTPError, RuntimeError, KeyError):
        result.errors += 1


async def measure_visibility(
    base_url: str,
    tokens: list[str],
    pairs: list[tuple[int, int]],
    stop: asyncio.Event,
    interval: float = 0.1,
    give_up: float = 5.0,
) -> Visibility:
    """Start a probe every ``interval`` until ``stop`` is set; wait for those under way."""
    result = Visibility()
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=give_up + 5) as http:
        for number, (author, reader) in zip(itertools.count(), itertools.cycle(pairs)):
            if stop.is_set():
                break
            tasks.append(
                asyncio.create_task(_probe(http, tokens[author], tokens[reader], number, give_up, result))
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        await asyncio.gather(*tasks)
    return result
