"""Datastore round trips per ``homeFeed`` page, for first = 10, 20, 50, 100.

In-process: the real app (and the floor route) with the benchmark server's settings
(``server.bench_settings``) on the embedded MongoDB engine and a private redis-server, a
small network from ``bench.data``, and requests through httpx's ASGI transport, each
counted with ``store.monitoring.count_round_trips`` (a MongoDB command or a Redis round
trip, a pipeline being one). A page is read once to warm the caches, then counted. The
floor is counted too: it must make the same round trips as the feed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from bench import data, floor, server
from starling.cli import build_app
from starling.resolvers import accounts, follows
from starling.store.monitoring import count_round_trips
from starling.store.redis import PrivateRedisServer
from starling.store.services import Services

PAGE_SIZES = (10, 20, 50, 100)
SPEC = data.Spec(users=40, follows_per_user=12, tweets=2000, retweets=40, likes=400, comments=100, seed=3)


@asynccontextmanager
async def _served() -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    redis = PrivateRedisServer()
    app = build_app(server.bench_settings(redis.start(), SPEC))
    app.add_route(floor.PATH, floor.floor_feed, methods=["GET"])
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench.probe") as http:
                yield http, app
    finally:
        redis.stop()


async def _count(http: httpx.AsyncClient, token: str, first: int, use_floor: bool) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}

    async def page() -> dict[str, Any]:
        if use_floor:
            response = await http.get(f"{floor.PATH}?first={first}", headers=headers)
        else:
            body = {"query": floor.FEED_QUERY, "variables": {"first": first}}
            response = await http.post("/graphql", json=body, headers=headers)
        return response.json()

    await page()  # warm: timeline rebuild, tweet cache, counters
    with count_round_trips() as trips:
        body = await page()
    edges = body["data"]["homeFeed"]["edges"]
    return {
        "edges": len(edges),
        "mongo": trips.mongo,
        "redis": trips.redis,
        "mongo_commands": trips.mongo_commands,
    }


async def _pages(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    rows = []
    for first in PAGE_SIZES:
        feed = await _count(http, token, first, use_floor=False)
        bottom = await _count(http, token, first, use_floor=True)
        rows.append({"first": first, "feed": feed, "floor": bottom})
    return rows


async def _reader_of_no_celebrity(services: Services, network: data.Network) -> str:
    """A new user following the most prolific authors who are no celebrity, enough of them
    to fill the largest page (the small network's users all follow one); their token."""
    session = await accounts.sign_up(data._context(services), "probe_reader", data.PASSWORD, "Probe")
    reader = data._context(services, session.token)
    threshold = network.celebrity_followers
    authors = [n for n, fans in enumerate(network.followers) if len(fans) <= threshold]
    posted = {
        n: await services.db.tweets.count_documents({"author_id": network.user_ids[n]}) for n in authors
    }
    total = 0
    for author in sorted(authors, key=posted.__getitem__, reverse=True):
        await follows.follow(reader, str(network.user_ids[author]))
        total += posted[author]
        if total > max(PAGE_SIZES) * 2:
            break
    return session.token


async def round_trips() -> dict[str, Any]:
    """Two readers whose feeds fill every page size: one who follows no celebrity, and the
    network's reader with the longest timeline, who does (their pages merge the
    celebrities' author lists, which the warming read lets the first round trip read)."""
    async with _served() as (http, app):
        services = app.state.services
        network = await data.load(services, SPEC, log=lambda line: None)
        lengths = [await services.redis.zcard(services.keys.home_timeline(uid)) for uid in network.user_ids]
        celebrity_fan = network.tokens[lengths.index(max(lengths))]
        rows = await _pages(http, await _reader_of_no_celebrity(services, network))
        celebrity_rows = await _pages(http, celebrity_fan)
    everything = rows + celebrity_rows
    constant = all(
        len({(row[kind]["mongo"], row[kind]["redis"]) for row in pages}) == 1
        for pages in (rows, celebrity_rows)
        for kind in ("feed", "floor")
    )
    same = all(
        (row["feed"]["mongo"], row["feed"]["redis"]) == (row["floor"]["mongo"], row["floor"]["redis"])
        for row in everything
    )
    return {
        "pages": rows,
        "celebrity_pages": celebrity_rows,
        "constant": constant,
        "feed_equals_floor": same,
        "network": network.summary(),
    }


def main(out: Path) -> dict[str, Any]:
    result = asyncio.run(round_trips())
    out.mkdir(parents=True, exist_ok=True)
    (out / "round_trips.json").write_text(json.dumps(result, indent=2) + "\n")
    for reader, pages in (("no celebrity", result["pages"]), ("celebrities", result["celebrity_pages"])):
        for row in pages:
            feed, bottom = row["feed"], row["floor"]
            print(
                f"  {reader:<12} first={row['first']:<3} edges={feed['edges']:<3}"
                f" feed: mongo {feed['mongo']} redis {feed['redis']}"
                f"   floor: mongo {bottom['mongo']} redis {bottom['redis']}"
            )
    print(f"  constant: {result['constant']}; feed and floor alike: {result['feed_equals_floor']}")
    return result
