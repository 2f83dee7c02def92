"""Test fixtures: a real Redis, the embedded MongoDB engine (or a real server when
MONGODB_URL is set), the real app with a real arq worker in-process.

Redis: REDIS_URL if set, else 127.0.0.1:6379, else a private redis-server started here
(as ``starling dev`` does). The session claims one database number of its own (a lock key
in database 0), so concurrent test runs on one Redis cannot disturb each other and a test
may FLUSHDB. Each test further gets its own key prefix, queue and MongoDB database.

Redis Cluster: tests marked ``both_redis_topologies`` (the Redis-facing ones: timelines,
fan-out, counters, subscriptions, the live server...) run twice, once with the data role on
that Redis and once on a private 3-master Redis Cluster started for the session from the
installed ``redis-server``, the standalone Redis then serving the queue role.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis as sync_redis
from starlette.applications import Starlette

from starling.cli import build_app
from starling.config import Settings
from starling.schema.execution import CHECKS
from starling.store.redis import PrivateRedisServer
from starling.store.redis_cluster import PrivateRedisCluster
from tests.api import Api
from tests.realtime import LiveApp, serve_live

# Every field a compiled plan completes, in every operation of every test (subprocesses
# the tests start included), is completed by graphql-core too and compared
# (starling.schema.execution); a difference fails the test.
os.environ.setdefault("GRAPHQL_EXECUTION_DIFFERENTIAL_CHECK", "true")

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TEST_DATABASES = range(1, 16)
LOCK_SECONDS = 3600


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _claim_database(base_url: str) -> tuple[str, sync_redis.Redis, str]:
    admin = sync_redis.Redis.from_url(urlsplit(base_url)._replace(path="/0").geturl())
    owner = uuid.uuid4().hex
    for number in TEST_DATABASES:
        lock = f"starling-test:db:{number}"
        if admin.set(lock, owner, nx=True, ex=LOCK_SECONDS):
            url = urlsplit(base_url)._replace(path=f"/{number}").geturl()
            sync_redis.Redis.from_url(url).flushdb()
            return url, admin, lock
    raise RuntimeError("every test Redis database is claimed by another run")


# A cluster URL -> the standalone Redis its tests use for the queue role.
_QUEUE_REDIS_FOR: dict[str, str] = {}


@pytest.fixture(autouse=True)
def no_execution_mismatch() -> Iterator[None]:
    """Fail a test in which a compiled plan answered otherwise than graphql-core, even where
    the error it raised was swallowed (a subscription, a test expecting errors)."""
    before = len(CHECKS.mismatches)
    yield
    assert CHECKS.mismatches[before:] == [], "compiled execution differs from graphql-core"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    fields = sum(CHECKS.fields.values())
    terminalreporter.write_line(
        f"differential check of compiled execution: {CHECKS.operations} operations, {fields} fields "
        f"({len(CHECKS.fields)} distinct), {len(CHECKS.mismatches)} mismatches"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_redis_topologies: run on standalone Redis and on a Redis Cluster"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_redis_topologies"
    ):
        metafunc.parametrize("redis_url", ["standalone", "cluster"], indirect=True)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, standalone_redis_url: str) -> str:
    """The data role's Redis of a test: standalone unless parametrized with "cluster"."""
    if getattr(request, "param", "standalone") == "cluster":
        url: str = request.getfixturevalue("cluster_redis_url")
        return url
    return standalone_redis_url


@pytest.fixture(scope="session")
def cluster_redis_url(standalone_redis_url: str) -> Iterator[str]:
    cluster = PrivateRedisCluster()
    url = cluster.start()
    _QUEUE_REDIS_FOR[url] = standalone_redis_url
    try:
        yield url
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def standalone_redis_url() -> Iterator[str]:
    base = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    private: PrivateRedisServer | None = None
    if not _answers(base):
        private = PrivateRedisServer()
        base = private.start()
    url, admin, lock = _claim_database(base)
    try:
        yield url
    finally:
        sync_redis.Redis.from_url(url).flushdb()
        admin.delete(lock)
        if private is not None:
            private.stop()


# The local media store's files of every test app, out of the worktree, gone at exit.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="starling-test-media-"))
atexit.register(shutil.rmtree, MEDIA_ROOT, ignore_errors=True)


def make_settings(redis_url: str, **overrides: object) -> Settings:
    tag = uuid.uuid4().hex[:10]
    values: dict[str, object] = {
        "redis_url": redis_url,
        "queue_redis_url": _QUEUE_REDIS_FOR.get(redis_url),
        "redis_cluster": redis_url in _QUEUE_REDIS_FOR,
        "mongodb_url": os.environ.get("MONGODB_URL") or None,
        "mongodb_db": f"starling_test_{tag}",
        "redis_key_prefix": f"t{tag}:",
        "queue_name": f"t{tag}:queue",
        "token_secret": f"test-secret-{tag}-{uuid.uuid4().hex}",
        "public_url": "https://starling.test",
        # Cheap hashing: the tests exercise the flow, not argon2's cost.
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 1024,
        "run_worker_in_process": True,
        "outbox_repair_after_seconds": 1,
        "media_local_dir": MEDIA_ROOT / tag,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@contextlib.asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[Starlette]:
    """Run the app's lifespan (connect, indexes, in-process worker) around a block."""
    async with app.router.lifespan_context(app):
        yield app
        services = app.state.services
        if not services.mongo.embedded:
            await services.mongo.client.drop_database(services.settings.mongodb_db)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    async with running(build_app(settings)) as started:
        yield started


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://starling.test") as http:
        yield http


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveApp]:
    """The app on a real uvicorn socket (worker in-process), for WebSocket clients."""
    async with serve_live(settings) as started:
        yield started
