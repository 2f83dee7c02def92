"""What rebuilding a lost home timeline costs a reader who follows 50, 500 or 2,000 authors.

    python -m bench.rebuild [--out DIR]

For each size, on a private redis-server and a fresh embedded engine: the reader follows
that many authors with ``TWEETS_EACH`` tweets each. Three rebuilds are timed, each run
``ROUNDS`` times (median):

- ``mongo $in (before)``: ``feed.timeline_from_mongo``, one ``$in`` over every followee;
- ``author lists built``: ``feed.timeline_from_author_lists`` with every author list in
  Redis (the usual case: lists are kept as authors post);
- ``author lists lost``: the same after the lists are deleted (a Redis flush): the capped
  ``$in`` over at most ``REBUILD_FOLLOWEES_MAX`` authors.

Reports milliseconds, MongoDB commands and Redis round trips, and how many followees the
rebuild read. Writes ``rebuild.json`` and ``rebuild.md`` to ``bench/results`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starling.config import Settings
from starling.resolvers import feed
from starling.store.documents import utcnow
from starling.store.ids import SnowflakeGenerator
from starling.store.keys import user_shard
from starling.store.mongo import connect_mongo
from starling.store.monitoring import count_round_trips
from starling.store.redis import PrivateRedisServer
from starling.store.services import Services

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (50, 500, 2000)
TWEETS_EACH = 10
ROUNDS = 5


async def seeded(redis_url: str, followees: int) -> tuple[Services, int, list[int]]:
    settings = Settings(
        mongodb_url=None,
        mongodb_db=f"bench_rebuild_{followees}",
        redis_url=redis_url,
        redis_key_prefix=f"rb{followees}:",
        token_secret=secrets.token_urlsafe(32),
        log_level="WARNING",
    )
    ids = SnowflakeGenerator(7)
    mongo = connect_mongo(settings)
    reader = ids.next_id()
    authors = [ids.next_id() for _ in range(followees)]
    now = utcnow()
    users = [{"_id": uid, "handle": f"u{uid}", "handle_lower": f"u{uid}", "followers_count": 1,
              "following_count": 0, "tweets_count": TWEETS_EACH, "created_at": now}
             for uid in [reader, *authors]]  # fmt: skip
    await mongo.collections.users.insert_many(users)
    await mongo.collections.follows.insert_many(
        [{"_id": ids.next_id(), "follower_id": reader, "followee_id": author,
          "follower_shard": user_shard(reader), "created_at": now} for author in authors]
    )  # fmt: skip
    tweets = [{"_id": ids.next_id(), "author_id": author, "text": "t", "created_at": now, "hashtags": [],
               "mention_ids": [], "like_count": 0, "comment_count": 0, "retweet_count": 0}
              for _ in range(TWEETS_EACH) for author in authors]  # fmt: skip
    await mongo.collections.tweets.insert_many(tweets)
    services = await Services.open(settings, mongo=mongo)  # builds the indexes
    return services, reader, authors


async def measure(work: Callable[[], Awaitable[list[int]]], rounds: int) -> dict[str, Any]:
    times: list[float] = []
    for _ in range(rounds):
        with count_round_trips() as counted:
            start = time.perf_counter()
            result = await work()
            times.append((time.perf_counter() - start) * 1000)
    return {"ms": round(statistics.median(times), 2), "mongo": counted.mongo, "redis": counted.redis,
            "entries": len(result)}  # fmt: skip


async def run_size(redis_url: str, followees: int, rounds: int) -> list[dict[str, Any]]:
    services, reader, authors = await seeded(redis_url, followees)
    try:
        from_lists = functools.partial(feed.timeline_from_author_lists, services, reader)
        from_mongo = functools.partial(feed.timeline_from_mongo, services, reader)
        rows = [{"case": "mongo $in (before)", "read": followees, **await measure(from_mongo, rounds)}]
        for author in [reader, *authors]:
            await feed.rebuild_author_tweets(services, author)
        cap = min(followees, services.settings.rebuild_followees_max)
        rows.append({"case": "author lists built", "read": cap, **await measure(from_lists, rounds)})
        for author in [reader, *authors]:
            await services.redis.delete(services.keys.author_tweets(author))
        rows.append({"case": "author lists lost", "read": cap, **await measure(from_lists, rounds)})
        return [{"followees": followees, **row} for row in rows]
    finally:
        await services.close()


async def run(rounds: int) -> dict[str, Any]:
    server = PrivateRedisServer()
    url = server.start()
    try:
        rows = [row for size in SIZES for row in await run_size(url, size, rounds)]
    finally:
        server.stop()
    return {"tweets_each": TWEETS_EACH, "rounds": rounds, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Timeline rebuilds",
        "",
        f"Written by `python -m bench.rebuild`: a reader following N authors of {result['tweets_each']} "
        f"tweets each, embedded MongoDB engine, private redis-server, median of {result['rounds']} "
        "rebuilds; a 2-core machine shared with other work.",
        "",
        "| followees | rebuild | followees read | ms | MongoDB commands | Redis round trips | entries |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['followees']:,} | {row['case']} | {row['read']:,} | {row['ms']} | {row['mongo']} | "
            f"{row['redis']} | {row['entries']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="one rebuild of each (a smoke test)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(rounds=1 if args.quick else ROUNDS))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rebuild.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "rebuild.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
