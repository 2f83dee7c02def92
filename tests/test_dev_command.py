"""`starling dev`: the whole system in one process on embedded defaults (what the README's
first command runs): a private redis-server, the embedded MongoDB engine, the arq worker
in-process, demo data; and nothing left running after it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from tests.live import free_port

STARTUP_SECONDS = 60
FEED = "{ homeFeed(first: 5) { nodes { text author { handle } } pageInfo { hasNextPage } } }"


def _redis_servers() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "redis-server"], capture_output=True, text=True).stdout
    return {int(pid) for pid in found.split()}


def _children_of(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(child) for child in found.split()}


def test_dev_serves_a_seeded_network_and_cleans_up() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGODB_URL", "TOKEN_SECRET")}
    port = free_port()
    before = _redis_servers()
    dev = subprocess.Popen(
        [sys.executable, "-m", "starling.cli", "dev", "--seed", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        token = None
        while token is None:
            assert dev.poll() is None, dev.stdout.read() if dev.stdout else ""
            assert time.monotonic() < deadline, "starling dev did not come up with demo data"
            try:
                body = httpx.post(
                    f"{base}/graphql",
                    json={"query": 'mutation { logIn(handle: "demo", password: "starling-demo") { token } }'},
                ).json()
                token = (body.get("data") or {}).get("logIn", {}).get("token")
            except (httpx.TransportError, AttributeError):
                pass
            if token is None:
                time.sleep(0.3)
        assert "graphiql" in httpx.get(f"{base}/graphql", headers={"accept": "text/html"}).text.lower()
        feed = httpx.post(
            f"{base}/graphql", json={"query": FEED}, headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert len(feed["data"]["homeFeed"]["nodes"]) == 5
        assert feed["data"]["homeFeed"]["pageInfo"]["hasNextPage"] is True
        private = (_redis_servers() - before) & _children_of(dev.pid)
        assert private, "no private redis-server was started"
    finally:
        dev.send_signal(signal.SIGTERM)
        output, _ = dev.communicate(timeout=30)
    assert dev.returncode == 0, output
    assert "embedded (mongomock" in output and "private redis-server" in output
    time.sleep(0.5)
    assert not (_redis_servers() & private), "the private redis-server outlived starling dev"
