"""Automatic persisted queries (Apollo's APQ protocol): a hash instead of the query text."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from tests.api import Api
from tests.harness import started

QUERY = "query Me { viewer { handle } }"
OTHER = "query Them($h: String!) { user(handle: $h) { handle } }"


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(query: str, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha(query)}}


async def send(http: httpx.AsyncClient, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.post("/graphql", json=body, headers=headers)


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


async def test_an_unknown_hash_asks_for_the_query_then_the_hash_alone_runs_it(
    client: httpx.AsyncClient, api: Api
) -> None:
    me = await api.sign_up("apq")
    first = await send(client, {"extensions": persisted(QUERY)}, me.token)
    assert first.status_code == 200
    assert first.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert codes(first) == ["PERSISTED_QUERY_NOT_FOUND"]

    registered = await send(client, {"query": QUERY, "extensions": persisted(QUERY)}, me.token)
    assert registered.json()["data"] == {"viewer": {"handle": "apq"}}
    by_hash = await send(client, {"extensions": persisted(QUERY)}, me.token)
    assert by_hash.json()["data"] == {"viewer": {"handle": "apq"}}

    # Variables travel as usual, and GET requests (cacheable by a CDN) work too.
    await send(client, {"query": OTHER, "variables": {"h": "apq"}, "extensions": persisted(OTHER)})
    params = {"variables": json.dumps({"h": "APQ"}), "extensions": json.dumps(persisted(OTHER))}
    got = await client.get("/graphql", params=params, headers={"Accept": "application/json"})
    assert got.json()["data"] == {"user": {"handle": "apq"}}


async def test_a_hash_that_does_not_match_the_query_is_refused(client: httpx.AsyncClient) -> None:
    response = await send(client, {"query": QUERY, "extensions": persisted(OTHER)})
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    # Nothing was stored under the wrong hash.
    assert codes(await send(client, {"extensions": persisted(OTHER)})) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_only_version_1_is_spoken(client: httpx.AsyncClient) -> None:
    response = await send(client, {"query": QUERY, "extensions": persisted(QUERY, version=2)})
    assert codes(response) == ["PERSISTED_QUERY_NOT_SUPPORTED"]


async def test_the_store_is_bounded_and_can_be_turned_off(redis_url: str) -> None:
    for size, expected in ((1, "PERSISTED_QUERY_NOT_FOUND"), (0, "PERSISTED_QUERY_NOT_SUPPORTED")):
        async with started(redis_url, persisted_queries_max=size) as harness:
            http = harness.api.http
            for query in (QUERY, OTHER):  # OTHER pushes QUERY out of a store of one
                await send(http, {"query": query, "variables": {"h": "x"}, "extensions": persisted(query)})
            assert codes(await send(http, {"extensions": persisted(QUERY)})) == [expected]
