"""Browser clients on other origins (CORS_ALLOWED_ORIGINS, HTTP and WebSocket), and the dev
switches GRAPHIQL_ENABLED / INTROSPECTION_ENABLED, against a real uvicorn server."""

from __future__ import annotations

import httpx
import pytest
import websockets

from starling.cli import with_dev_defaults
from starling.config import Settings
from starling.graphiql import ASSET_ROUTE, cdn_assets, strawberry_page
from starling.origins import DEV_ORIGINS, AllowedOrigins
from tests.api import Api
from tests.conftest import make_settings
from tests.harness import started
from tests.realtime import PROTOCOLS, Listener, LiveApp, like

VITE = "http://localhost:5173"  # a frontend dev server
APP = "https://app.example"  # a deployed frontend
STRANGER = "https://evil.example"
ACTIVITY = "subscription($id: ID!) { tweetActivity(tweetId: $id) { kind actor { handle } } }"


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url, cors_allowed_origins=f"http://localhost:*, {APP}")


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_a_preflight_from_a_listed_origin_is_answered_and_the_request_then_runs(live: LiveApp) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        for origin in (VITE, "http://localhost", APP):
            answer = await http.options("/graphql", headers=preflight(origin))
            assert answer.status_code == 200, origin
            assert answer.headers["access-control-allow-origin"] == origin
            assert "POST" in answer.headers["access-control-allow-methods"]
            assert "authorization" in answer.headers["access-control-allow-headers"].lower()
            response = await http.post(
                "/graphql", json={"query": "{ viewer { id } }"}, headers={"Origin": origin}
            )
            assert response.json()["data"] == {"viewer": None}
            assert response.headers["access-control-allow-origin"] == origin
            assert "Retry-After" in response.headers["access-control-expose-headers"]


async def test_a_preflight_from_an_unlisted_origin_is_refused(live: LiveApp) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        for origin in (STRANGER, "http://localhost.evil.example:5173", "https://app.example.evil"):
            answer = await http.options("/graphql", headers=preflight(origin))
            assert answer.status_code == 400, origin
            assert "access-control-allow-origin" not in answer.headers
            response = await http.post(
                "/graphql", json={"query": "{ viewer { id } }"}, headers={"Origin": origin}
            )
            assert "access-control-allow-origin" not in response.headers  # the browser hides it


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_websocket_from_a_listed_origin_subscribes(live: LiveApp, protocol: str) -> None:
    api = live.api
    author, fan = await api.sign_up("author"), await api.sign_up("fan")
    tweet = await api.post(author, "watch me")
    client = live.client(protocol=protocol, headers={"Origin": VITE})
    async with Listener(client, ACTIVITY, {"id": tweet["id"]}) as activity:
        await live.settled(1)
        await like(api, fan, tweet["id"])
        result = await activity.next()
    assert result["tweetActivity"] == {"kind": "LIKE", "actor": {"handle": "fan"}}


async def test_a_websocket_from_an_unlisted_origin_is_refused(live: LiveApp) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            live.ws_url, subprotocols=["graphql-transport-ws"], additional_headers={"Origin": STRANGER}
        ):
            pass
    assert refused.value.response.status_code == 403
    # Same-origin pages and clients without an Origin (not browsers) need no listing.
    same_origin = {"Origin": live.url}
    async with websockets.connect(
        live.ws_url, subprotocols=["graphql-transport-ws"], additional_headers=same_origin
    ):
        pass


def test_allowed_origins_parse() -> None:
    dev = AllowedOrigins.parse(DEV_ORIGINS)
    assert dev.allows("http://localhost:5173") and dev.allows("http://127.0.0.1:8080")
    assert dev.allows("http://LOCALHOST:3000")
    assert not dev.allows("https://localhost:5173")  # another scheme is another origin
    assert not dev.allows("http://localhost:5173.evil.example")
    assert not AllowedOrigins.parse("").allows(VITE)
    assert AllowedOrigins.parse("*").allows(STRANGER)
    assert AllowedOrigins.parse(f" {APP}/ ,").allows(APP)


def test_dev_allows_localhost_graphiql_and_introspection_unless_told_otherwise() -> None:
    serve = Settings()  # what `starling serve` runs with when nothing is set
    assert (serve.graphiql_enabled, serve.introspection_enabled, serve.cors_allowed_origins) == (
        False,
        False,
        "",
    )
    dev = with_dev_defaults(Settings())
    assert (dev.graphiql_enabled, dev.introspection_enabled, dev.cors_allowed_origins) == (
        True,
        True,
        DEV_ORIGINS,
    )
    told = with_dev_defaults(Settings(graphiql_enabled=False, cors_allowed_origins=APP))
    assert (told.graphiql_enabled, told.introspection_enabled, told.cors_allowed_origins) == (
        False,
        True,
        APP,
    )


INTROSPECTION = "{ __schema { queryType { name } } }"
HTML = {"accept": "text/html"}


async def test_graphiql_and_introspection_are_off_unless_enabled(api: Api, redis_url: str) -> None:
    page = await api.http.get("/graphql", headers=HTML)
    assert page.status_code == 404
    assert page.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert set(await api.error_codes(INTROSPECTION)) == {"BAD_USER_INPUT"}  # one per field
    assert (await api.gql("{ __typename }")) == {"__typename": "Query"}  # not introspection
    asset = f"{ASSET_ROUTE}/{cdn_assets(strawberry_page())[0].local_path}"
    assert (await api.http.get(asset)).status_code == 404  # nor its assets

    async with started(redis_url, graphiql_enabled=True, introspection_enabled=True) as harness:
        page = await harness.api.http.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        assert (await harness.api.http.get(asset)).status_code == 200
        assert await harness.api.gql(INTROSPECTION) == {"__schema": {"queryType": {"name": "Query"}}}
