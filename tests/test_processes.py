"""Production shape: `starling serve` and `starling worker` as separate processes.

They share state only through MongoDB and Redis, so this needs a real MongoDB server: it
runs when MONGODB_URL is set (the embedded engine lives inside one process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.api import Api, eventually
from tests.live import free_port

pytestmark = pytest.mark.skipif(
    not os.environ.get("MONGODB_URL"), reason="separate processes need a real MongoDB (MONGODB_URL)"
)

STARTUP_SECONDS = 30


@pytest.fixture
def deployment(redis_url: str) -> Iterator[str]:
    tag = uuid.uuid4().hex[:10]
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "MONGODB_DB": f"starling_proc_{tag}",
        "REDIS_KEY_PREFIX": f"p{tag}:",
        "QUEUE_NAME": f"p{tag}:queue",
        "TOKEN_SECRET": uuid.uuid4().hex * 2,
        "LOG_LEVEL": "WARNING",
    }
    port = free_port()
    starling = [sys.executable, "-m", "starling.cli"]
    processes = [
        subprocess.Popen([*starling, "serve", "--port", str(port), "--workers", "2"], env=env),
        subprocess.Popen([*starling, "worker"], env=env),
    ]
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if httpx.get(f"{base_url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "starling serve did not become ready"
            time.sleep(0.2)
        yield base_url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)
        from pymongo import MongoClient

        with MongoClient(os.environ["MONGODB_URL"]) as client:
            client.drop_database(env["MONGODB_DB"])


async def test_serve_and_worker_processes_deliver_a_tweet(deployment: str) -> None:
    async with httpx.AsyncClient(base_url=deployment) as http:
        api = Api(http)
        author, reader = await api.sign_up("author"), await api.sign_up("reader")
        await api.follow(reader, author)
        await api.feed_page(reader)
        tweet = await api.post(author, "from one process to another")

        async def delivered() -> bool:
            return tweet["id"] in await api.whole_feed(reader)

        await eventually(delivered, within=15)
