"""Logs: a request ID on every line of a request and of the jobs it enqueues, request lines
that name the operation and its error codes, JSON that parses, and no secret ever logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from starling.logs import TEXT_FORMAT, JsonFormatter, RequestIdFilter
from tests.api import PASSWORD, eventually
from tests.harness import Harness, started

REQUEST_ID = "client-req-0042"


class Captured(logging.Handler):
    """Every record at every level, stamped by the same filter the real handler has."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        """Each record as both formats would print it (JSON and text)."""
        text = logging.Formatter(TEXT_FORMAT)
        return [f(record) for record in self.records for f in (JsonFormatter().format, text.format)]


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def request_lines(captured: Captured) -> list[logging.LogRecord]:
    return [record for record in captured.records if record.name == "starling.requests"]


async def test_the_request_id_follows_a_request_into_its_jobs(redis_url: str, captured: Captured) -> None:
    async with started(redis_url) as harness:
        api = harness.api
        author = await api.sign_up("traced_author")
        response = await api.http.post(
            "/graphql",
            json={"query": 'mutation PostTweet { postTweet(text: "follow me") { id } }'},
            headers={"Authorization": f"Bearer {author.token}", "X-Request-ID": REQUEST_ID},
        )
        assert response.headers["x-request-id"] == REQUEST_ID

        def job_lines() -> list[logging.LogRecord]:
            return [r for r in captured.records if r.getMessage().startswith("job fanout_tweet ok")]

        async def fanned_out() -> bool:
            return bool(job_lines())

        await eventually(fanned_out)
    [line] = [r for r in request_lines(captured) if r.request_id == REQUEST_ID]  # type: ignore[attr-defined]
    assert line.operations == ["PostTweet"] and line.error_codes == []  # type: ignore[attr-defined]
    assert "POST /graphql 200" in line.getMessage() and "PostTweet ok" in line.getMessage()
    assert [r.request_id for r in job_lines()] == [REQUEST_ID]  # type: ignore[attr-defined]


async def test_request_lines_name_operations_and_error_codes_as_json(
    redis_url: str, captured: Captured
) -> None:
    async with started(redis_url) as harness:
        response = await harness.api.http.post("/graphql", json={"query": "query Broken { nope }"})
        generated = response.headers["x-request-id"]
        unsafe = await harness.api.http.post(
            "/graphql", json={"query": "{ viewer { id } }"}, headers={"X-Request-ID": "bad id\twith spaces"}
        )
    assert len(generated) == 32 and unsafe.headers["x-request-id"] not in ("bad id\twith spaces", generated)
    line = next(r for r in request_lines(captured) if r.request_id == generated)  # type: ignore[attr-defined]
    entry = json.loads(JsonFormatter().format(line))
    assert entry["request_id"] == generated
    assert entry["operations"] == ["Broken"] and entry["error_codes"] == ["BAD_USER_INPUT"]
    assert entry["status"] == 200 and entry["path"] == "/graphql" and entry["level"] == "INFO"
    assert "Broken error BAD_USER_INPUT" in entry["message"]


async def _sign_up_log_in_and_misbehave(harness: Harness, password: str) -> str:
    http = harness.api.http
    sign_up = 'mutation($p: String!) { signUp(handle: "secretive", password: $p) { token } }'
    await harness.api.gql(sign_up, {"p": password})
    log_in = 'mutation($p: String!) { logIn(handle: "secretive", password: $p) { token } }'
    token = (await harness.api.gql(log_in, {"p": password}))["logIn"]["token"]
    wrong = await harness.api.raw(log_in, {"p": password + "-wrong"})
    assert wrong.get("errors")
    bearer = {"Authorization": f"Bearer {token}"}
    # A bad request carrying the token: malformed JSON, an unknown field, a GET with variables.
    await http.post(
        "/graphql", content=f'{{"query": "{password}', headers={**bearer, "content-type": "application/json"}
    )
    await http.post("/graphql", json={"query": "{ nope }"}, headers=bearer)
    await http.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers={"Authorization": f"Bearer {token}x"}
    )
    await http.get(
        "/graphql",
        params={"query": "{ viewer { id } }", "variables": json.dumps({"p": password})},
        headers=bearer,
    )
    return token


async def test_no_token_or_password_is_ever_logged(redis_url: str, captured: Captured) -> None:
    password = f"{PASSWORD} but secret"
    async with started(redis_url) as harness:
        token = await _sign_up_log_in_and_misbehave(harness, password)
    lines = captured.lines()
    assert len(request_lines(captured)) >= 7  # the requests were logged, without their secrets
    leaks = [line for line in lines if password in line or token in line or token.split(".")[-1] in line]
    assert not leaks, leaks
