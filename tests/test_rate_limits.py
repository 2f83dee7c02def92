"""Rate limits through the public API: log-in guesses, sign-ups, writes and the query
budget, their RATE_LIMITED errors and RateLimit-* headers, the switch that turns them off,
and client addresses behind a proxy."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api import PASSWORD, Api
from tests.harness import started
from tests.test_redis_down import RedisOutage

LOG_IN = "mutation($h: String!, $p: String!) { logIn(handle: $h, password: $p) { token } }"
POST = 'mutation { postTweet(text: "again and again") { id } }'


async def post_graphql(
    api: Api, query: str, variables: dict[str, Any] | None = None, token: str | None = None, **headers: str
) -> httpx.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await api.http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code != 500, response.text
    return response


def error(response: httpx.Response) -> dict[str, Any]:
    errors = response.json().get("errors")
    assert errors, response.text
    return errors[0]


async def test_guessing_a_password_is_limited_and_the_right_one_waits_too(redis_url: str) -> None:
    async with started(
        redis_url, rate_limit_login_per_handle=5, rate_limit_login_window_seconds=10
    ) as h:  # one guess back every 2 s
        await h.api.sign_up("victim")
        answers = [
            error(await post_graphql(h.api, LOG_IN, {"h": "victim", "p": f"guess number {n}"}))
            for n in range(20)
        ]
        assert [a["extensions"]["code"] for a in answers] == ["UNAUTHENTICATED"] * 5 + ["RATE_LIMITED"] * 15
        limited = answers[-1]
        assert limited["extensions"]["retryAfter"] >= 1
        assert "handle" in limited["message"]

        # The right password is refused as well until the budget gives a guess back...
        right = await post_graphql(h.api, LOG_IN, {"h": "victim", "p": PASSWORD})
        assert right.status_code == 429
        assert error(right)["extensions"]["code"] == "RATE_LIMITED"
        wait = error(right)["extensions"]["retryAfter"]
        assert int(right.headers["Retry-After"]) == wait
        # ... and goes through once it has.
        await asyncio.sleep(wait)
        assert (await h.api.gql(LOG_IN, {"h": "victim", "p": PASSWORD}))["logIn"]["token"]
        # Another handle from the same address was never limited.
        await h.api.sign_up("bystander")
        assert (await h.api.gql(LOG_IN, {"h": "bystander", "p": PASSWORD}))["logIn"]["token"]


async def test_aliased_log_ins_count_one_by_one(redis_url: str) -> None:
    async with started(redis_url, rate_limit_login_per_handle=3, rate_limit_login_window_seconds=600) as h:
        await h.api.sign_up("popular")
        aliases = " ".join(
            f'a{n}: logIn(handle: "popular", password: "{PASSWORD}") {{ token }}' for n in range(5)
        )
        body = await h.api.raw(f"mutation {{ {aliases} }}")
        # Mutation fields run one after another: three log in, the fourth is refused (and,
        # its field being non-null, the refusal takes the whole answer with it).
        assert body["data"] is None
        assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["a3"], "RATE_LIMITED")]
        assert await h.api.error_codes(LOG_IN, {"h": "popular", "p": PASSWORD}) == ["RATE_LIMITED"]


async def test_log_ins_from_one_address_are_limited_across_handles(redis_url: str) -> None:
    async with started(redis_url, rate_limit_login_per_address=3) as h:
        codes = [
            (await h.api.error_codes(LOG_IN, {"h": f"nobody{n}", "p": "not a password"}))[0] for n in range(4)
        ]
        assert codes == ["UNAUTHENTICATED"] * 3 + ["RATE_LIMITED"]


async def test_a_posting_loop_is_limited_and_every_answer_says_how_much_is_left(redis_url: str) -> None:
    async with started(redis_url, rate_limit_writes_per_viewer=5, rate_limit_writes_window_seconds=60) as h:
        me = await h.api.sign_up("poster")
        responses = [await post_graphql(h.api, POST, token=me.token) for _ in range(8)]
        accepted = [r for r in responses if not r.json().get("errors")]
        assert len(accepted) == 5
        assert [r.headers["RateLimit-Remaining"] for r in accepted] == ["4", "3", "2", "1", "0"]
        for response in accepted:
            assert response.status_code == 200
            assert response.headers["RateLimit-Limit"] == "5"
            assert response.headers["RateLimit-Policy"] == "5;w=60"
            assert "Retry-After" not in response.headers
        refused = responses[5]
        assert refused.status_code == 429
        assert error(refused)["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 12}
        assert refused.headers["Retry-After"] == "12"  # one write back every 60 / 5 s
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert 0 < int(refused.headers["RateLimit-Reset"]) <= 60
        # Reading is another budget.
        assert (await h.api.gql("{ viewer { tweetsCount } }", token=me.token))["viewer"]["tweetsCount"] == 5


async def test_sign_ups_from_one_address_are_limited(redis_url: str) -> None:
    async with started(redis_url, rate_limit_sign_up_per_address=2) as h:
        await h.api.sign_up("first")
        await h.api.sign_up("second")
        query = 'mutation { signUp(handle: "third", password: "long enough") { token } }'
        assert await h.api.error_codes(query) == ["RATE_LIMITED"]


async def test_every_operation_spends_the_query_budget(redis_url: str) -> None:
    # `{ viewer { handle } }` costs 1 (one object: schema.cost); anonymous, it answers null.
    async with started(redis_url, rate_limit_query_cost=3, rate_limit_query_cost_window_seconds=60) as h:
        first = await post_graphql(h.api, "{ viewer { handle } }")
        assert first.json()["extensions"]["cost"]["requested"] == 1
        assert first.headers["RateLimit-Limit"] == "3" and first.headers["RateLimit-Remaining"] == "2"
        for _ in range(2):
            await h.api.gql("{ viewer { handle } }")
        refused = await post_graphql(h.api, "{ viewer { handle } }")
        assert refused.status_code == 429
        assert error(refused)["extensions"]["code"] == "RATE_LIMITED"
        assert "query budget" in error(refused)["message"]
        assert refused.json()["data"] is None
    # A viewer spends a budget of their own, not the address's.
    async with started(redis_url, rate_limit_query_cost=3, rate_limit_sign_up_per_address=100) as h:
        me = await h.api.sign_up("reader")  # signing up spent one of the address's
        for _ in range(3):
            await h.api.gql("{ viewer { handle } }", token=me.token)
        assert await h.api.error_codes("{ viewer { handle } }", token=me.token) == ["RATE_LIMITED"]
        assert (await h.api.gql("{ viewer { handle } }"))["viewer"] is None


async def test_rate_limits_off_lets_everything_through_without_headers(redis_url: str) -> None:
    async with started(
        redis_url, rate_limits_enabled=False, rate_limit_writes_per_viewer=1, rate_limit_query_cost=1
    ) as h:
        me = await h.api.sign_up("loadtest")
        responses = [await post_graphql(h.api, POST, token=me.token) for _ in range(5)]
        assert all(not r.json().get("errors") for r in responses)
        assert all("RateLimit-Limit" not in r.headers for r in responses)


@pytest.mark.parametrize("hops", [0, 1])
async def test_client_addresses_behind_a_proxy(redis_url: str, hops: int) -> None:
    """With TRUSTED_PROXY_HOPS=1 the address is what the proxy appended; with 0 the header is
    the client's word and ignored: every request is the TCP peer's."""
    async with started(redis_url, rate_limit_sign_up_per_address=1, trusted_proxy_hops=hops) as h:
        query = 'mutation($h: String!) { signUp(handle: $h, password: "long enough") { token } }'
        answers = []
        for n, forwarded in enumerate(["203.0.113.7", "198.51.100.1, 203.0.113.8", "203.0.113.7"]):
            response = await post_graphql(h.api, query, {"h": f"user{n}"}, **{"X-Forwarded-For": forwarded})
            answers.append(bool(response.json().get("errors")))
        # hops=1: two different addresses sign up once each, the first one's second try is
        # refused; hops=0: all three are 127.0.0.1.
        assert answers == ([False, False, True] if hops else [False, True, True])


async def test_rate_limits_fail_open_while_redis_is_down(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(
        redis_url, run_worker_in_process=False, rate_limit_writes_per_viewer=1, rate_limit_login_per_handle=1
    ) as h:
        me = await h.api.sign_up("resilient")
        with RedisOutage(h.services, monkeypatch):
            for _ in range(3):
                assert (await h.api.gql(LOG_IN, {"h": "resilient", "p": PASSWORD}))["logIn"]["token"]
                await h.api.gql(POST, token=me.token)
        # Redis is back, and so are the limits.
        await h.api.gql(POST, token=me.token)
        assert await h.api.error_codes(POST, token=me.token) == ["RATE_LIMITED"]
