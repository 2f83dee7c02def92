"""Fan-out throughput: deliveries per second for one author with many followers.

    python -m bench.fanout [--followers 50000] [--batch-sizes 500,1000,2000,5000] [--rounds 3]
                           [--online 0.01] [--job-followers 10000] [--redis-url URL] [--out DIR]
                           [--quick]

Seeds ``--followers`` follow edges of one author into the embedded MongoDB engine (bulk
``insert_many``, indexes built afterwards) and as many built home timelines into Redis
(full: ``TIMELINE_MAX`` older tweets each, so every insert also trims one), then
measures, in one run (a few minutes on 2 cores):

- **Redis write path**: the per-batch write of ``workers.fanout.fanout_tweet``
  (``fanout.deliver_batch``: one call of the add-if-built Lua script for the batch, and one
  of the live-feed script, which checks the batch against the presence set and ``PUBLISH``es
  to the followers online, in one pipeline), over every follower, for each batch size, with
  ``--online`` of the followers online (default 1%), and again with all of them online (the
  worst case: a ``PUBLISH`` per follower); beside it the same inserts as a raw redis-py
  pipeline of plain ``ZADD``s with the same batches, and ``deliver_batch`` without
  announcing. Each round posts a new tweet ID (real inserts) and the variants alternate
  within it; the median of ``--rounds`` is reported, with the time Redis spends in one
  batch's scripts and a check that each run published to exactly the online followers
  (``INFO commandstats``). The chosen batch size is the ``Settings`` default unless another
  is over 5% faster.
- **Follower reads**: ``store.follows.follower_batch`` pages from the embedded engine at the chosen
  batch size, timed over the first pages only: the engine (mongomock) scans the collection on
  every query, so a full walk of 50,000 edges would take minutes; a real MongoDB reads them
  as one index range scan per page. These pages are also checked against the seeded order,
  which is what the write benchmark feeds ``deliver_batch``.
- **The whole job**: ``fanout_tweet`` end to end (MongoDB reads, Redis writes, outbox marker
  cleared) for ``--job-followers`` followers (default 10,000, the most a default
  ``CELEBRITY_FOLLOWERS`` lets an author have and still be fanned out), ``--online`` of them
  online, with the share of its time spent reading followers.

Redis: ``--redis-url`` (keys under a prefix of their own, deleted afterwards), else a
private redis-server started and stopped here. Writes ``fanout.json`` and ``fanout.md``
to ``--out`` (default ``bench/results``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starling.config import Settings
from starling.store.documents import utcnow
from starling.store.follows import START, follower_batch
from starling.store.ids import SnowflakeGenerator, to_member
from starling.store.keys import PRESENCE_SHARDS, user_shard
from starling.store.mongo import connect_mongo
from starling.store.redis import PrivateRedisServer
from starling.store.services import Services
from starling.workers import fanout

RESULTS = Path(__file__).resolve().parent / "results"
SEED_BATCH = 5000
READ_PAGES = 3
CLEARLY_FASTER = 1.05
# The longest a fan-out script may hold Redis (which serves no reader meanwhile) for its
# batch size to be chosen: a feed page's round trip must not wait behind much more.
REDIS_BUSY_MAX_MS = 10.0
DEFAULT_BATCH_SIZE: int = Settings.model_fields["fanout_batch_size"].default
APP_WORKER_ID, SEED_WORKER_ID = 1, 2  # two snowflake generators, no shared IDs


@dataclass(frozen=True)
class Plan:
    followers: int
    batch_sizes: list[int]
    rounds: int
    job_followers: int
    online: float  # share of the followers holding a homeFeed subscription

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            followers=10_000, batch_sizes=[DEFAULT_BATCH_SIZE], rounds=1, job_followers=2000, online=0.01
        )


def bench_settings(redis_url: str, prefix: str, followers: int, batch_size: int) -> Settings:
    """Production defaults, except: keys under the benchmark's own prefix, an author who is
    not a celebrity whatever their audience, and one job for the whole fan-out."""
    return Settings(
        mongodb_url=None,
        mongodb_db="bench_fanout",
        redis_url=redis_url,
        redis_key_prefix=prefix,
        queue_name=f"{prefix}queue",
        token_secret=secrets.token_urlsafe(32),
        celebrity_followers=followers + 1,
        fanout_batch_size=batch_size,
        fanout_batches_per_job=followers // batch_size + 1,
        worker_id=APP_WORKER_ID,
        log_level="WARNING",
    )


@dataclass
class Audience:
    author_id: int
    follower_ids: list[int]  # in follow-edge order, as the fan-out reads them


async def open_seeded(redis_url: str, settings: Settings, size: int) -> tuple[Services, Audience]:
    """Services over a fresh embedded engine holding one author with ``size`` followers, and
    their built timelines. MongoDB is filled before its indexes exist: the engine checks a
    unique index on every insert, which would make the load quadratic."""
    ids = SnowflakeGenerator(SEED_WORKER_ID)
    mongo = connect_mongo(settings)
    author_id = ids.next_id()
    follower_ids = [ids.next_id() for _ in range(size)]
    await mongo.collections.users.insert_one(
        {"_id": author_id, "handle": f"author{author_id}", "handle_lower": f"author{author_id}",
         "followers_count": size, "following_count": 0, "tweets_count": 0, "created_at": utcnow()}
    )  # fmt: skip
    for page in batches(follower_ids, SEED_BATCH):
        edges = [
            {
                "_id": ids.next_id(),
                "follower_id": follower,
                "followee_id": author_id,
                "follower_shard": user_shard(follower),
                "created_at": utcnow(),
            }
            for follower in page
        ]
        await mongo.collections.follows.insert_many(edges)
    services = await Services.open(settings, mongo=mongo)  # builds the indexes
    await fill_timelines(services, follower_ids, [ids.next_id() for _ in range(settings.timeline_max)])
    return services, Audience(author_id, follower_ids)


async def fill_timelines(services: Services, follower_ids: Sequence[int], older: list[int]) -> None:
    """Every follower's timeline built and full: ``older`` (``TIMELINE_MAX`` tweets older
    than any the benchmark posts), so each insert also trims one, as in a feed in use. The
    first follower of each user shard gets it from ``store_timeline`` (the rebuild's write),
    the others a server-side ``COPY`` of that one (same hash tag, so the same slot)."""
    templates: dict[int, str] = {}
    for follower in follower_ids:
        shard = user_shard(follower)
        if shard not in templates:
            templates[shard] = services.keys.home_timeline(follower)
            await services.timelines.store_timeline(templates[shard], older)
    for page in batches(follower_ids, SEED_BATCH):
        async with services.redis.pipeline(transaction=False) as pipe:
            for follower in page:
                key = services.keys.home_timeline(follower)
                if key != templates[user_shard(follower)]:
                    pipe.copy(templates[user_shard(follower)], key, replace=True)
            await pipe.execute()


def batches(ids: Sequence[int], size: int) -> list[Sequence[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


async def raw_zadd(services: Services, pages: list[Sequence[int]], tweet_id: int) -> None:
    """The floor: the same inserts as a plain redis-py pipeline of ZADD per batch."""
    member = to_member(tweet_id)
    for page in pages:
        async with services.redis.pipeline(transaction=False) as pipe:
            for follower in page:
                pipe.zadd(services.keys.home_timeline(follower), {member: 0})
            await pipe.execute()


async def starling_write(
    services: Services, pages: list[Sequence[int]], tweet_id: int, *, announce: bool
) -> None:
    """What ``fanout_tweet`` does per batch once the followers are read."""
    for page in pages:
        await fanout.deliver_batch(services, page, [tweet_id], announce=announce)


async def timed(work: Awaitable[Any]) -> float:
    start = time.perf_counter()
    await work
    return time.perf_counter() - start


async def mark_online(services: Services, follower_ids: Sequence[int], share: float) -> int:
    """Make an evenly spread ``share`` of the followers, and nobody else, hold a homeFeed
    subscription (an hour of presence, as ``store.pubsub.Presence`` would keep renewing);
    returns how many."""
    online = follower_ids[:: round(1 / share)] if share else []
    keys, redis = services.keys, services.queue_redis
    seconds, _ = await redis.time()
    await redis.delete(*(keys.feed_presence(shard) for shard in range(PRESENCE_SHARDS)))
    for page in batches(online, SEED_BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for follower in page:
                pipe.zadd(keys.feed_presence_of(follower), {str(follower): seconds + 3600})
            await pipe.execute()
    return len(online)


@dataclass(frozen=True)
class Variant:
    write: Callable[[Services, list[Sequence[int]], int], Awaitable[None]]
    online: float | None = None  # share of followers online during its runs; None: it never looks


def variants(plan: Plan) -> dict[str, Variant]:
    announced = Variant(lambda services, pages, tid: starling_write(services, pages, tid, announce=True))
    return {
        "starling": replace(announced, online=plan.online),
        "starling_all_online": replace(announced, online=1.0),
        "starling_no_publish": Variant(
            lambda services, pages, tid: starling_write(services, pages, tid, announce=False)
        ),
        "raw_zadd": Variant(raw_zadd),
    }


async def write_path(services: Services, audience: Audience, plan: Plan) -> list[dict[str, Any]]:
    """Deliveries per second of each variant, per batch size; the variants alternate within
    each round so that drift of the machine affects them alike."""
    rows = []
    count = len(audience.follower_ids)
    chosen = variants(plan)
    for size in plan.batch_sizes:
        pages = batches(audience.follower_ids, size)
        seconds: dict[str, list[float]] = {name: [] for name in chosen}
        script_usec = dict.fromkeys(chosen, 0)
        for _ in range(plan.rounds):
            for name, variant in chosen.items():
                online = None
                if variant.online is not None:
                    online = await mark_online(services, audience.follower_ids, variant.online)
                tweet_id = services.ids.next_id()  # a new member: real inserts every time
                before = await redis_stats(services)
                seconds[name].append(await timed(variant.write(services, pages, tweet_id)))
                after = await redis_stats(services)
                script_usec[name] += after.script_usec - before.script_usec
                if online is not None:
                    published = after.publishes - before.publishes
                    assert published == online, f"{name}: {published} PUBLISH for {online} online"
        row: dict[str, Any] = {"batch_size": size, "deliveries": count, "online_share": plan.online}
        for name, runs in seconds.items():
            median = statistics.median(runs)
            row[name] = {
                "seconds": round(median, 4),
                "deliveries_per_s": round(count / median),
                # How long Redis runs one batch's scripts, serving nobody else meanwhile.
                "script_ms_per_batch": round(script_usec[name] / plan.rounds / len(pages) / 1000, 2)
                if script_usec[name]
                else None,
            }
        raw = row["raw_zadd"]["deliveries_per_s"]
        for name in chosen:
            if name != "raw_zadd":
                row[f"{name}_vs_raw"] = round(row[name]["deliveries_per_s"] / raw, 3)
        rows.append(row)
        print(
            f"  batch {size:>5}: starling {row['starling']['deliveries_per_s']:>9,}/s"
            f"  (all online {row['starling_all_online']['deliveries_per_s']:>9,}/s,"
            f" no publish {row['starling_no_publish']['deliveries_per_s']:>9,}/s)"
            f"  raw ZADD {raw:>9,}/s  ratio {row['starling_vs_raw']}",
            flush=True,
        )
    return rows


@dataclass(frozen=True)
class RedisStats:
    script_usec: int  # microseconds Redis spent in EVAL so far
    publishes: int  # PUBLISH commands so far, those scripts run included


async def redis_stats(services: Services) -> RedisStats:
    stats = await services.redis.info("commandstats")
    return RedisStats(
        script_usec=int(stats.get("cmdstat_eval", {}).get("usec", 0)),
        publishes=int(stats.get("cmdstat_publish", {}).get("calls", 0)),
    )


def near_best(rows: list[dict[str, Any]]) -> list[int]:
    best = max(row["starling"]["deliveries_per_s"] for row in rows)
    return [row["batch_size"] for row in rows if row["starling"]["deliveries_per_s"] * CLEARLY_FASTER >= best]


def choose(rows: list[dict[str, Any]], default: int) -> int:
    """The Settings default unless another batch size is clearly (over 5%) faster and holds
    Redis at most ``REDIS_BUSY_MAX_MS`` per script: within that margin the figures are noise
    on a shared machine, and a bigger batch is not free (while a script runs Redis serves
    no reader; a smaller one costs more MongoDB queries)."""
    allowed = [row for row in rows if row["starling"]["script_ms_per_batch"] <= REDIS_BUSY_MAX_MS]
    speed = {row["batch_size"]: row["starling"]["deliveries_per_s"] for row in allowed}
    if not speed:
        return default
    best = max(speed, key=lambda size: speed[size])
    if default in speed and speed[best] <= CLEARLY_FASTER * speed[default]:
        return default
    return best


async def follower_reads(services: Services, audience: Audience, size: int) -> dict[str, Any]:
    """The first pages of the follower walk, timed, and checked against the seeded order
    (which is what ``write_path`` feeds ``deliver_batch``)."""
    read: list[int] = []
    after, seconds = START, []
    for _ in range(READ_PAGES):
        start = time.perf_counter()
        followers, after = await follower_batch(services, audience.author_id, after, size)
        seconds.append(time.perf_counter() - start)
        read.extend(followers)
    # Seeded in follow order; read in shard order (store.follows), which the edge IDs break ties in.
    in_shard_order = sorted(audience.follower_ids, key=lambda follower: (user_shard(follower), follower))
    assert read == in_shard_order[: len(read)], "follower pages differ from the shard order"
    per_page = statistics.mean(seconds)
    pages = -(-len(audience.follower_ids) // size)
    return {
        "engine": "embedded (mongomock: every query scans the collection)",
        "batch_size": size,
        "pages_timed": READ_PAGES,
        "seconds_per_page": round(per_page, 3),
        "followers_per_s": round(size / per_page),
        "full_walk_seconds_estimate": round(per_page * pages, 1),
    }


async def whole_job(
    redis_url: str, prefix: str, followers: int, batch_size: int, online_share: float
) -> dict[str, Any]:
    """``fanout_tweet`` end to end (reads, writes, outbox marker cleared) on its own engine."""
    settings = bench_settings(redis_url, prefix, followers, batch_size)
    services, audience = await open_seeded(redis_url, settings, followers)
    try:
        online = await mark_online(services, audience.follower_ids, online_share)
        tweet_id = services.ids.next_id()
        await services.db.tweets.insert_one(
            {"_id": tweet_id, "author_id": audience.author_id, "text": "bench", "created_at": utcnow(),
             "fanout_pending": True}
        )  # fmt: skip
        outcome = ""

        async def job() -> None:
            nonlocal outcome
            outcome = await fanout.fanout_tweet({"services": services}, tweet_id)

        job_seconds = await timed(job())
        assert outcome == "delivered", outcome
        assert await services.db.tweets.count_documents({"fanout_pending": True}) == 0
        last = services.keys.home_timeline(audience.follower_ids[-1])
        assert await services.redis.zscore(last, to_member(tweet_id)) is not None
        read_seconds = await timed(walk(services, audience.author_id, batch_size))
        return {
            "followers": followers,
            "online": online,
            "batch_size": batch_size,
            "job_seconds": round(job_seconds, 3),
            "deliveries_per_s": round(followers / job_seconds),
            "follower_read_seconds": round(read_seconds, 3),
            "read_share": round(read_seconds / job_seconds, 3),
        }
    finally:
        await close(services)


async def walk(services: Services, author_id: int, size: int) -> None:
    """The follower reads of a whole fan-out, alone."""
    after = START
    while True:
        followers, after = await follower_batch(services, author_id, after, size)
        if len(followers) < size:
            return


async def close(services: Services) -> None:
    """Delete every key under the run's prefix, then disconnect."""
    pattern = f"{services.settings.redis_key_prefix}*"
    keys = [key async for key in services.redis.scan_iter(match=pattern, count=10_000)]
    for chunk in batches(keys, 10_000):
        await services.redis.unlink(*chunk)
    await services.close()


async def run(plan: Plan, redis_url: str) -> dict[str, Any]:
    run_tag = uuid.uuid4().hex[:8]
    load_at_start = round(os.getloadavg()[0], 2)  # the machine may be shared: say how busy it was
    prefix = f"bench-fanout:{run_tag}:"
    settings = bench_settings(redis_url, prefix, plan.followers, plan.batch_sizes[0])
    print(
        f"seeding {plan.followers:,} follow edges (embedded MongoDB) and built timelines (Redis)", flush=True
    )
    started = time.perf_counter()
    services, audience = await open_seeded(redis_url, settings, plan.followers)
    seed_seconds = time.perf_counter() - started
    try:
        print(f"Redis write path, {plan.rounds} round(s) per batch size:", flush=True)
        rows = await write_path(services, audience, plan)
        chosen = choose(rows, DEFAULT_BATCH_SIZE)
        print(f"follower reads from the embedded engine, first {READ_PAGES} pages of {chosen}", flush=True)
        reads = await follower_reads(services, audience, chosen)
        redis_version = (await services.redis.info("server"))["redis_version"]
    finally:
        await close(services)
    print(f"the whole fanout_tweet job for {plan.job_followers:,} followers", flush=True)
    job = await whole_job(redis_url, f"bench-fanout:{run_tag}:job:", plan.job_followers, chosen, plan.online)
    return {
        "machine": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "redis": redis_version,
            "load_average_1min_at_start": load_at_start,
        },
        "followers": plan.followers,
        "timeline_entries": Settings.model_fields["timeline_max"].default,
        "online_share": plan.online,
        "rounds": plan.rounds,
        "seed_seconds": round(seed_seconds, 1),
        "write_path": rows,
        "chosen_batch_size": chosen,
        "follower_reads": reads,
        "whole_job": job,
    }


def markdown(result: dict[str, Any]) -> str:
    rows = result["write_path"]
    chosen = result["chosen_batch_size"]
    reads, job = result["follower_reads"], result["whole_job"]
    headline = next(row for row in rows if row["batch_size"] == chosen)
    online = f"{result['online_share']:.0%}"
    lines = [
        "# Fan-out throughput",
        "",
        f"One author, {result['followers']:,} followers, every timeline built and full "
        f"({result.get('timeline_entries', 'TIMELINE_MAX')} older entries, so each insert also trims one); "
        f"{result['machine']['cores']} cores shared by the client and Redis {result['machine']['redis']}, "
        f"Python {result['machine']['python']}, {result['machine']['date']}, load average "
        f"{result['machine']['load_average_1min_at_start']} at the start. "
        f"Median of {result['rounds']} round(s). Produced by `python -m bench.fanout`.",
        "",
        f"**Chosen batch size: {chosen}** (`FANOUT_BATCH_SIZE`; the default, {DEFAULT_BATCH_SIZE}, "
        f"is kept unless another size is over {CLEARLY_FASTER - 1:.0%} faster and holds Redis at most "
        f"{REDIS_BUSY_MAX_MS:.0f} ms per script): "
        f"{headline['starling']['deliveries_per_s']:,} deliveries/s through the fan-out's Redis "
        f"write path with {online} of the followers online, {headline['starling_vs_raw']:.2f}x a raw "
        "redis-py `ZADD` pipeline doing the same inserts in the same run "
        f"({headline['starling_no_publish_vs_raw']:.2f}x when not announcing at all, "
        f"{headline['starling_all_online_vs_raw']:.2f}x with every follower online, a `PUBLISH` "
        "each). Batch sizes within 5% of the best: "
        f"{', '.join(str(size) for size in near_best(rows))}; among equals the smallest holds Redis "
        "the shortest time per script.",
        "",
        "## Redis write path (deliveries per second)",
        "",
        f"| batch size | Starling `deliver_batch`, {online} online | all online | not announcing "
        "| raw `ZADD` pipeline | Starling / raw | all online / raw | not announcing / raw "
        f"| Redis busy per batch: {online} online / all online / not announcing |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        mark = " (chosen)" if row["batch_size"] == chosen else ""
        announced = ("starling", "starling_all_online", "starling_no_publish")
        lines.append(
            f"| {row['batch_size']}{mark} | "
            + " | ".join(f"{row[name]['deliveries_per_s']:,}" for name in (*announced, "raw_zadd"))
            + " | "
            + " | ".join(f"{row[f'{name}_vs_raw']:.2f}" for name in announced)
            + " | "
            + " / ".join(f"{row[name]['script_ms_per_batch']}" for name in announced)
            + " ms |"
        )
    lines += [
        "",
        "Starling writes a batch in one pipeline: an `EVAL` of the add-if-built script (per "
        "follower: `EXISTS` of the timeline and of its rebuild lock, `ZADD`, `ZREMRANGEBYRANK` to "
        "`TIMELINE_MAX`) and, when announcing, one of the live-feed script, which reads the "
        "batch's presence entries (`ZMSCORE` against the presence set, expiry against the Redis "
        "clock) and `PUBLISH`es to the followers online only (every run checks, with `INFO "
        "commandstats`, that it published exactly once per online follower). The raw pipeline is "
        "a bare `ZADD` per follower, which would also create timelines nobody reads and never "
        "trim them. A script per batch spares the client a command per follower, which is what "
        "limits a Python client (the raw column), at the price of Redis serving nobody else while "
        "the scripts run (last column). With every follower online they take longer by a "
        "`PUBLISH` per follower (the last column's middle figure), which is why only online "
        "followers get one.",
        "",
        "## Follower reads (embedded engine, reported apart)",
        "",
        f"`follower_batch` pages of {reads['batch_size']} from the embedded MongoDB engine: "
        f"{reads['seconds_per_page']} s per page ({reads['followers_per_s']:,} followers/s, first "
        f"{reads['pages_timed']} pages timed; a full walk of {result['followers']:,} would take about "
        f"{reads['full_walk_seconds_estimate']} s). The engine is mongomock, a stand-in that scans the "
        "collection on every query; MongoDB serves each page as one range scan of the "
        "`(followee_id, _id)` index.",
        "",
        "## The whole job",
        "",
        f"`fanout_tweet` end to end for {job['followers']:,} followers, {job['online']:,} of them "
        f"online (batch {job['batch_size']}): "
        f"{job['job_seconds']} s, {job['deliveries_per_s']:,} deliveries/s; reading the followers "
        f"alone takes {job['follower_read_seconds']} s ({job['read_share']:.0%} of the job) on the "
        "embedded engine.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--followers", type=int, default=50_000)
    parser.add_argument("--batch-sizes", default="500,1000,2000,5000", help="comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--online", type=float, default=0.01, help="share of followers holding a homeFeed subscription"
    )
    parser.add_argument("--job-followers", type=int, default=10_000)
    parser.add_argument("--redis-url", help="use this Redis (keys under a prefix of their own)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="a small run (a smoke test)")
    args = parser.parse_args(argv)
    plan = (
        Plan.quick()
        if args.quick
        else Plan(
            followers=args.followers,
            batch_sizes=[int(size) for size in args.batch_sizes.split(",")],
            rounds=args.rounds,
            job_followers=args.job_followers,
            online=args.online,
        )
    )
    private = None if args.redis_url else PrivateRedisServer()
    redis_url = args.redis_url or private.start()  # type: ignore[union-attr]
    try:
        result = asyncio.run(run(plan, redis_url))
    finally:
        if private is not None:
            private.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fanout.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "fanout.md").write_text(markdown(result))
    print(f"wrote {args.out / 'fanout.json'} and fanout.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
