"""Refused operations: how fast the attacks of issue 10 are answered, and that they cost no
datastore round trip (``starling.schema.limits``).

Before the limits, six nested connections of 100 took 42 s of CPU, six nested fragments
24 s, and 1,000 aliased ``homeFeed`` fields 5.7 s. Here each attack is sent ``--repeats``
times by a signed-in client to the real app in this process (embedded MongoDB, a private
redis-server; httpx's ASGI transport, so the figure is the server's work without a
socket), after one warm-up request; a cheap accepted query is measured alike for scale.

    python -m bench.refusals [--repeats 50] [--quick] [--out DIR]

Writes ``refusals.json`` and ``refusals.md`` to ``bench/results`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from bench.stats import percentile
from starling.app import create_app
from starling.config import Settings
from starling.store.monitoring import count_round_trips
from starling.store.redis import PrivateRedisServer

RESULTS = Path(__file__).resolve().parent / "results"
REPEATS = 50


def connections(levels: int, first: int = 100) -> str:
    """``followers(first) { nodes { following(first) { nodes { ... handle } } } }``, ``levels`` deep."""
    names = ["followers", "following"]
    opened = "".join(f"{names[n % 2]}(first: {first}) {{ nodes {{ " for n in range(levels))
    return opened + "handle" + " } }" * levels


def nested_fragments(levels: int) -> str:
    """Each fragment spreads the next under two connections of 100."""
    fragments = [
        f"fragment F{n} on User {{ followers(first: 100) {{ nodes {{ ...F{n + 1} }} }} "
        f"following(first: 100) {{ nodes {{ ...F{n + 1} }} }} }}"
        for n in range(levels)
    ]
    head = 'query { user(handle: "x") { ...F0 } } '
    return head + " ".join(fragments) + f" fragment F{levels} on User {{ handle }}"


def wide_fragments(levels: int) -> str:
    """Each fragment spreads the next ten times over (10^levels spreads in all), shallow
    enough for the depth limit."""
    fragments = [
        f"fragment W{n} on Tweet {{ " + " ".join(f"...W{n + 1}" for _ in range(10)) + " author { handle } }"
        for n in range(levels)
    ]
    head = "query { homeFeed(first: 100) { nodes { ...W0 } } } "
    return head + " ".join(fragments) + f" fragment W{levels} on Tweet {{ author {{ handle }} }}"


def aliased_feeds(count: int) -> str:
    return "{ " + " ".join(f"f{n}: homeFeed {{ nodes {{ id }} }}" for n in range(count)) + " }"


ATTACKS: dict[str, str] = {
    "connections nested 6 levels": '{ user(handle: "x") { ' + connections(6) + " } }",
    "connections nested 7 levels": '{ user(handle: "x") { ' + connections(7) + " } }",
    "connections nested 3 levels": '{ user(handle: "x") { ' + connections(3) + " } }",
    "six nested fragments": nested_fragments(6),
    "six wide fragments": wide_fragments(6),
    "1,000 aliased homeFeed fields": aliased_feeds(1000),
    "1,000 homeFeed fields": "{ " + "homeFeed { nodes { id } } " * 1000 + "}",
}
ACCEPTED = "{ viewer { id handle } }"


async def measure(repeats: int) -> dict[str, Any]:
    redis = PrivateRedisServer()
    settings = Settings(
        redis_url=redis.start(),
        mongodb_url=None,
        token_secret=os.urandom(16).hex(),
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        log_level="WARNING",
    )
    app = create_app(settings)
    rows = []
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench.refusals") as http:
                sign_up = 'mutation { signUp(handle: "attacker", password: "attacker-pw") { token } }'
                token = (await http.post("/graphql", json={"query": sign_up})).json()["data"]["signUp"][
                    "token"
                ]
                headers = {"Authorization": f"Bearer {token}"}
                for name, query in {**ATTACKS, "accepted: viewer { id handle }": ACCEPTED}.items():
                    await http.post("/graphql", json={"query": query}, headers=headers)  # warm
                    timings, trips_seen, message = [], 0, ""
                    for _ in range(repeats):
                        with count_round_trips() as trips:
                            started = time.perf_counter()
                            body = (
                                await http.post("/graphql", json={"query": query}, headers=headers)
                            ).json()
                            timings.append((time.perf_counter() - started) * 1000)
                        trips_seen = max(trips_seen, trips.total)
                        message = body["errors"][0]["message"] if body.get("errors") else "accepted"
                    timings.sort()
                    rows.append(
                        {
                            "attack": name,
                            "bytes": len(query),
                            "p50_ms": round(percentile(timings, 50), 2),
                            "p99_ms": round(percentile(timings, 99), 2),
                            "max_round_trips": trips_seen,
                            "answer": message,
                        }
                    )
    finally:
        redis.stop()
    return {"repeats": repeats, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Refused operations",
        "",
        f"Written by `python -m bench.refusals` ({result['repeats']} requests each, signed in, the app in "
        "process through httpx's ASGI transport; 2 shared cores). Before the limits these ran for "
        "5.7 to 70+ s (issue 10).",
        "",
        "| operation | bytes | p50 | p99 | datastore round trips | answer |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        answer = row["answer"] if len(row["answer"]) < 90 else row["answer"][:87] + "..."
        lines.append(
            f"| {row['attack']} | {row['bytes']:,} | {row['p50_ms']} ms | {row['p99_ms']} ms "
            f"| {row['max_round_trips']} | {answer} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.refusals", description=__doc__)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--quick", action="store_true", help="a few requests each (a smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(3 if args.quick else args.repeats))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "refusals.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "refusals.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
