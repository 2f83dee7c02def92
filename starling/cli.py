"""The ``starling`` command: ``dev``, ``serve``, ``worker``, ``export-schema``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

import uvicorn
from redis import Redis as SyncRedis

from starling.config import Settings, get_settings
from starling.origins import DEV_ORIGINS
from starling.store.redis import PrivateRedisServer

log = logging.getLogger("starling")

DEV_REDIS_DB = 15
# What `starling dev` turns on unless the environment says otherwise (`serve` keeps the
# Settings defaults: off, no origin).
DEV_DEFAULTS: dict[str, object] = {
    "graphiql_enabled": True,
    "introspection_enabled": True,
    "cors_allowed_origins": DEV_ORIGINS,
}


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().level > logging.DEBUG:
        # arq logs every job start and end at INFO: too chatty unless debugging.
        logging.getLogger("arq").setLevel(logging.WARNING)


def _require(settings: Settings, *names: str) -> None:
    missing = [name.upper() for name in names if getattr(settings, name) in (None, "")]
    if missing:
        sys.exit(
            f"starling: set {', '.join(missing)} (see README). "
            "For a self-contained server use `starling dev`."
        )


def _dedicated_dev_redis(url: str) -> str:
    """The embedded MongoDB starts empty, so Redis state from another run would be stale:
    use a dedicated database number and flush it."""
    dev_url = urlsplit(url)._replace(path=f"/{DEV_REDIS_DB}").geturl()
    with SyncRedis.from_url(dev_url) as client:
        client.flushdb()
    return dev_url


def with_dev_defaults(settings: Settings) -> Settings:
    """``settings`` with ``DEV_DEFAULTS`` for whatever the environment did not set."""
    unset = {name: value for name, value in DEV_DEFAULTS.items() if name not in settings.model_fields_set}
    return settings.model_copy(update=unset)


def cmd_dev(args: argparse.Namespace) -> None:
    from starling.app import create_app

    settings = get_settings()
    _configure_logging(settings)
    private_redis: PrivateRedisServer | None = None
    if settings.redis_url is None:
        private_redis = PrivateRedisServer()
        redis_url = private_redis.start()
        redis_note = f"private redis-server at {redis_url}"
    elif settings.embedded_mongo:
        redis_url = _dedicated_dev_redis(settings.redis_url)
        redis_note = f"{redis_url} (database {DEV_REDIS_DB}, flushed: embedded MongoDB is empty)"
    else:
        redis_url = settings.redis_url
        redis_note = redis_url
    token_secret = settings.token_secret
    if not token_secret:
        token_secret = secrets.token_urlsafe(32)
        log.warning("TOKEN_SECRET is unset: generated one for this run; tokens die with it.")
    settings = with_dev_defaults(settings).model_copy(
        update={"redis_url": redis_url, "token_secret": token_secret, "run_worker_in_process": True}
    )
    log.warning(
        "starling dev: MongoDB %s; Redis %s; arq worker in-process",
        "embedded (mongomock, in memory)" if settings.embedded_mongo else settings.mongodb_url,
        redis_note,
    )
    on_ready = []
    if args.seed:
        from starling.demo import seed_demo

        on_ready.append(seed_demo)
    app = create_app(settings, on_ready=on_ready)
    log.warning("GraphiQL: http://%s:%d/graphql", args.host, args.port)
    # uvicorn re-raises SIGTERM after its graceful shutdown; exit normally instead so the
    # private redis-server below is stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=settings.log_level.lower(),
            ws_max_size=settings.request_body_max_bytes,
        )
    finally:
        if private_redis is not None:
            private_redis.stop()


def cmd_serve(args: argparse.Namespace) -> None:
    settings = get_settings()
    _configure_logging(settings)
    _require(settings, "mongodb_url", "redis_url", "token_secret")
    uvicorn.run(
        "starling.app:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        ws_max_size=settings.request_body_max_bytes,
    )


def cmd_worker(args: argparse.Namespace) -> None:
    settings = get_settings()
    _configure_logging(settings)
    _require(settings, "mongodb_url", "redis_url", "token_secret")
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from starling.store.services import Services
    from starling.workers.settings import build_worker

    assert settings.redis_url is not None
    services = await Services.open(settings, settings.redis_url)
    worker = build_worker(services, settings, handle_signals=True)
    log.warning("starling worker consuming %s", settings.queue_name)
    try:
        await worker.async_run()
    finally:
        await worker.close()
        await services.close()


def cmd_export_schema(args: argparse.Namespace) -> None:
    from starling.schema import export_sdl

    sys.stdout.write(export_sdl())


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="starling", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="everything in one process on embedded defaults")
    dev.add_argument("--seed", action="store_true", help="load a small demo network")
    dev.add_argument("--host", default=defaults.host)
    dev.add_argument("--port", type=int, default=defaults.port)
    dev.set_defaults(handler=cmd_dev)

    serve = commands.add_parser("serve", help="the API (needs MONGODB_URL and REDIS_URL)")
    serve.add_argument("--host", default=defaults.host)
    serve.add_argument("--port", type=int, default=defaults.port)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="the arq worker (fan-out, flushes, repairs)")
    worker.set_defaults(handler=cmd_worker)

    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.set_defaults(handler=cmd_export_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
