"""The ``starling`` command: ``dev``, ``serve``, ``worker``, ``export-schema``.

The CLI is where a process is composed: the API app (``starling.app``) and, for ``dev``
and ``RUN_WORKER_IN_PROCESS``, the arq worker beside it (``build_app``), which the app
itself never imports.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
from collections.abc import Sequence

from starlette.applications import Starlette

from starling import server
from starling.app import StartupHook, create_app
from starling.config import ConfigError, Settings, get_settings
from starling.logs import LogFormat, configure_logging
from starling.origins import DEV_ORIGINS
from starling.store.embedded.client import EmbeddedMongoClient
from starling.store.embedded.snapshot import SnapshotError
from starling.store.mongo import Mongo
from starling.store.redis import PrivateRedisServer
from starling.workers.inprocess import InProcessWorker

log = logging.getLogger("starling")

# What `starling dev` turns on unless the environment says otherwise (`serve` keeps the
# Settings defaults: off, no origin).
DEV_DEFAULTS: dict[str, object] = {
    "graphiql_enabled": True,
    "introspection_enabled": True,
    "cors_allowed_origins": DEV_ORIGINS,
}


def _log_format(settings: Settings, default: LogFormat) -> LogFormat:
    return settings.log_format or default


def _configure_logging(settings: Settings, default: LogFormat) -> None:
    configure_logging(settings.log_level, _log_format(settings, default))


def _exit_on_sigterm() -> None:
    """uvicorn re-raises SIGTERM once its graceful shutdown is done; exit normally then, so
    ``finally`` blocks run (the dev snapshot, the private redis-server) and the exit code
    says the shutdown was clean."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


def build_app(
    settings: Settings, *, mongo: Mongo | None = None, on_ready: Sequence[StartupHook] = ()
) -> Starlette:
    """The API app, with the arq worker in the same process when ``RUN_WORKER_IN_PROCESS``."""
    worker = InProcessWorker if settings.run_worker_in_process else None
    return create_app(settings, mongo=mongo, on_ready=on_ready, worker=worker)


def app_from_environment() -> Starlette:
    """The factory ``starling serve`` hands to uvicorn (one call per worker process)."""
    return build_app(get_settings())


def _require_datastores(settings: Settings, command: str) -> None:
    """Check that ``command`` has real datastores and a token secret."""
    role = f"`starling {command}` (for a self-contained server use `starling dev`)"
    settings.require("mongodb_url", "redis_url", "token_secret", role=role)


def _fresh_dev_keys(settings: Settings) -> dict[str, object]:
    """Redis state left by another run would not match the embedded MongoDB: this run's keys
    and queue get a prefix of their own (a fresh one each start; everything is rebuilt from
    MongoDB), which works on a Redis Cluster too, where there is no database to SELECT."""
    prefix = f"{settings.redis_key_prefix}dev-{secrets.token_hex(4)}:"
    return {"redis_key_prefix": prefix, "queue_name": f"{prefix}queue"}


def with_dev_defaults(settings: Settings) -> Settings:
    """``settings`` with ``DEV_DEFAULTS`` for whatever the environment did not set."""
    unset = {name: value for name, value in DEV_DEFAULTS.items() if name not in settings.model_fields_set}
    return settings.updated(**unset)


def cmd_dev(args: argparse.Namespace) -> None:
    from starling.dev_data import DevData
    from starling.store.mongo import connect_mongo

    settings = get_settings()
    _configure_logging(settings, "text")
    data = DevData.open(
        settings.starling_data_dir, snapshot_seconds=settings.dev_snapshot_seconds, reset=args.reset
    )
    private_redis: PrivateRedisServer | None = None
    updates: dict[str, object] = {}
    if settings.redis_url is None:
        private_redis = PrivateRedisServer()
        redis_url = private_redis.start()
        redis_note = f"private redis-server at {redis_url}"
    elif settings.embedded_mongo:
        redis_url = settings.redis_url
        updates = _fresh_dev_keys(settings)
        redis_note = f"{redis_url} (keys under {updates['redis_key_prefix']}, rebuilt from MongoDB)"
    else:
        redis_url = settings.redis_url
        redis_note = redis_url
    updates |= {
        "redis_url": redis_url,
        "token_secret": settings.token_secret or data.token_secret(),
        "run_worker_in_process": True,
    }
    if "public_url" not in settings.model_fields_set:
        # Share links follow the port this server listens on.
        updates["public_url"] = f"http://{args.host}:{args.port}"
    settings = with_dev_defaults(settings).updated(**updates)
    on_ready: list[StartupHook] = []
    mongo = connect_mongo(settings) if settings.embedded_mongo else None
    engine = mongo.client if mongo is not None and isinstance(mongo.client, EmbeddedMongoClient) else None
    if engine is not None:
        try:
            data.restore(engine)
        except SnapshotError as exc:
            sys.exit(f"starling dev: {exc}; start with --reset to discard it")
        on_ready.append(data.keep_saving(engine))
    log.info(
        "starling dev: MongoDB %s; Redis %s; arq worker in-process",
        f"embedded (mongomock, saved in {data.directory})" if engine else settings.mongodb_url,
        redis_note,
    )
    if args.seed:
        from starling.demo import seed_demo

        on_ready.append(seed_demo)
    app = build_app(settings, mongo=mongo, on_ready=on_ready)
    log.info("GraphiQL: http://%s:%d/graphql", args.host, args.port)
    _exit_on_sigterm()
    try:
        server.run(app, settings, _log_format(settings, "text"), host=args.host, port=args.port)
    finally:
        if engine is not None:
            data.save(engine)
        if private_redis is not None:
            private_redis.stop()


def cmd_serve(args: argparse.Namespace) -> None:
    settings = get_settings()
    _configure_logging(settings, "json")
    if args.embedded:
        if args.workers != 1:
            raise ConfigError("`starling serve --embedded` keeps MongoDB in one process: use --workers 1")
        if not settings.embedded_mongo:
            raise ConfigError("`starling serve --embedded` and MONGODB_URL exclude each other")
        settings.require("redis_url", "token_secret", role="`starling serve --embedded`")
        log.warning("starling serve --embedded: MongoDB in memory, lost when the process exits")
    else:
        _require_datastores(settings, "serve")
    log.info(
        "starling serve on http://%s:%d with %d process(es); graceful shutdown within %d s",
        args.host,
        args.port,
        args.workers,
        settings.shutdown_timeout_seconds,
    )
    _exit_on_sigterm()
    server.run(
        "starling.cli:app_from_environment",
        settings,
        _log_format(settings, "json"),
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
    )


def cmd_worker(args: argparse.Namespace) -> None:
    settings = get_settings()
    _configure_logging(settings, "json")
    _require_datastores(settings, "worker")
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from starling.store.services import Services
    from starling.workers.settings import build_worker
    from starling.workers.supervisor import Supervisor

    services = await Services.open(settings)
    # On SIGTERM: stop taking jobs, let running ones finish for SHUTDOWN_TIMEOUT_SECONDS,
    # then cancel them, which arq re-queues (every job is idempotent).
    supervisor = Supervisor(
        lambda: build_worker(
            services, settings, handle_signals=True, job_completion_wait=settings.shutdown_timeout_seconds
        )
    )
    log.info("starling worker consuming %s", settings.queue_name)
    try:
        await supervisor.run()
    finally:
        await supervisor.worker.close()
        await services.close()


def cmd_export_schema(args: argparse.Namespace) -> None:
    from starling.schema import export_sdl

    sys.stdout.write(export_sdl())


def build_parser() -> argparse.ArgumentParser:
    defaults = get_settings()
    parser = argparse.ArgumentParser(prog="starling", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="everything in one process on embedded defaults")
    dev.add_argument("--seed", action="store_true", help="load a small demo network into an empty store")
    dev.add_argument(
        "--reset", action="store_true", help="forget the data kept in STARLING_DATA_DIR and start empty"
    )
    dev.add_argument("--host", default=defaults.host)
    dev.add_argument("--port", type=int, default=defaults.port)
    dev.set_defaults(handler=cmd_dev)

    serve = commands.add_parser("serve", help="the API (needs MONGODB_URL and REDIS_URL)")
    serve.add_argument("--host", default=defaults.host)
    serve.add_argument("--port", type=int, default=defaults.port)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--embedded",
        action="store_true",
        help="the API alone on the embedded in-memory MongoDB (one process, no worker: for trying "
        "and testing the server itself; data is lost on exit)",
    )
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="the arq worker (fan-out, flushes, repairs)")
    worker.set_defaults(handler=cmd_worker)

    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.set_defaults(handler=cmd_export_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    try:
        args = build_parser().parse_args(argv)
        args.handler(args)
    except ConfigError as exc:
        sys.exit(f"starling: {exc}")


if __name__ == "__main__":
    main()
