"""A small GraphQL client for tests: every call goes over HTTP through the public API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery"

FEED_QUERY = """
query Feed($first: Int, $after: String) {
  homeFeed(first: $first, after: $after) {
    edges { cursor node { id text author { handle } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


class GraphQLError(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors
        self.codes = [error.get("extensions", {}).get("code") for error in errors]


@dataclass
class Account:
    id: str
    handle: str
    token: str


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def raw(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code != 500, response.text
        assert "Traceback" not in response.text
        return response.json()

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        body = await self.raw(query, variables, token)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]

    async def error_codes(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> list[str]:
        body = await self.raw(query, variables, token)
        assert body.get("errors"), f"expected an error, got {body}"
        return [error["extensions"]["code"] for error in body["errors"]]

    # -- the operations most tests need ------------------------------------------------

    async def sign_up(self, handle: str) -> Account:
        data = await self.gql(
            "mutation($h: String!, $p: String!) { signUp(handle: $h, password: $p) "
            "{ token user { id handle } } }",
            {"h": handle, "p": PASSWORD},
        )
        payload = data["signUp"]
        return Account(id=payload["user"]["id"], handle=payload["user"]["handle"], token=payload["token"])

    async def follow(self, who: Account, whom: Account) -> dict[str, Any]:
        return await self._follow_edge("follow", who, whom)

    async def unfollow(self, who: Account, whom: Account) -> dict[str, Any]:
        return await self._follow_edge("unfollow", who, whom)

    async def _follow_edge(self, mutation: str, who: Account, whom: Account) -> dict[str, Any]:
        data = await self.gql(
            f"mutation($id: ID!) {{ {mutation}(userId: $id) {{ id followersCount viewerIsFollowing }} }}",
            {"id": whom.id},
            who.token,
        )
        return data[mutation]

    async def post(self, author: Account, text: str) -> dict[str, Any]:
        data = await self.gql(
            "mutation($t: String!) { postTweet(text: $t) { id text createdAt url hashtags "
            "author { handle } mentions { handle } } }",
            {"t": text},
            author.token,
        )
        return data["postTweet"]

    async def feed_page(self, reader: Account, first: int = 20, after: str | None = None) -> dict[str, Any]:
        data = await self.gql(FEED_QUERY, {"first": first, "after": after}, reader.token)
        return data["homeFeed"]

    async def whole_feed(self, reader: Account, page_size: int = 20) -> list[str]:
        """Every tweet ID in the reader's feed, paging until the end."""
        ids: list[str] = []
        after = None
        while True:
            page = await self.feed_page(reader, page_size, after)
            ids.extend(edge["node"]["id"] for edge in page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                return ids
            after = page["pageInfo"]["endCursor"]


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 5.0, interval: float = 0.05
) -> None:
    """Wait until ``check()`` holds (background work such as fan-out is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)
