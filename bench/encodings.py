"""How a home timeline of ``TIMELINE_MAX`` entries is best kept in Redis: memory and
server CPU of each candidate encoding, on insert (the fan-out's add script) and on a
cursor page read.

    python -m bench.encodings [--timelines N] [--out DIR]

Candidates, each ``--timelines`` full timelines (800 IDs and the sentinel) on a private
redis-server:

- ``decimal-skiplist``: 19-digit zero-padded decimal members (the encoding before issue 12);
  a set that large is a skiplist whatever the listpack limit.
- ``binary-skiplist``: 8-byte big-endian members on a server left at the default
  ``zset-max-listpack-entries`` (128): what the start-up warning is about.
- ``binary-listpack-oldest-first``: 8-byte big-endian members with
  ``zset-max-listpack-entries`` 1024: oldest first, so a new tweet goes to the end of the
  listpack, which an insert reaches by comparing with every entry.
- ``binary-listpack``: the same with the IDs' complement as members, newest first, so a new
  tweet goes to the head (Starling's choice, ``store.keys``: encodings).
- ``packed-string``: the 800 IDs as one 6,400-byte string, newest first, written by a Lua
  prepend-and-truncate and paged by a Lua binary search for the cursor.

CPU is the server's own (``INFO cpu``, user + system) per timeline written or page read, so
the client's cost does not blur it. Writes ``encodings.json`` and ``encodings.md`` to
``bench/results`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from starling.store.ids import SnowflakeGenerator, to_member
from starling.store.keys import TIMELINE_SENTINEL, ZSET_LISTPACK_ENTRIES
from starling.store.redis import PrivateRedisServer
from starling.store.timelines import _ADD_IF_BUILT

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_TIMELINES = 20
ENTRIES = 800
PAGE = 21  # a page of 20 and the one that says there is a next page
BATCH = 100  # timelines per add script, as a fan-out batch
ROUNDS = 20
DEFAULT_LISTPACK_ENTRIES = 128

_PACKED_ADD = """
local cap = tonumber(ARGV[1])
for k = 1, #KEYS do
  local s = redis.call('GET', KEYS[k])
  if s then
    s = ARGV[2] .. s
    if #s > cap * 8 then s = string.sub(s, 1, cap * 8) end
    redis.call('SET', KEYS[k], s)
  end
end
return 1
"""

_PACKED_PAGE = """
local s = redis.call('GET', KEYS[1])
if not s then return false end
local lo, hi, c = 0, #s / 8, ARGV[1]
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if string.sub(s, mid * 8 + 1, mid * 8 + 8) < c then hi = mid else lo = mid + 1 end
end
return string.sub(s, lo * 8 + 1, (lo + tonumber(ARGV[2])) * 8)
"""


# The add script of the oldest-first encodings: the sentinel lowest (rank 0), the oldest
# entries trimmed from rank 1 on.
_OLDEST_FIRST_ADD = """
local cap = tonumber(ARGV[1])
for k = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[k]) == 1 or redis.call('EXISTS', KEYS[k + 1]) == 1 then
    for i = 2, #ARGV do redis.call('ZADD', KEYS[k], 0, ARGV[i]) end
    redis.call('ZREMRANGEBYRANK', KEYS[k], 1, -(cap + 1))
  end
end
return 1
"""


def decimal(tweet_id: int) -> bytes:
    return str(tweet_id).zfill(19).encode()


def ascending(tweet_id: int) -> bytes:
    return tweet_id.to_bytes(8, "big")


@dataclass(frozen=True)
class Order:
    """How a sorted-set candidate spells and orders its members."""

    member: Callable[[int], bytes]
    sentinel: bytes
    add_script: str
    newest_first: bool


OLDEST_FIRST_DECIMAL = Order(decimal, b"0" * 19, _OLDEST_FIRST_ADD, newest_first=False)
OLDEST_FIRST = Order(ascending, bytes(8), _OLDEST_FIRST_ADD, newest_first=False)
NEWEST_FIRST = Order(to_member, TIMELINE_SENTINEL, _ADD_IF_BUILT, newest_first=True)  # Starling's
CANDIDATES: dict[str, tuple[Order | None, int]] = {  # name -> (order, zset-max-listpack-entries)
    "decimal-skiplist": (OLDEST_FIRST_DECIMAL, DEFAULT_LISTPACK_ENTRIES),
    "binary-skiplist": (OLDEST_FIRST, DEFAULT_LISTPACK_ENTRIES),
    "binary-listpack-oldest-first": (OLDEST_FIRST, ZSET_LISTPACK_ENTRIES),
    "binary-listpack": (NEWEST_FIRST, ZSET_LISTPACK_ENTRIES),
    "packed-string": (None, DEFAULT_LISTPACK_ENTRIES),
}


async def server_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measured(redis: Redis, work: Callable[[], Awaitable[None]]) -> float:
    before = await server_cpu(redis)
    await work()
    return await server_cpu(redis) - before


async def candidate(
    redis: Redis, name: str, timelines: int, ids: list[int], new_ids: list[int]
) -> dict[str, Any]:
    order, listpack = CANDIDATES[name]
    await redis.config_set("zset-max-listpack-entries", listpack)
    keys = [f"enc:{name}:{n}" for n in range(timelines)]
    newest_first = sorted(ids, reverse=True)
    for key in keys:
        if order:
            await redis.zadd(key, {order.sentinel: 0, **{order.member(tid): 0 for tid in ids}})
        else:
            await redis.set(key, b"".join(to_member(tid) for tid in newest_first))
    memory = await redis.memory_usage(keys[0])
    encoding = (await redis.object("encoding", keys[0])).decode()

    async def insert() -> None:
        for tweet_id in new_ids:
            for start in range(0, timelines, BATCH):
                batch = keys[start : start + BATCH]
                if order:
                    script_keys = [name for key in batch for name in (key, key + ":lock")]
                    member = order.member(tweet_id)
                    await redis.eval(order.add_script, len(script_keys), *script_keys, ENTRIES, member)
                else:
                    await redis.eval(_PACKED_ADD, len(batch), *batch, ENTRIES, to_member(tweet_id))

    cursors = random.Random(1).sample(newest_first[: ENTRIES - PAGE], ROUNDS)

    async def read() -> None:
        for cursor in cursors:
            async with redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    if order and order.newest_first:
                        pipe.zrangebylex(key, b"(" + order.member(cursor), "+", start=0, num=PAGE)
                    elif order:
                        pipe.zrevrangebylex(key, b"(" + order.member(cursor), "-", start=0, num=PAGE)
                    else:
                        pipe.eval(_PACKED_PAGE, 1, key, to_member(cursor), PAGE)
                await pipe.execute()

    insert_cpu = await measured(redis, insert)
    read_cpu = await measured(redis, read)
    assert await redis.object("encoding", keys[0]) == encoding.encode(), "the insert changed the encoding"
    return {
        "candidate": name,
        "encoding": encoding,
        "memory_bytes": memory,
        "insert_us_per_timeline": round(insert_cpu / (len(new_ids) * timelines) * 1e6, 2),
        "page_read_us": round(read_cpu / (ROUNDS * timelines) * 1e6, 2),
    }


async def run(timelines: int) -> dict[str, Any]:
    server = PrivateRedisServer()
    url = server.start()
    redis = Redis.from_url(url)
    try:
        generator = SnowflakeGenerator(1)
        ids = [generator.next_id() for _ in range(ENTRIES)]
        new_ids = [generator.next_id() for _ in range(ROUNDS)]
        rows = [await candidate(redis, name, timelines, ids, new_ids) for name in CANDIDATES]
    finally:
        await redis.aclose()
        server.stop()
    return {"entries": ENTRIES, "timelines": timelines, "cpus": os.cpu_count(), "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Timeline encodings",
        "",
        f"Written by `python -m bench.encodings`: {result['timelines']} timelines of "
        f"{result['entries']} IDs per candidate on a private redis-server; CPU is the server's "
        f"(`INFO cpu`), per timeline written (add script, {BATCH} timelines a call) or per page of "
        f"{PAGE} read after a cursor. Measured on a 2-core machine shared with other work.",
        "",
        "| candidate | encoding | MEMORY USAGE | insert (µs/timeline) | page read (µs) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['candidate']} | {row['encoding']} | {row['memory_bytes']:,} B | "
            f"{row['insert_us_per_timeline']} | {row['page_read_us']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encodings", description=__doc__)
    parser.add_argument("--timelines", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="20 timelines per candidate (a smoke test)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(QUICK_TIMELINES if args.quick else args.timelines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encodings.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "encodings.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
