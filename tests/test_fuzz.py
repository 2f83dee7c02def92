"""Property-based fuzzing of the HTTP API from its own schema (hypothesis-graphql).

Valid operations (``Mode.POSITIVE``: well-typed, with random arguments) and invalid ones
(``Mode.NEGATIVE``: wrong types, missing arguments), queries and mutations, anonymous and
signed in, go over real HTTP to a real uvicorn server with data in it. Every answer must
be a GraphQL answer: no HTTP 5xx, every error coded from the contract (DESIGN.md §5 and
the two APQ codes), and nothing of the server's insides (a traceback, a file path, an
exception's name) in any error. INTERNAL_SERVER_ERROR is not allowed either: a fuzzed
request is a client's doing, and none of these can make a datastore fail.

Each generated operation is sent twice, anonymously and signed in (generating is what takes
the time, about 30 ms an operation). The normal suite sends ``FUZZ_EXAMPLES`` (1,200)
operations, split across the tests below and reproducible (``derandomize``); a longer run:
``FUZZ_EXAMPLES=10000 python3 run.py test tests/test_fuzz.py`` (figures in the README).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries

from starling.app import create_app
from starling.schema import export_sdl, schema
from tests.api import PASSWORD
from tests.conftest import make_settings
from tests.live import STARTUP_SECONDS, free_port

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1200"))
CONTRACT_CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "RATE_LIMITED",
    "PERSISTED_QUERY_NOT_FOUND",
    "PERSISTED_QUERY_NOT_SUPPORTED",
}  # and INTERNAL_SERVER_ERROR, which no fuzzed request may cause (module doc)
LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File \"/|\.py\", line \d|"
    r"\b(?:Type|Key|Attribute|Value|Index|Runtime|Lookup|Assertion|Recursion|Overflow|Unicode\w*|"
    r"NotImplemented|ZeroDivision|DuplicateKey|GraphQL)Error\b|\bOperationFailure\b|\bInvalidDocument\b"
)
SDL = export_sdl()
# logOut would revoke the signed-in fuzzer's token for every later example: it is fuzzed
# anonymously only.
SIGNED_IN_MUTATIONS = [name for name in schema._schema.mutation_type.fields if name != "logOut"]  # type: ignore[union-attr]


@dataclass
class Target:
    url: str
    token: str
    answers: Counter[str] = field(default_factory=Counter)  # error codes, and "executed"
    sent: int = 0


class ThreadedServer:
    """The app on uvicorn in a thread of its own: Hypothesis drives a synchronous test."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the fuzz target did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def gql(
    http: httpx.Client, query: str, variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = http.post("/graphql", json={"query": query, "variables": variables}, headers=headers).json()
    assert not body.get("errors"), body
    return body["data"]


def seed(http: httpx.Client) -> str:
    """Two users who follow each other, tweets, a comment, a like: something to find."""
    sign_up = "mutation($h: String!, $p: String!) { signUp(handle: $h, password: $p) { token user { id } } }"
    fuzzer = gql(http, sign_up, {"h": "fuzzer", "p": PASSWORD})["signUp"]
    other = gql(http, sign_up, {"h": "other", "p": PASSWORD})["signUp"]
    follow = "mutation($id: ID!) { follow(userId: $id) { id } }"
    gql(http, follow, {"id": other["user"]["id"]}, fuzzer["token"])
    gql(http, follow, {"id": fuzzer["user"]["id"]}, other["token"])
    post = "mutation($t: String!) { postTweet(text: $t) { id } }"
    tweet = gql(http, post, {"t": "hello @fuzzer #fuzz"}, other["token"])["postTweet"]["id"]
    gql(http, post, {"t": "mine #fuzz"}, fuzzer["token"])
    gql(http, "mutation($id: ID!) { likeTweet(tweetId: $id) { id } }", {"id": tweet}, fuzzer["token"])
    comment = "mutation($id: ID!, $t: String!) { addComment(tweetId: $id, text: $t) { id } }"
    gql(http, comment, {"id": tweet, "t": "a comment"}, fuzzer["token"])
    return fuzzer["token"]


@pytest.fixture(scope="module")
def target(standalone_redis_url: str) -> Iterator[Target]:
    app = create_app(make_settings(standalone_redis_url))
    with ThreadedServer(app) as url, httpx.Client(base_url=url) as http:
        yield Target(url=url, token=seed(http))


def check_answer(target: Target, query: str, response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.text} for {query}"
    assert response.headers["content-type"].startswith("application/json"), f"{response.text} for {query}"
    body = response.json()
    errors = body.get("errors") or []
    for error in errors:
        code = error.get("extensions", {}).get("code")
        assert code in CONTRACT_CODES, f"{error} for {query}"
        assert not LEAKS.search(str(error)), f"{error} for {query}"
        target.answers[code] += 1
    # It ran: it has data, or an error from a field (refusals before execution have neither).
    if body.get("data") is not None or any("path" in error for error in errors):
        target.answers["executed"] += 1


def fuzz(target: Target, operations: st.SearchStrategy[str], examples: int) -> None:
    """Send ``examples`` operations drawn from ``operations``, each anonymously and signed
    in, every answer checked."""
    signed_in = {"Authorization": f"Bearer {target.token}"}
    with httpx.Client(base_url=target.url, timeout=30) as http:

        @settings(
            max_examples=examples,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.filter_too_much,
            ],
        )
        @given(operations)
        def send(query: str) -> None:
            for headers in ({}, signed_in):
                target.sent += 1
                check_answer(target, query, http.post("/graphql", json={"query": query}, headers=headers))

        send()


def examples(part: float) -> int:
    """Generated operations for a ``part`` of ``EXAMPLES`` (each is sent twice)."""
    return max(1, round(EXAMPLES * part / 2))


CASES: dict[str, tuple[Callable[[], st.SearchStrategy[str]], float]] = {
    # name: (strategy, share of EXAMPLES)
    "valid queries": (lambda: queries(SDL), 0.35),
    "valid mutations": (lambda: mutations(SDL, fields=SIGNED_IN_MUTATIONS), 0.25),
    "invalid queries": (lambda: queries(SDL, mode=Mode.NEGATIVE), 0.2),
    "invalid mutations": (lambda: mutations(SDL, fields=SIGNED_IN_MUTATIONS, mode=Mode.NEGATIVE), 0.2),
}


@pytest.mark.parametrize(("strategy", "part"), CASES.values(), ids=CASES.keys())
def test_fuzzed_operations_get_graphql_answers(
    target: Target, strategy: Callable[[], st.SearchStrategy[str]], part: float
) -> None:
    before = target.sent
    fuzz(target, strategy(), examples(part))
    assert target.sent - before >= 2 * examples(part)


def test_the_fuzzer_sent_enough_and_reached_the_resolvers(target: Target) -> None:
    """Run last (file order): the suite's figure, and a check that the operations were not
    all refused before execution."""
    print(f"fuzzed operations: {target.sent}; answers: {dict(target.answers)}")
    assert target.sent >= EXAMPLES
    assert target.answers["executed"] > 0.2 * target.sent
