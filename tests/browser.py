"""Headless Chromium driven over the DevTools protocol (CDP), for tests of what a browser sees.

A small client over ``websockets`` rather than Playwright or Pyppeteer, which download
browser builds of their own: this drives the Chromium of the system's packages
(``.ci/run`` installs Debian's), started with ``--remote-debugging-port=0``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator
from typing import Any

import websockets

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
STARTUP_SECONDS = 30.0
COMMAND_SECONDS = 30.0
_DEVTOOLS_URL = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_binary() -> str | None:
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


class Page:
    """One browser tab: CDP commands on its session, and the events it sent."""

    def __init__(self, connection: Any, session_id: str) -> None:
        self._connection = connection
        self._session_id = session_id
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._connection:
            message = json.loads(raw)
            future = self._pending.pop(message.get("id", -1), None)
            if future is not None:
                if "error" in message:
                    future.set_exception(RuntimeError(f"CDP error: {message['error']}"))
                else:
                    future.set_result(message.get("result", {}))
            elif "method" in message:
                self.events.append(message)

    async def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> Any:
        message_id = next(self._ids) + 1_000_000
        future = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session_id
        await self._connection.send(json.dumps(message))
        return await asyncio.wait_for(future, COMMAND_SECONDS)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, within: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"never true in the page: {expression}")
            await asyncio.sleep(0.1)

    def requested_urls(self) -> list[str]:
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event["method"] == "Network.requestWillBeSent"
        ]

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


@contextlib.asynccontextmanager
async def chromium_page(binary: str) -> AsyncIterator[Page]:
    """A fresh headless Chromium (own profile, no background traffic) and one blank tab,
    with network and page events recorded from the start."""
    with tempfile.TemporaryDirectory(prefix="starling-chromium-", ignore_cleanup_errors=True) as profile:
        # Popen only starts it (no wait); a pipe is read in a thread below.
        process = subprocess.Popen(  # noqa: ASYNC220
            [
                binary,
                "--headless=new",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its helper processes form one group, stopped together
        )
        try:
            url = await asyncio.wait_for(asyncio.to_thread(_devtools_url, process), STARTUP_SECONDS)
            async with websockets.connect(url, max_size=None) as connection:
                page = await _open_tab(connection)
                try:
                    yield page
                finally:
                    await page.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await asyncio.to_thread(process.wait)


def _devtools_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for line in process.stderr:
        match = _DEVTOOLS_URL.search(line)
        if match:
            # Keep reading what it logs, or a full pipe would block the browser.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return match.group(1)
    raise RuntimeError(f"chromium exited ({process.wait()}) without a DevTools URL")


async def _open_tab(connection: Any) -> Page:
    bootstrap = Page(connection, session_id="")
    target = await bootstrap.send("Target.createTarget", {"url": "about:blank"}, session=False)
    attached = await bootstrap.send(
        "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=False
    )
    bootstrap._session_id = attached["sessionId"]
    for domain in ("Network", "Page", "Runtime"):
        await bootstrap.send(f"{domain}.enable")
    return bootstrap
