"""Live subscribers held by one API process, and how fast events reach them.

One Starling server runs as its own process (uvicorn, embedded MongoDB, the worker
in-process); this process is the load: N WebSocket clients (raw sockets, one
``asyncio.Protocol`` each, speaking graphql-transport-ws), each subscribed to
``homeFeed { id viewerHasLiked author { handle } }`` as a different viewer (one shared
execution per event for all of them, ``starling.schema.shared``). Viewers are signed
tokens minted with the server's TOKEN_SECRET for N user IDs (signing up thousands of users
would only time argon2); the tweets are real,
posted over HTTP by a real author, so each event is hydrated as in production.

Events are published exactly as the fan-out worker publishes them (``queue_feed_events``,
one pipeline), on the viewers' own channels. Two phases, latency = client receive time -
publish time (one clock: this process publishes and receives):

- **sparse**: one event to one random subscriber at a time, N connections held idle;
- **burst**: one event to every subscriber at once (a fan-out batch of N), repeated.

Memory: the server's resident set (``/proc/<pid>/status`` VmRSS) before the clients
connect and once all N subscriptions are live; the difference over N is the cost of one
subscriber (WebSocket, protocol handler, context, the hub's routing record, Redis channel).

    python -m bench.subscribers [--subscribers 10000] [--bursts 3] [--sparse 200] [--quick] [--out DIR]

Writes ``subscribers.json`` and ``subscribers.md`` to ``bench/results`` (or ``--out``).
Loopback only; about three minutes with the defaults on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from redis.asyncio import Redis

from bench.stats import percentile
from starling.resolvers.tokens import issue_token
from starling.store.ids import SnowflakeGenerator
from starling.store.keys import Keys
from starling.store.pubsub.publishing import queue_feed_events
from starling.store.redis import PrivateRedisServer

RESULTS = Path(__file__).resolve().parent / "results"
QUERY = "subscription { homeFeed { id viewerHasLiked author { handle } } }"
CONNECT_CONCURRENCY = 64
SETTLE_SECONDS = 120.0
DELIVERY_TIMEOUT_SECONDS = 60.0
TOKEN_TTL_SECONDS = 3600
PUBLISH_CHUNK = 1000  # PUBLISHes per pipeline, as a fan-out batch


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def summary_ms(latencies: list[float]) -> dict[str, float]:
    ms = sorted(value * 1000 for value in latencies)
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(ms[-1], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


# -- the server --------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(redis_url: str) -> Server:
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"bench-{tag}:",
        "QUEUE_NAME": f"bench-{tag}:queue",
        "TOKEN_SECRET": secrets.token_urlsafe(32),
        "RUN_WORKER_IN_PROCESS": "true",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST_KIB": "1024",
        "LOG_LEVEL": "WARNING",
        # Thousands of clients on one loopback address: the per-address caps are for the
        # internet (a load test, which is what the switch is for).
        "RATE_LIMITS_ENABLED": "false",
    }
    env.pop("MONGODB_URL", None)  # the embedded engine: the worker must share the process
    command = [
        sys.executable, "-m", "uvicorn", "starling.cli:app_from_environment", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        # The WebSocket protocol `starling serve` runs (uvicorn's sans-I/O websockets one).
        "--ws", "starling.server:GoingAwayWebSocketProtocol",
        # ...and no proxy headers, as `starling serve` runs it (starling.server.run).
        "--no-proxy-headers",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Server(process, url, env)
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not become ready")


# -- the clients -------------------------------------------------------------------------
# Raw sockets: one asyncio.Protocol per connection that frames and unframes WebSocket by
# hand (no per-frame tasks, futures or parsed JSON: the tweet ID is found in the bytes), so
# that the load generator, which shares the cores with the server, costs little per frame.

FIN_TEXT, PONG, PING, CLOSE = 0x81, 0x8A, 0x9, 0x8
TWEET_ID = b'"homeFeed":{"id":"'


def client_frame(opcode_byte: int, payload: bytes) -> bytes:
    """A masked client frame; the mask is zero (allowed, and XOR-free)."""
    size = len(payload)
    if size < 126:
        header = bytes([opcode_byte, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([opcode_byte, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([opcode_byte, 0x80 | 127]) + size.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


class Subscriber(asyncio.Protocol):
    def __init__(self, user_id: int, host: str, token: str) -> None:
        self.user_id = user_id
        self.host = host
        self.token = token
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.received: dict[str, float] = {}  # tweet id -> receive time
        self.arrived = asyncio.Event()
        self.failure: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        transport.write(
            (
                f"GET /graphql HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.fail(self.buffer[:end].decode(errors="replace"))
                return
            del self.buffer[: end + 4]
            self.upgraded = True
            self.send(
                orjson.dumps(
                    {"type": "connection_init", "payload": {"authorization": f"Bearer {self.token}"}}
                )
            )
            self.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY}}))
        self.unframe()

    def unframe(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            size, start = buffer[1] & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + size:
                return
            opcode, payload = buffer[0] & 0x0F, bytes(buffer[start : start + size])
            del buffer[: start + size]
            if opcode == 1:
                self.on_text(payload)
            elif opcode == PING and self.transport is not None:
                self.transport.write(client_frame(PONG, payload))
            elif opcode == CLOSE:
                self.fail(f"closed: {payload!r}")

    def on_text(self, payload: bytes) -> None:
        at = payload.find(TWEET_ID)
        if at >= 0:
            now = time.perf_counter()
            start = at + len(TWEET_ID)
            self.received[payload[start : payload.index(b'"', start)].decode()] = now
            self.arrived.set()
        elif b'"connection_ack"' in payload:
            if not self.ready.done():
                self.ready.set_result(None)
        elif b'"type":"error"' in payload or b'"type":"complete"' in payload or b'"errors"' in payload:
            self.fail(payload.decode())

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(FIN_TEXT, payload))

    def fail(self, why: str) -> None:
        self.failure = self.failure or why
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(f"connection lost: {exc}")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_subscriber(url: str, user_id: int, token: str) -> Subscriber:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    _, subscriber = await loop.create_connection(
        lambda: Subscriber(user_id, f"{host}:{port}", token), host, port
    )
    await asyncio.wait_for(subscriber.ready, 60)
    return subscriber


async def open_all(url: str, user_ids: list[int], secret: str) -> list[Subscriber]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(user_id: int) -> Subscriber:
        async with gate:
            return await open_subscriber(url, user_id, issue_token(secret, user_id, TOKEN_TTL_SECONDS))

    return list(await asyncio.gather(*(one(user_id) for user_id in user_ids)))


async def wait_subscribed(redis: Redis, channels: list[str]) -> None:
    """Until Redis reports every channel subscribed (by the server's one connection)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    pending = channels
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} channels never subscribed")
        still: list[str] = []
        for start in range(0, len(pending), 1000):
            chunk = pending[start : start + 1000]
            still += [name.decode() for name, count in await redis.pubsub_numsub(*chunk) if count == 0]
        pending = still
        if pending:
            await asyncio.sleep(0.1)


async def pubsub_connections_holding(redis: Redis, channels: int) -> int:
    """How many Redis connections are subscribed to at least ``channels`` channels."""
    return sum(1 for client in await redis.client_list(_type="pubsub") if int(client["sub"]) >= channels)


# -- the phases --------------------------------------------------------------------------


async def publish(redis: Redis, keys: Keys, user_ids: list[int], tweet_id: int) -> float:
    """Publish as the fan-out does; returns the publish time (before the first send)."""
    started = time.perf_counter()
    for start in range(0, len(user_ids), PUBLISH_CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            queue_feed_events(pipe, keys, user_ids[start : start + PUBLISH_CHUNK], tweet_id)
            await pipe.execute()
    return started


async def sparse_phase(
    redis: Redis, keys: Keys, subscribers: list[Subscriber], tweet_ids: list[int]
) -> list[float]:
    latencies: list[float] = []
    for tweet_id in tweet_ids:
        target = random.choice(subscribers)
        target.arrived.clear()
        sent = await publish(redis, keys, [target.user_id], tweet_id)
        while str(tweet_id) not in target.received:
            await asyncio.wait_for(target.arrived.wait(), DELIVERY_TIMEOUT_SECONDS)
            target.arrived.clear()
        latencies.append(target.received[str(tweet_id)] - sent)
    return latencies


async def burst_phase(
    redis: Redis, keys: Keys, subscribers: list[Subscriber], tweet_ids: list[int]
) -> tuple[list[float], list[float]]:
    """Per-delivery latencies, and each round's time until the last subscriber had it."""
    latencies: list[float] = []
    completions: list[float] = []
    user_ids = [subscriber.user_id for subscriber in subscribers]
    for n, tweet_id in enumerate(tweet_ids):
        key = str(tweet_id)
        sent = await publish(redis, keys, user_ids, tweet_id)
        deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
        while any(key not in subscriber.received for subscriber in subscribers):
            if time.monotonic() > deadline:
                missing = sum(key not in subscriber.received for subscriber in subscribers)
                raise RuntimeError(f"round {n}: {missing} subscribers never got the event")
            await asyncio.sleep(0.01)
        arrivals = [subscriber.received[key] - sent for subscriber in subscribers]
        latencies += arrivals
        completions.append(max(arrivals))
        await asyncio.sleep(0.2)  # let the server return to idle between rounds
    return latencies, completions


# -- the run -----------------------------------------------------------------------------


async def sign_up_author(http: httpx.AsyncClient) -> str:
    query = "mutation($h: String!, $p: String!) { signUp(handle: $h, password: $p) { token } }"
    body = (
        await http.post("/graphql", json={"query": query, "variables": {"h": "bench", "p": "benchmark!"}})
    ).json()
    return body["data"]["signUp"]["token"]


async def post(http: httpx.AsyncClient, token: str, text: str) -> int:
    query = "mutation($t: String!) { postTweet(text: $t) { id } }"
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": {"t": text}},
        headers={"Authorization": f"Bearer {token}"},
    )
    return int(response.json()["data"]["postTweet"]["id"])


async def run(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    server = start_server(redis_url)
    redis = Redis.from_url(redis_url)
    keys = Keys(server.env["REDIS_KEY_PREFIX"])
    subscribers: list[Subscriber] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            author = await sign_up_author(http)
            # One tweet per event: a home feed announces each tweet once.
            tweets = [await post(http, author, f"live tweet {n}") for n in range(args.sparse + args.bursts)]
        # Distinct, plausible user IDs with no account behind them: tokens are all a
        # homeFeed subscription checks, and nobody follows a celebrity.
        ids = SnowflakeGenerator(1023)
        user_ids = [ids.next_id() for _ in range(args.subscribers)]
        channels = [keys.feed_events(user_id) for user_id in user_ids]

        await asyncio.sleep(1.0)
        rss_before = rss_kib(server.pid)
        connect_started = time.perf_counter()
        subscribers = await open_all(server.url, user_ids, server.env["TOKEN_SECRET"])
        await wait_subscribed(redis, channels)
        connect_seconds = time.perf_counter() - connect_started
        await asyncio.sleep(1.0)
        rss_subscribed = rss_kib(server.pid)
        holding = await pubsub_connections_holding(redis, args.subscribers)

        sparse = await sparse_phase(redis, keys, subscribers, tweets[: args.sparse])
        burst, completions = await burst_phase(redis, keys, subscribers, tweets[args.sparse :])
        rss_after = rss_kib(server.pid)
        failed = [s.failure for s in subscribers if s.failure is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} subscriptions ended early: {failed[0]}")
        return {
            "benchmark": "subscribers",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "system": platform.platform(),
            },
            "setup": {
                "subscribers": args.subscribers,
                "query": QUERY,
                "protocol": "graphql-transport-ws",
                "server": "uvicorn, 1 process, embedded MongoDB, worker in-process",
                "client": "raw-socket WebSocket client (asyncio.Protocol), 1 process, same machine",
            },
            "connect": {
                "seconds": round(connect_seconds, 2),
                "per_second": round(args.subscribers / connect_seconds, 1),
                "redis_connections_holding_all_channels": holding,
            },
            "memory": {
                "rss_before_kib": rss_before,
                "rss_subscribed_kib": rss_subscribed,
                "rss_after_events_kib": rss_after,
                "per_subscriber_kib": round((rss_subscribed - rss_before) / args.subscribers, 1),
            },
            "sparse": summary_ms(sparse),
            "burst": {
                **summary_ms(burst),
                "rounds": args.bursts,
                "events_per_round": args.subscribers,
                "last_delivery_ms": [round(value * 1000, 1) for value in completions],
                "deliveries_per_second": round(args.subscribers / statistics.fmean(completions), 1),
            },
        }
    finally:
        for subscriber in subscribers:
            subscriber.close()
        server.stop()
        async for key in redis.scan_iter(f"{keys.prefix}*"):
            await redis.delete(key)
        await redis.aclose()


def markdown(result: dict[str, Any]) -> str:
    setup, memory, connected = result["setup"], result["memory"], result["connect"]
    sparse, burst = result["sparse"], result["burst"]
    n = setup["subscribers"]
    last = ", ".join(f"{value:.0f} ms" for value in burst["last_delivery_ms"])
    rows = [
        ("subscribers connected and live", f"{n} in {connected['seconds']} s ({connected['per_second']}/s)"),
        (
            "Redis connections holding their channels",
            str(connected["redis_connections_holding_all_channels"]),
        ),
        (
            "server RSS before / with subscribers",
            f"{memory['rss_before_kib'] // 1024} MiB / {memory['rss_subscribed_kib'] // 1024} MiB",
        ),
        ("**memory per subscriber**", f"**{memory['per_subscriber_kib']} KiB**"),
        ("server RSS after all events", f"{memory['rss_after_events_kib'] // 1024} MiB"),
        (
            "sparse: one event to one subscriber, p50 / p99",
            f"{sparse['p50_ms']} ms / {sparse['p99_ms']} ms ({sparse['count']} events)",
        ),
        (
            "burst: one event to every subscriber, p50 / p99",
            f"{burst['p50_ms']} ms / {burst['p99_ms']} ms ({burst['count']} deliveries)",
        ),
        ("burst: last subscriber served after", last),
        ("burst: deliveries per second", str(burst["deliveries_per_second"])),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"""# Live subscribers on one API process

`python -m bench.subscribers --subscribers {n} --bursts {burst["rounds"]} --sparse {sparse["count"]}`, \
{result["date"]}, {result["machine"]["cpus"]} CPUs shared by the server, the load generator and Redis.

{n} WebSocket clients ({setup["protocol"]}, a raw-socket client), each subscribed as its own viewer to \
`{setup["query"]}`, held by one uvicorn process ({setup["server"]}). Events are published the way \
the fan-out publishes them (a pipeline of `PUBLISH`, one per follower's channel); latency is the \
client's receive time minus the publish time, on one clock.

| | |
|---|---|
{table}

- **One Redis connection** carries every channel of the process: the event hub subscribes a \
channel when its first local subscriber arrives and drops it when the last leaves.
- **Shared execution** (`starling.schema.shared`): every subscriber of the same operation is a \
routing record in the hub, not a Strawberry operation task with a graphql-core subscription \
generator. An event is executed once for all of them (tweet from the Redis cache, author from \
MongoDB), serialised once, and each frame is that payload spliced with the subscriber's \
operation id; `viewerHasLiked` is filled in per subscriber from one query for the whole audience, \
and blocks and mutes are applied per subscriber from the author's side (one Redis read, one query).
- **Sparse** is the latency of one event while all {n} connections are held: Redis, the hub, \
the shared execution (one subscriber), one frame.
- **Burst** is {n} events at once, a whole fan-out batch landing on one process (one `PUBLISH` \
per follower's channel, as the fan-out does). The process reads them from Redis in many chunks, \
executes the event once and reuses the result for the rest of the burst; what remains per \
delivery is handling the Redis message (the hub drains what the parser has buffered, without a \
per-message timeout), routing it, and writing one frame straight to the transport (the ASGI send \
only for a peer that is not reading). The server, Redis and the load generator share the two \
cores, so the figure is a floor.
- **Memory per subscriber** is the resident-set growth over the subscribers: uvicorn's sans-I/O \
WebSocket protocol (the one `starling serve` runs, with its receive queue and writable flag \
slimmed and the handshake's request and response let go), the ASGI task and Strawberry's \
connection handler, the connection's context and session watch, and the hub's routing record. \
The client does not negotiate permessage-deflate; a browser does, and its zlib state costs more \
than all of these.
- **The client** is a raw-socket WebSocket client (one `asyncio.Protocol` per connection, frames \
parsed by hand, the tweet ID found in the bytes) so that it costs little of the shared cores.
"""


def redis_for_bench() -> tuple[str, PrivateRedisServer | None]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=0.5):
            return url, None
    except OSError:
        private = PrivateRedisServer()
        return private.start(), private


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10000, help="WebSocket subscribers held")
    parser.add_argument("--bursts", type=int, default=3, help="rounds of one event to every subscriber")
    parser.add_argument("--sparse", type=int, default=200, help="single events to random subscribers")
    parser.add_argument("--quick", action="store_true", help="300 subscribers, short phases (a smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.bursts, args.sparse = 300, 2, 30
    redis_url, private = redis_for_bench()
    try:
        result = asyncio.run(run(args, redis_url))
    finally:
        if private is not None:
            private.stop()
    print(json.dumps(result, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "subscribers.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "subscribers.md").write_text(markdown(result))


if __name__ == "__main__":
    main()
