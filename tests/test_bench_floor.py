"""The benchmark's floor and ablation endpoints answer exactly what the GraphQL feed answers."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from bench import ablations, floor
from tests.api import Api, eventually
from tests.realtime import like, retweet


def without_budget(body: dict[str, Any]) -> dict[str, Any]:
    """The answer less what is left of the viewer's query budget, which every call spends."""
    cost = {k: v for k, v in body.get("extensions", {}).get("cost", {}).items() if k != "remaining"}
    return {**body, "extensions": {**body.get("extensions", {}), "cost": cost}}


async def test_floor_and_ablations_return_the_feed_json(
    app: Starlette, client: httpx.AsyncClient, api: Api
) -> None:
    app.add_route(floor.PATH, floor.floor_feed, methods=["GET"])
    for variant, view in ablations.variants().items():
        app.add_route(ablations.PATH.format(variant=variant), view, methods=["POST"])
    reader, writer, other = (
        await api.sign_up("reader"),
        await api.sign_up("writer"),
        await api.sign_up("other"),
    )
    await api.follow(reader, writer)
    await api.follow(reader, other)
    posted = [await api.post(writer, f"tweet {n} #bench") for n in range(4)]
    await api.post(other, "hello @reader")
    await like(api, reader, posted[1]["id"])
    await retweet(api, other, posted[2]["id"])

    async def delivered() -> bool:  # 6 entries; the retweet shows once, as its original
        return len(await api.whole_feed(reader)) == 5

    await eventually(delivered)
    headers = {"Authorization": f"Bearer {reader.token}"}
    body = {"query": floor.FEED_QUERY, "variables": {"first": 6}}
    expected = (await client.post("/graphql", json=body, headers=headers)).json()
    assert len(expected["data"]["homeFeed"]["edges"]) == 5
    assert any(edge["node"]["viewerHasLiked"] for edge in expected["data"]["homeFeed"]["edges"])

    expected = without_budget(expected)
    assert without_budget((await client.get(f"{floor.PATH}?first=6", headers=headers)).json()) == expected
    for variant in ablations.variants():
        path = ablations.PATH.format(variant=variant)
        answer = (await client.post(path, json=body, headers=headers)).json()
        assert without_budget(answer) == expected, variant


async def test_the_floor_refuses_an_anonymous_reader(app: Starlette, client: httpx.AsyncClient) -> None:
    app.add_route(floor.PATH, floor.floor_feed, methods=["GET"])
    body = (await client.get(floor.PATH)).json()
    assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAUTHENTICATED"]
