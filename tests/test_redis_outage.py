"""A Redis outage under a running `starling dev`: its in-process worker (the supervised loop
`starling worker` runs too) survives it, and every tweet posted before, during and after
reaches every follower's feed once Redis is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis as sync_redis

from starling.store.redis import PrivateRedisServer
from tests.api import PASSWORD
from tests.live import free_port

OUTAGE_SECONDS = 10
RECOVERY_SECONDS = 60
STARTUP_SECONDS = 60
FEED = "{ homeFeed(first: 50) { nodes { id } } }"


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def gql(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            f"{self.base}/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code != 500, response.text
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    def sign_up(self, handle: str) -> tuple[str, str]:
        data = self.gql(
            "mutation($h: String!, $p: String!) { signUp(handle: $h, password: $p) { token user { id } } }",
            {"h": handle, "p": PASSWORD},
        )["signUp"]
        return data["user"]["id"], data["token"]

    def post(self, token: str, text: str) -> str:
        return self.gql("mutation($t: String!) { postTweet(text: $t) { id } }", {"t": text}, token)[
            "postTweet"
        ]["id"]

    def feed(self, token: str) -> list[str]:
        return [node["id"] for node in self.gql(FEED, token=token)["homeFeed"]["nodes"]]


def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what} within {within} s"
        time.sleep(0.3)


@contextmanager
def dev_server(redis_url: str, data_dir: Path) -> Iterator[Client]:
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "TOKEN_SECRET")}
    # A data directory of its own: `starling dev` keeps its data across runs.
    env.update(
        REDIS_URL=redis_url,
        OUTBOX_REPAIR_AFTER_SECONDS="1",
        LOG_LEVEL="WARNING",
        STARLING_DATA_DIR=str(data_dir),
    )
    port = free_port()
    dev = subprocess.Popen(
        [sys.executable, "-m", "starling.cli", "dev", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = Client(f"http://127.0.0.1:{port}")

    def answers() -> bool:
        assert dev.poll() is None, dev.stdout.read() if dev.stdout else ""
        try:
            return httpx.get(f"{client.base}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, STARTUP_SECONDS, "starling dev answers")
        yield client
    finally:
        dev.send_signal(signal.SIGTERM)
        output, _ = dev.communicate(timeout=30)
        print(output[-3000:])


def test_every_tweet_reaches_every_follower_across_a_redis_outage(tmp_path: Path) -> None:
    first = PrivateRedisServer()
    url = first.start()
    current = first
    try:
        with dev_server(url, tmp_path) as api:
            _, author = api.sign_up("author")
            author_id = api.gql("{ viewer { id } }", token=author)["viewer"]["id"]
            followers = [api.sign_up(f"follower{n}")[1] for n in range(3)]
            for token in followers:
                api.gql("mutation($id: ID!) { follow(userId: $id) { id } }", {"id": author_id}, token)
            posted = [api.post(author, f"before {n}") for n in range(3)]
            wait_for(lambda: all(api.feed(t) == posted[::-1] for t in followers), 20, "fan-out before")

            # The outage: Redis saves and stops; the API keeps taking posts (MongoDB has them).
            sync_redis.Redis.from_url(url).shutdown(save=True)
            outage_ends = time.monotonic() + OUTAGE_SECONDS
            posted += [api.post(author, f"during {n}") for n in range(3)]
            time.sleep(max(0.0, outage_ends - time.monotonic()))

            # Back on the same port with its data, as after a restart.
            current = PrivateRedisServer(port=first.port, workdir=first.workdir)
            current.start()
            posted += [api.post(author, f"after {n}") for n in range(3)]
            wait_for(
                lambda: all(api.feed(t) == posted[::-1] for t in followers),
                RECOVERY_SECONDS,
                "every tweet in every follower's feed after the outage",
            )
            assert api.feed(author) == posted[::-1]
    finally:
        current.stop()
