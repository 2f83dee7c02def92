"""Malformed HTTP requests answer 400 (or 413) with a GraphQL error coded BAD_USER_INPUT,
never HTTP 500 or a reset (issue 10), and bodies are bounded while they are read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api import Api
from tests.conftest import make_settings
from tests.harness import started
from tests.realtime import serve_live

VALID = "{ viewer { id } }"
DEEP = 100_000


def body(**fields: object) -> bytes:
    return json.dumps({"query": VALID, **fields}).encode()


MALFORMED_BODIES: dict[str, bytes] = {
    "empty": b"",
    "malformed": b"{not json",
    "truncated": b'{"query": "{ viewer { id } }"',
    "string": b'"{ viewer { id } }"',
    "number": b"5",
    "null": b"null",
    "true": b"true",
    "array (no batching)": json.dumps([{"query": VALID}]).encode(),
    "empty array": b"[]",
    "query number": b'{"query": 5}',
    "query object": b'{"query": {"text": "{ viewer { id } }"}}',
    "query list": b'{"query": ["{ viewer { id } }"]}',
    "no query": b'{"variables": {}}',
    "operationName number": body(operationName=5),
    "operationName object": body(operationName={"a": 1}),
    "operationName unknown": body(operationName="Nope"),
    "variables list": body(variables=[1]),
    "variables string": body(variables="{}"),
    "variables number": body(variables=1),
    "extensions list": body(extensions=[1]),
    "extensions string": body(extensions="x"),
    "body nested deep (arrays)": b"[" * DEEP + b"]" * DEEP,
    "body nested deep (objects)": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "variables nested deep": b'{"query": "{ viewer { id } }", "variables": {"v": '
    + b"[" * DEEP
    + b"]" * DEEP
    + b"}}",
    "invalid UTF-8": b'{"query": "{ viewer { id } }\xff\xfe"}',
    "latin-1": '{"query": "{ user(handle: \\"café\\") { id } }", "x": "é"}'.encode("latin-1"),
    "UTF-16": json.dumps({"query": VALID}).encode("utf-16"),
    "lone surrogate in operationName": body(operationName="\ud800"),
    "lone surrogate in query": b'{"query": "{ viewer { id } } # \\udc00"}',
    "lone surrogate in variables": b'{"query": "mutation($t: String!) { postTweet(text: $t) { id } }", '
    b'"variables": {"t": "a \\ud800 b"}}',
    "subscription over HTTP": b'{"query": "subscription { tweetActivity(tweetId: \\"1\\") { kind } }"}',
}


def assert_bad_user_input(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]
    assert errors[0]["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("content", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
async def test_a_malformed_post_answers_400_bad_user_input(api: Api, content: bytes) -> None:
    response = await api.http.post("/graphql", content=content, headers={"content-type": "application/json"})
    assert_bad_user_input(response)


MALFORMED_GETS: dict[str, dict[str, str]] = {
    "variables not JSON": {"query": VALID, "variables": "{x"},
    "variables list": {"query": VALID, "variables": "[1]"},
    "variables number": {"query": VALID, "variables": "5"},
    "variables nested deep": {"query": VALID, "variables": '{"v": ' + "[" * 5000 + "]" * 5000 + "}"},
    "variables lone surrogate": {"query": VALID, "variables": '{"v": "\\ud800"}'},
    "extensions string": {"query": VALID, "extensions": '"x"'},
    "mutation over GET": {"query": "mutation { logOut }"},
    "syntax error": {"query": "{ viewer { id "},
}


@pytest.mark.parametrize("params", MALFORMED_GETS.values(), ids=MALFORMED_GETS.keys())
async def test_a_malformed_get_answers_bad_user_input(api: Api, params: dict[str, str]) -> None:
    response = await api.http.get("/graphql", params=params, headers={"accept": "application/json"})
    if response.status_code == 200:  # a GraphQL error (syntax): HTTP 200 like any other
        errors = response.json()["errors"]
        assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]
    else:
        assert_bad_user_input(response)


async def test_null_variables_and_extensions_are_fine(api: Api) -> None:
    content = body(variables=None, extensions=None, operationName=None)
    response = await api.http.post("/graphql", content=content, headers={"content-type": "application/json"})
    assert response.json()["data"] == {"viewer": None}
    got = await api.http.get("/graphql", params={"query": VALID, "variables": "null"})
    assert got.json()["data"] == {"viewer": None}


LIMIT = 4096


async def test_a_body_over_the_limit_is_refused_by_its_length_unread(redis_url: str) -> None:
    async with started(redis_url, request_body_max_bytes=LIMIT) as harness:
        http = harness.api.http
        just_fits = json.dumps({"query": VALID, "variables": {"pad": "x" * (LIMIT - 100)}}).encode()
        assert len(just_fits) <= LIMIT
        response = await http.post(
            "/graphql", content=just_fits, headers={"content-type": "application/json"}
        )
        assert response.json()["data"] == {"viewer": None}
        too_big = json.dumps({"query": VALID, "variables": {"pad": "x" * LIMIT}}).encode()
        assert_bad_user_input(await http.post("/graphql", content=too_big), status=413)


async def test_a_chunked_body_is_read_no_further_than_the_limit(redis_url: str) -> None:
    chunk = b" " * 1024
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"query": "{ viewer { id } }", "pad": "'
        for _ in range(10_000):  # 10 MiB, if anyone read it all
            sent += 1
            yield chunk

    async with started(redis_url, request_body_max_bytes=LIMIT) as harness:
        response = await harness.api.http.post(
            "/graphql", content=endless(), headers={"content-type": "application/json"}
        )
        assert_bad_user_input(response, status=413)
    assert sent <= LIMIT // len(chunk) + 1


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(redis_url: str) -> None:
    """Over a real socket: the server answers 413 to the headers alone (50 MB announced,
    none sent), then closes; it neither waits for nor reads the body."""
    async with serve_live(make_settings(redis_url)) as live:
        host, port = live.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: starling.test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 413")
        writer.close()
