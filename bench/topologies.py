"""Fan-out into full home timelines on one Redis and on a 3-master Redis Cluster, side by side.

    python3 run.py bench topologies          # or: python -m bench.topologies [--followers N]

One worker process (this one) drives the worker's own write path,
``workers.fanout.deliver_batch``, in batches of ``FANOUT_BATCH_SIZE`` followers read in
shard order (as ``store.follows.follower_batch`` reads them), into timelines that already
hold ``TIMELINE_MAX`` entries, so every delivery also trims one. Both topologies run in the
same process and the same run, alternating, on private servers started here from the
installed ``redis-server``: a standalone server, and a cluster of three masters (each its
own process, so the cluster has three cores' worth of Redis where the machine has them).
The queue role (presence checks for live events) is the standalone server in both.

Writes ``bench/results/topologies.json`` and ``topologies.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starling.config import Settings
from starling.store.ids import SnowflakeGenerator, to_member
from starling.store.keys import TIMELINE_SENTINEL, user_shard
from starling.store.redis import PrivateRedisServer
from starling.store.redis_cluster import PrivateRedisCluster
from starling.store.services import Services
from starling.workers import fanout

RESULTS = Path(__file__).resolve().parent / "results"
FOLLOWERS = 5_000
TWEETS = 20  # fanned out one after another: FOLLOWERS x TWEETS deliveries per round
ROUNDS = 5
FILL_BATCH = 200


@dataclass(frozen=True)
class Topology:
    name: str
    services: Services


async def open_services(data_url: str, queue_url: str, cluster: bool) -> Services:
    settings = Settings(
        redis_url=data_url,
        queue_redis_url=queue_url,
        redis_cluster=cluster,
        redis_key_prefix="bench:",
        token_secret="bench",
        worker_id=1,
    )
    return await Services.open(settings)


async def fill(services: Services, followers: Sequence[int], ids: SnowflakeGenerator) -> None:
    """Every follower's timeline built and full: the sentinel and TIMELINE_MAX older tweets."""
    cap = services.settings.timeline_max
    old = [to_member(ids.next_id()) for _ in range(cap)]
    mapping = {TIMELINE_SENTINEL: 0, **dict.fromkeys(old, 0)}
    for start in range(0, len(followers), FILL_BATCH):
        async with services.redis.pipeline(transaction=False) as pipe:
            for follower in followers[start : start + FILL_BATCH]:
                pipe.zadd(services.keys.home_timeline(follower), mapping)
            await pipe.execute()


async def deliver_all(services: Services, followers: Sequence[int], tweet_ids: Sequence[int]) -> float:
    """Seconds to fan ``tweet_ids`` out, one tweet after another, batch by batch."""
    size = services.settings.fanout_batch_size
    start = time.perf_counter()
    for tweet_id in tweet_ids:
        for offset in range(0, len(followers), size):
            await fanout.deliver_batch(services, followers[offset : offset + size], [tweet_id], announce=True)
    return time.perf_counter() - start


async def memory_of_a_timeline(services: Services, follower: int) -> dict[str, Any]:
    key = services.keys.home_timeline(follower)
    used = await services.redis.memory_usage(key, samples=0)
    encoding = await services.redis.object("ENCODING", key)
    return {
        "bytes": int(used or 0),
        "encoding": encoding.decode() if isinstance(encoding, bytes) else encoding,
    }


async def run(followers_count: int, rounds: int) -> dict[str, Any]:
    ids = SnowflakeGenerator(2)
    # In shard order, as the fan-out reads them (store.follows).
    followers = sorted((ids.next_id() for _ in range(followers_count)), key=lambda f: (user_shard(f), f))
    standalone, cluster = PrivateRedisServer(), PrivateRedisCluster()
    queue_url = standalone.start()
    cluster_url = cluster.start()
    topologies = [
        Topology("standalone", await open_services(queue_url, queue_url, cluster=False)),
        Topology("cluster (3 masters)", await open_services(cluster_url, queue_url, cluster=True)),
    ]
    try:
        for topology in topologies:
            await fill(topology.services, followers, ids)
        seconds: dict[str, list[float]] = {t.name: [] for t in topologies}
        load_before = os.getloadavg()
        for _ in range(rounds):
            for topology in topologies:  # alternating, so drifting machine load hits both
                tweet_ids = [ids.next_id() for _ in range(TWEETS)]
                seconds[topology.name].append(await deliver_all(topology.services, followers, tweet_ids))
        load_after = os.getloadavg()
        deliveries = followers_count * TWEETS
        rows = {
            name: {
                "deliveries_per_s_median": round(deliveries / statistics.median(values)),
                "deliveries_per_s_min": round(deliveries / max(values)),
                "deliveries_per_s_max": round(deliveries / min(values)),
                "seconds": [round(value, 3) for value in values],
            }
            for name, values in seconds.items()
        }
        memory = {t.name: await memory_of_a_timeline(t.services, followers[0]) for t in topologies}
        # Per round, cluster over standalone from the same round: drift hits both alike.
        paired = [
            single / clustered
            for single, clustered in zip(seconds["standalone"], seconds["cluster (3 masters)"], strict=True)
        ]
        return {
            "followers": followers_count,
            "tweets_per_round": TWEETS,
            "rounds": rounds,
            "batch_size": topologies[0].services.settings.fanout_batch_size,
            "timeline_entries": topologies[0].services.settings.timeline_max,
            "timeline_memory_bytes": memory,
            "results": rows,
            "cluster_over_standalone": round(statistics.median(paired), 2),
            "cluster_over_standalone_range": [round(min(paired), 2), round(max(paired), 2)],
            "load_average": {"before": load_before, "after": load_after},
            "cores": os.cpu_count(),
        }
    finally:
        for topology in topologies:
            await topology.services.close()
        cluster.stop()
        standalone.stop()


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Fan-out on one Redis and on a Redis Cluster",
        "",
        f"One worker process, `deliver_batch` in batches of {result['batch_size']} followers in shard "
        f"order, {result['followers']:,} followers whose timelines hold {result['timeline_entries']} "
        f"entries (every delivery trims one), {result['tweets_per_round']} tweets per round, "
        f"{result['rounds']} rounds alternating between the topologies. {result['cores']} cores; "
        f"load average {result['load_average']['before'][0]:.2f} before, "
        f"{result['load_average']['after'][0]:.2f} after (other work on the machine included).",
        "",
        "| topology | deliveries/s (median) | min | max |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in result["results"].items():
        lines.append(
            f"| {name} | {row['deliveries_per_s_median']:,} | {row['deliveries_per_s_min']:,} | "
            f"{row['deliveries_per_s_max']:,} |"
        )
    lines += [
        "",
        f"Cluster / standalone, the median of the rounds' paired ratios: "
        f"**{result['cluster_over_standalone']}** (range {result['cluster_over_standalone_range']}). "
        f"A full timeline's `MEMORY USAGE`: {result['timeline_memory_bytes']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=FOLLOWERS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="a small audience, two rounds")
    args = parser.parse_args(argv)
    followers, rounds = (1_000, 2) if args.quick else (args.followers, args.rounds)
    result = asyncio.run(run(followers, rounds))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "topologies.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "topologies.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
