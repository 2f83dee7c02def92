"""The load scenarios against one server process: feed vs floor, write, mixed.

Every scenario writes ``<out>/<name>.json``. Feed and floor runs alternate at each
concurrency, so that whatever else the machine does at a moment affects both alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import flush
from bench.floor import FEED_QUERY
from bench.load import ServerProcess, WrkRun, run_wrk, wait_for_quiet
from bench.visible import measure_visibility

PAGE = 20
POST = "mutation Post($text: String!) { postTweet(text: $text) { id } }"
LIKE = "mutation Like($id: ID!) { likeTweet(tweetId: $id) { id likeCount viewerHasLiked } }"
FOLLOW = "mutation Follow($id: ID!) { follow(userId: $id) { id followersCount } }"
BACKLOG_WAIT_SECONDS = 120.0
# Throughputs within this share of the highest count as the best (see ``best``).
SATURATION_SHARE = 0.95
# The paced write run offers this share of the rate measured at capacity.
WRITE_PACE_SHARE = 0.5
# The ablation ladder, each step one more speed-up (bench/ablations.py).
LADDER = ("plain", "caches", "orjson", "prefetch", "feed", "feed-apq")


@dataclass(frozen=True)
class Plan:
    concurrencies: tuple[int, ...] = (2, 4, 8, 16)
    seconds: float = 10.0
    warmup_seconds: float = 4.0
    write_connections: int = 4
    mixed_seconds: float = 15.0
    # Long enough after the flush for wrk to have read as most of the users (each rebuilds).
    flush_seconds: float = 30.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            concurrencies=(4, 8), seconds=4.0, warmup_seconds=2.0, mixed_seconds=6.0, flush_seconds=9.0
        )


def query_hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """An Apollo automatic-persisted-query request: the hash instead of the text."""
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": query_hash(query)}}
    return {"extensions": extensions, "variables": variables}


def supports_persisted_queries(server: ServerProcess) -> bool:
    """Register the feed query (hash + text, as an APQ client does after a miss) and say
    whether the server then answers the hash alone."""
    token = (server.run_dir / "tokens.txt").read_text().split()[0]
    headers = {"Authorization": f"Bearer {token}"}
    variables = {"first": PAGE}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        http.post("/graphql", json={**persisted(FEED_QUERY, variables), "query": FEED_QUERY})
        body = http.post("/graphql", json=persisted(FEED_QUERY, variables)).json()
    return "errors" not in body and "homeFeed" in (body.get("data") or {})


def write_bodies(server: ServerProcess, apq: bool) -> None:
    """Request bodies for wrk's Lua script; ``%s`` marks the variable part."""
    feed = {"query": FEED_QUERY, "variables": {"first": PAGE}}
    bodies = {
        "feed": feed,
        "feed-apq": persisted(FEED_QUERY, {"first": PAGE}) if apq else feed,
        "post": {"query": POST, "variables": {"text": "%s"}},
        "like": {"query": LIKE, "variables": {"id": "%s"}},
        "follow": {"query": FOLLOW, "variables": {"id": "%s"}},
    }
    for name, body in bodies.items():
        (server.run_dir / f"body-{name}.json").write_text(json.dumps(body))


def save(out: Path, name: str, payload: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")


def _say(run: WrkRun) -> None:
    s = run.summary()
    latency, usage = s["latency_ms"], s["usage"]
    print(
        f"  {s['mode']:<9} c={s['connections']:<3} {s['rps']:>8.1f} req/s"
        f"  p50 {latency['p50']:>6.1f} ms  p99 {latency['p99']:>6.1f} ms  errors {s['errors']}"
        f"  cores: server {usage['server_cores']} redis {usage['redis_cores']} wrk {usage['wrk_cores']}"
        f" other {usage['other_cores']}",
        flush=True,
    )


async def feed_vs_floor(
    server: ServerProcess, plan: Plan, out: Path, machine: dict[str, Any]
) -> dict[str, Any]:
    """The feed (as clients send it: by persisted-query hash when the server speaks APQ)
    against the floor at each concurrency, then the ablation ladder (``bench.ablations``)
    at the concurrency that gave the feed its best throughput."""
    apq = supports_persisted_queries(server)
    write_bodies(server, apq)
    feed_mode = "feed-apq" if apq else "feed"
    modes = ["floor", feed_mode]
    ladder_modes = ["floor", *(mode for mode in LADDER if apq or mode != "feed-apq")]
    print(f"feed vs floor: {', '.join(modes)} at {plan.concurrencies} connections, {plan.seconds} s each")
    for mode in ladder_modes:  # warm: caches, connections, allocator
        await run_wrk(server, mode, 4, plan.warmup_seconds)
    runs: list[dict[str, Any]] = []
    for connections in plan.concurrencies:
        for mode in modes:
            runs.append(await _measured(server, mode, connections, plan.seconds))
    top = headline(runs, feed_mode)
    print(f"ablation ladder at {top['connections']} connections: {', '.join(ladder_modes)}")
    ladder = [await _measured(server, mode, top["connections"], plan.seconds) for mode in ladder_modes]
    result = {
        "machine": machine,
        "network": server.network,
        "persisted_queries": apq,
        "runs": runs,
        "headline": top,
        "ladder": ladder,
    }
    save(out, "feed", result)
    return result


async def _measured(server: ServerProcess, mode: str, connections: int, seconds: float) -> dict[str, Any]:
    run = await run_wrk(server, mode, connections, seconds)
    _say(run)
    return run.summary()


def best(runs: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """The run of ``mode`` that reached its best throughput at the fewest connections: the
    lowest concurrency within ``SATURATION_SHARE`` of the highest throughput measured. Once
    one process is saturated, more connections only queue (latency grows, throughput stays
    flat), and differences smaller than that share are this machine's noise."""
    of_mode = sorted((run for run in runs if run["mode"] == mode), key=lambda run: run["connections"])
    highest = max(run["rps"] for run in of_mode)
    return next(run for run in of_mode if run["rps"] >= SATURATION_SHARE * highest)


def headline(runs: list[dict[str, Any]], feed_mode: str) -> dict[str, Any]:
    """The feed at the concurrency that gives it its best throughput (``best``) against the
    floor at its own best: the ratio of their capacities, the feed's latency where it reaches
    its capacity. The floor at the feed's concurrency is reported too."""
    feed = best(runs, feed_mode)
    floor_same = next(r for r in runs if r["mode"] == "floor" and r["connections"] == feed["connections"])
    floor_best = best(runs, "floor")
    highest = max((run for run in runs if run["mode"] == feed_mode), key=lambda run: run["rps"])
    return {
        "feed_mode": feed_mode,
        "connections": feed["connections"],
        "feed_rps": feed["rps"],
        "feed_p50_ms": feed["latency_ms"]["p50"],
        "feed_p99_ms": feed["latency_ms"]["p99"],
        "feed_highest_rps": highest["rps"],
        "feed_highest_connections": highest["connections"],
        "saturation_share": SATURATION_SHARE,
        "floor_rps": floor_same["rps"],
        "floor_p50_ms": floor_same["latency_ms"]["p50"],
        "floor_p99_ms": floor_same["latency_ms"]["p99"],
        "floor_best_rps": floor_best["rps"],
        "floor_best_connections": floor_best["connections"],
        "floor_best_p99_ms": floor_best["latency_ms"]["p99"],
        "ratio": round(feed["rps"] / floor_best["rps"], 3),
        "ratio_same_connections": round(feed["rps"] / floor_same["rps"], 3),
    }


async def wait_for_backlog(server: ServerProcess) -> tuple[int, float]:
    """Wait until the worker has no due job left; (jobs due at the start, seconds waited)."""
    started = time.monotonic()
    first: int | None = None
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        while time.monotonic() - started < BACKLOG_WAIT_SECONDS:
            due = (await http.get("/bench/backlog")).json()["due_jobs"]
            first = due if first is None else first
            if due == 0:
                break
            await asyncio.sleep(0.2)
    return first or 0, round(time.monotonic() - started, 2)


async def with_visibility(
    server: ServerProcess, mode: str, connections: int, seconds: float, pause_ms: int = 0
) -> dict[str, Any]:
    """A wrk run while post-to-visible probes run beside it."""
    tokens = (server.run_dir / "tokens.txt").read_text().split()
    pairs = [tuple(pair) for pair in server.network["visibility_pairs"]]
    background = await wait_for_quiet(server)
    stop = asyncio.Event()
    probes = asyncio.create_task(measure_visibility(server.url, tokens, pairs, stop))  # type: ignore[arg-type]
    try:
        run = await run_wrk(server, mode, connections, seconds, background=background, pause_ms=pause_ms)
    finally:
        stop.set()
    visibility = await probes
    backlog, drained = await wait_for_backlog(server)
    _say(run)
    summary = {
        **run.summary(),
        "visibility": visibility.summary(),
        "backlog_after": backlog,
        "drain_s": drained,
    }
    print(f"    post-to-visible: {summary['visibility']}; fan-out backlog after: {backlog} jobs")
    return summary


async def write(server: ServerProcess, plan: Plan, out: Path, machine: dict[str, Any]) -> dict[str, Any]:
    """postTweet twice: as fast as the server answers (its capacity; fan-out, in the same
    process, then falls behind) and at ``WRITE_PACE_SHARE`` of that rate, a steady load that
    fan-out can follow, with post-to-visible probes."""
    connections = plan.write_connections
    print(f"write: postTweet at {connections} connections for {plan.seconds} s, as fast as answered")
    await wait_for_backlog(server)
    capacity = await _measured(server, "write", connections, plan.seconds)
    capacity["backlog_after"], capacity["drain_s"] = await wait_for_backlog(server)
    print(f"    fan-out backlog after: {capacity['backlog_after']} jobs, drained in {capacity['drain_s']} s")
    target = capacity["rps"] * WRITE_PACE_SHARE
    pause = max(1, round(connections * 1000 / target - capacity["latency_ms"]["p50"]))
    print(f"write: postTweet paced at ~{target:.0f}/s ({pause} ms pauses) with post-to-visible probes")
    paced = await with_visibility(server, "write", connections, plan.seconds, pause_ms=pause)
    result = {
        "machine": machine,
        "network": server.network,
        "capacity": capacity,
        "target_rps": round(target, 1),
        "pause_ms": pause,
        "run": paced,
    }
    save(out, "write", result)
    return result


async def mixed(
    server: ServerProcess, plan: Plan, out: Path, machine: dict[str, Any], connections: int
) -> dict[str, Any]:
    print(f"mixed: 95% feed, 5% writes at {connections} connections for {plan.mixed_seconds} s")
    await wait_for_backlog(server)
    run = await with_visibility(server, "mixed", connections, plan.mixed_seconds)
    print(
        f"mixed with a Redis flush {plan.flush_seconds * flush.FLUSH_AT_SHARE:.0f} s in, "
        f"{plan.flush_seconds} s"
    )
    await wait_for_backlog(server)
    flushed = await with_redis_flush(server, connections, plan.flush_seconds)
    result = {"machine": machine, "network": server.network, "run": run, "flush": flushed}
    save(out, "mixed", result)
    return result


async def with_redis_flush(server: ServerProcess, connections: int, seconds: float) -> dict[str, Any]:
    """The mixed load while ``bench.flush`` samples reads and empties the server's Redis."""
    tokens = (server.run_dir / "tokens.txt").read_text().split()
    samples, stop = flush.Samples(), asyncio.Event()
    background = await wait_for_quiet(server)
    delay = seconds * flush.FLUSH_AT_SHARE
    sampler = asyncio.create_task(flush.sample_reads(server.url, tokens, stop, samples))
    flusher = asyncio.create_task(flush.flush_after(server.network["redis_url"], delay, samples))
    try:
        run = await run_wrk(server, "mixed", connections, seconds, background=background)
    finally:
        stop.set()
    await flusher
    await sampler
    backlog, drained = await wait_for_backlog(server)
    _say(run)
    summary = {
        **run.summary(),
        "flush_at_s": round(delay, 1),
        "sampler": samples.summary(),
        "backlog_after": backlog,
        "drain_s": drained,
    }
    sampled = summary["sampler"]
    print(
        f"    sampled reads: p50 before {sampled['p50_before_ms']} ms, "
        f"p99 after {sampled['p99_after_ms']} ms, "
        f"errors {sampled['errors']}, recovered after {sampled['recovered_after_s']} s"
    )
    return summary


async def profile(server: ServerProcess, plan: Plan, out: Path, modes: tuple[str, ...]) -> None:
    """A pyinstrument profile of the server during one wrk run per mode (profile-<mode>.txt/.html)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        for mode in modes:
            await run_wrk(server, mode, 8, plan.warmup_seconds)
            await http.post("/bench/profile/start")
            run = await run_wrk(server, mode, 8, plan.seconds)
            target = out / f"profile-{mode}.txt"
            await http.post("/bench/profile/stop", params={"to": str(target)})
            _say(run)
            print(f"    profile: {target}")
