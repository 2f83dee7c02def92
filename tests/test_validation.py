"""Every rule of DESIGN.md §5 this API has so far answers with its code, never HTTP 500."""

from __future__ import annotations

import pytest

from tests.api import PASSWORD, Api

SIGN_UP = "mutation($h: String!, $p: String!, $d: String) { signUp(handle: $h, password: $p, displayName: $d) { token } }"  # noqa: E501
POST = "mutation($t: String!) { postTweet(text: $t) { id text } }"


@pytest.mark.parametrize(
    ("handle", "password", "display_name"),
    [
        ("", PASSWORD, None),
        ("x" * 16, PASSWORD, None),
        ("bad-handle", PASSWORD, None),
        ("spaced out", PASSWORD, None),
        ("ok_handle", "short", None),
        ("ok_handle", PASSWORD, "n" * 51),
    ],
    ids=["empty-handle", "long-handle", "dash", "space", "short-password", "long-display-name"],
)
async def test_sign_up_rejects_bad_input(
    api: Api, handle: str, password: str, display_name: str | None
) -> None:
    codes = await api.error_codes(SIGN_UP, {"h": handle, "p": password, "d": display_name})
    assert codes == ["BAD_USER_INPUT"]


async def test_handle_taken_case_insensitively(api: Api) -> None:
    await api.sign_up("Taken")
    assert await api.error_codes(SIGN_UP, {"h": "tAKEN", "p": PASSWORD}) == ["CONFLICT"]


@pytest.mark.parametrize(
    "text",
    ["", "   \n  ", "x" * 281, "bell \x07 char", "tab\tchar"],
    ids=["empty", "blank", "too-long", "control", "tab"],
)
async def test_tweet_text_rules(api: Api, text: str) -> None:
    author = await api.sign_up("author")
    assert await api.error_codes(POST, {"t": text}, author.token) == ["BAD_USER_INPUT"]


async def test_tweet_text_limits_count_characters_after_nfc(api: Api) -> None:
    author = await api.sign_up("author")
    decomposed = "e\u0301" * 280  # 560 code points, 280 characters once composed
    data = await api.gql(POST, {"t": decomposed}, author.token)
    assert data["postTweet"]["text"] == "\u00e9" * 280
    multi_line = await api.gql(POST, {"t": "line one\nline two"}, author.token)
    assert multi_line["postTweet"]["text"] == "line one\nline two"


async def test_profile_limits(api: Api) -> None:
    account = await api.sign_up("profile")
    query = "mutation($d: String, $b: String) { updateProfile(displayName: $d, bio: $b) { bio } }"
    assert await api.error_codes(query, {"b": "b" * 161}, account.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(query, {"d": "d" * 51}, account.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(query, {"d": "   "}, account.token) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("first", [0, -1, 101, 10_000])
async def test_first_out_of_range(api: Api, first: int) -> None:
    reader = await api.sign_up("reader")
    query = "query($f: Int) { homeFeed(first: $f) { nodes { id } } }"
    assert await api.error_codes(query, {"f": first}, reader.token) == ["BAD_USER_INPUT"]
    profile = 'query($f: Int) { user(handle: "reader") { followers(first: $f) { nodes { id } } } }'
    assert await api.error_codes(profile, {"f": first}) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("cursor", ["nope", "!!!", "djE6YWJj", "", "djI6MTIz"])
async def test_cursor_that_does_not_decode(api: Api, cursor: str) -> None:
    reader = await api.sign_up("reader")
    query = "query($a: String) { homeFeed(after: $a) { nodes { id } } }"
    assert await api.error_codes(query, {"a": cursor}, reader.token) == ["BAD_USER_INPUT"]
    tweets = 'query($a: String) { user(handle: "reader") { tweets(after: $a) { nodes { id } } } }'
    assert await api.error_codes(tweets, {"a": cursor}) == ["BAD_USER_INPUT"]


async def test_ids(api: Api) -> None:
    a = await api.sign_up("someone")
    query = "query($id: ID!) { tweet(id: $id) { id } }"
    assert await api.gql(query, {"id": "123456789"}) == {"tweet": None}
    for bad in ("abc", "-5", "0", "99999999999999999999999"):
        assert await api.error_codes(query, {"id": bad}) == ["BAD_USER_INPUT"]
    follow = "mutation($id: ID!) { follow(userId: $id) { id } }"
    assert await api.error_codes(follow, {"id": "123456789"}, a.token) == ["NOT_FOUND"]
    assert await api.error_codes(follow, {"id": "x"}, a.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(follow, {"id": a.id}, a.token) == ["BAD_USER_INPUT"]
    delete = "mutation($id: ID!) { deleteTweet(id: $id) }"
    assert await api.error_codes(delete, {"id": "123456789"}, a.token) == ["NOT_FOUND"]


@pytest.mark.parametrize(
    "operation",
    [
        "query { homeFeed { nodes { id } } }",
        'mutation { postTweet(text: "hi") { id } }',
        "mutation { logOut }",
        'mutation { updateProfile(bio: "x") { id } }',
        'mutation { follow(userId: "1") { id } }',
        'mutation { unfollow(userId: "1") { id } }',
        'mutation { deleteTweet(id: "1") }',
    ],
)
async def test_viewer_required(api: Api, operation: str) -> None:
    assert await api.error_codes(operation) == ["UNAUTHENTICATED"]


async def test_graphql_level_mistakes(api: Api) -> None:
    assert await api.error_codes("{ viewer { handle ") == ["BAD_USER_INPUT"]
    assert await api.error_codes("{ viewer { noSuchField } }") == ["BAD_USER_INPUT"]
    assert await api.error_codes("query($f: Int) { homeFeed(first: $f) { nodes { id } } }", {"f": "ten"}) == [
        "BAD_USER_INPUT"
    ]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"variables": {}}', "application/json"),
        (b"[1, 2", "application/json"),
        (b"query=1", "text/plain"),
    ],
    ids=["malformed-json", "no-query", "truncated", "wrong-content-type"],
)
async def test_malformed_http_requests(api: Api, content: bytes, content_type: str) -> None:
    response = await api.http.post("/graphql", content=content, headers={"content-type": content_type})
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["message"]


async def test_unexpected_errors_are_masked(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from starling.resolvers import accounts

    async def broken(ctx: object, handle: str) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(accounts, "user_by_handle", broken)
    body = await api.raw('{ user(handle: "x") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in str(body)


async def test_health_endpoints(api: Api) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "mongodb": "ok", "redis": "ok", "queue_redis": "ok"}
    metrics = await api.http.get("/metrics")
    assert "starling_redis_round_trips_total" in metrics.text
