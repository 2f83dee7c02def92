"""The server under test, run by the harness as its own process:

    python -m bench.server --run-dir DIR --port N [--quick] [--spec JSON] [--redis-url URL]

It builds the real app (``starling.cli.build_app``) on the embedded MongoDB engine and a
private redis-server (or ``--redis-url``, whose database is flushed), with the arq worker
in-process as in ``starling dev`` (the embedded engine lives in one process), loads the
generated network (``bench.data``), mounts the benchmark-only routes (the floor, a
profiler switch) and serves with uvicorn on uvloop and httptools, one process.

When the data is loaded it writes, into ``DIR``, the files the load generator reads
(``tokens.txt``, ``user_ids.txt``, ``tweet_ids.txt``, request bodies) and, last,
``network.json``, whose appearance tells the harness the server is ready.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from redis import Redis as SyncRedis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench import ablations, data, floor
from starling import cli
from starling.config import Settings
from starling.store.redis import PrivateRedisServer
from starling.store.services import Services

log = logging.getLogger("bench.server")

TWEET_SAMPLE = 5000
BENCH_RECOUNT_BATCH = 50  # a full pass over 2,000 users in 20 minutes, about one per run
VISIBILITY_PAIRS = 200


def bench_settings(redis_url: str, spec: data.Spec) -> Settings:
    """Production defaults except: cheap argon2 (sign-up of thousands of users is loading, not
    what is measured), the network's celebrity threshold, quiet logs, the worker in-process,
    and a small counter-repair batch (``BENCH_RECOUNT_BATCH``): the embedded engine runs the
    repair's aggregations, a MongoDB server's work, in the server under test, where the
    default batch of 1,000 users twice a minute would be billed to the requests measured."""
    return Settings(
        mongodb_url=None,
        redis_url=redis_url,
        redis_key_prefix="bench:",
        queue_name="bench:queue",
        token_secret=secrets.token_urlsafe(32),
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        celebrity_followers=spec.celebrity_followers,
        run_worker_in_process=True,
        log_level="WARNING",
        user_recount_batch=BENCH_RECOUNT_BATCH,
    )


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_client_files(run_dir: Path, network: data.Network, redis_url: str) -> None:
    """What wrk's Lua script and the harness need: tokens and IDs (line i = user i), and
    the server's Redis (which the flush scenario empties)."""
    _write(run_dir / "tokens.txt", "\n".join(network.tokens) + "\n")
    _write(run_dir / "user_ids.txt", "\n".join(map(str, network.user_ids)) + "\n")
    sample = network.tweet_ids[-TWEET_SAMPLE:]
    _write(run_dir / "tweet_ids.txt", "\n".join(map(str, sample)) + "\n")
    pairs = network.visibility_pairs(VISIBILITY_PAIRS, seed=7)
    summary = {**network.summary(), "pid": os.getpid(), "redis_url": redis_url, "visibility_pairs": pairs}
    _write(run_dir / "network.json", json.dumps(summary, indent=2))


class Profiling:
    """``POST /bench/profile/start`` and ``/bench/profile/stop?to=FILE``: a pyinstrument
    profile of the server's event loop thread between the two (the harness profiles one
    wrk run with it)."""

    def __init__(self) -> None:
        self.profiler: Any = None

    async def start(self, request: Request) -> Response:
        from pyinstrument import Profiler

        self.profiler = Profiler(interval=0.0005, async_mode="disabled")
        self.profiler.start()
        return JSONResponse({"profiling": True})

    async def stop(self, request: Request) -> Response:
        if self.profiler is None:
            return JSONResponse({"profiling": False}, status_code=409)
        self.profiler.stop()
        target = Path(request.query_params["to"])
        text = self.profiler.output_text(unicode=True, color=False, show_all=False)
        await asyncio.to_thread(target.write_text, text)
        await asyncio.to_thread(target.with_suffix(".html").write_text, self.profiler.output_html())
        self.profiler = None
        return JSONResponse({"profiling": False, "written": str(target)})


async def backlog(request: Request) -> Response:
    """``GET /bench/backlog``: jobs due on the worker's queue but not started (fan-out lag)."""
    services: Services = request.app.state.services
    due = await services.queue.zcount(services.settings.queue_name, "-inf", int(time.time() * 1000))
    return JSONResponse({"due_jobs": due})


def build_app(settings: Settings, spec: data.Spec, run_dir: Path) -> Starlette:
    async def load_network(services: Services) -> None:
        log.warning("loading the benchmark network: %s", spec)
        network = await data.load(services, spec, log=lambda line: log.warning(line))
        # The embedded MongoDB keeps the whole network in this process's heap, where a
        # production API process has none of it: keep the collector from walking it in
        # the middle of requests (a full collection of it takes tens of milliseconds).
        gc.collect()
        gc.freeze()
        write_client_files(run_dir, network, settings.redis_url)
        log.warning("ready: %s", json.dumps(network.summary()))

    app = cli.build_app(settings, on_ready=[load_network])
    profiling = Profiling()
    app.add_route(floor.PATH, floor.floor_feed, methods=["GET"])
    for variant, view in ablations.variants().items():
        app.add_route(ablations.PATH.format(variant=variant), view, methods=["POST"])
    app.add_route("/bench/backlog", backlog, methods=["GET"])
    app.add_route("/bench/profile/start", profiling.start, methods=["POST"])
    app.add_route("/bench/profile/stop", profiling.stop, methods=["POST"])
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--quick", action="store_true", help="the small network (bench --quick)")
    parser.add_argument("--spec", default="{}", help="JSON object overriding fields of bench.data.Spec")
    parser.add_argument("--redis-url", help="use this Redis database (flushed) instead of a private server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("arq").setLevel(logging.WARNING)

    spec = dataclasses.replace(data.Spec.quick() if args.quick else data.Spec(), **json.loads(args.spec))
    private: PrivateRedisServer | None = None
    if args.redis_url:
        redis_url = args.redis_url
        with SyncRedis.from_url(redis_url) as client:
            client.flushdb()
    else:
        private = PrivateRedisServer()
        redis_url = private.start()
    app = build_app(bench_settings(redis_url, spec), spec, args.run_dir)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    # uvicorn re-raises SIGTERM after its graceful shutdown; exit normally so that the
    # private redis-server is stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        uvicorn.Server(config).run()
    finally:
        if private is not None:
            private.stop()


if __name__ == "__main__":
    main()
