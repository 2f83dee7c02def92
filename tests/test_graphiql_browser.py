"""GraphiQL in a real browser with no internet: the page at /graphql loads, runs a query and
shows its result, and makes no request to any other origin (its assets are Starling's)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.browser import chromium_binary, chromium_page
from tests.conftest import make_settings
from tests.realtime import LiveApp, serve_live

CHROMIUM = chromium_binary()
EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror')"
RESULT = "document.querySelector('.result-window .CodeMirror')"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (.ci/run installs Debian's chromium)")
async def test_graphiql_runs_a_query_with_no_request_to_another_origin(redis_url: str) -> None:
    assert CHROMIUM is not None
    # As `starling dev` serves it: GraphiQL and introspection on (off by default in `serve`).
    settings = make_settings(redis_url, graphiql_enabled=True, introspection_enabled=True)
    async with serve_live(settings) as live:
        await _run_a_query(live)


async def _run_a_query(live: LiveApp) -> None:
    assert CHROMIUM is not None
    await live.api.sign_up("browser_user")
    query = '{ user(handle: "browser_user") { handle followersCount } }'
    async with chromium_page(CHROMIUM) as page:
        await page.send("Page.navigate", {"url": f"{live.url}/graphql"})
        await page.wait_for(f"{EDITOR} !== null && {EDITOR}.CodeMirror !== undefined")
        await page.evaluate(f"{EDITOR}.CodeMirror.setValue({json.dumps(query)})")
        await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
        result = f"({RESULT} && {RESULT}.CodeMirror.getValue())"
        shown = await page.wait_for(f"{result} && {result}.includes('browser_user') && {result}")
        urls = page.requested_urls()
    assert json.loads(shown)["data"] == {"user": {"handle": "browser_user", "followersCount": 0}}
    origin = urlsplit(live.url).netloc
    elsewhere = [
        url
        for url in urls
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != origin
    ]
    assert not elsewhere, f"GraphiQL requested other origins: {elsewhere}"
    assert any("/static/graphiql/graphiql@" in url for url in urls), urls
