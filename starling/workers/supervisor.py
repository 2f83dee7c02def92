"""Keeping a worker running through datastore outages.

arq's ``Worker`` stops for good at the first Redis error its polling loop meets (a job's
bookkeeping, a heartbeat); MongoDB errors inside a job only fail that job. The supervisor
runs a fresh worker after such a stop, with a growing delay while the outage lasts, so the
worker resumes on its own once Redis answers: queued jobs wait in Redis meanwhile, and
tweets posted while the queue could not be reached carry their outbox marker, which the
repair cron re-enqueues. ``/readyz`` reports the outage on the API side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from arq import Worker
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 0.5
RESTART_DELAY_MAX_SECONDS = 10.0
# A worker that ran this long was healthy: the next failure starts the delays over.
HEALTHY_RUN_SECONDS = 30.0

OUTAGES = (RedisError, OSError, PyMongoError)


class Supervisor:
    """Runs ``build()``'s worker until it stops cleanly (a burst ends, a signal arrives) or
    the supervisor is cancelled; restarts it after an outage. ``worker`` is the one running."""

    def __init__(self, build: Callable[[], Worker]) -> None:
        self._build = build
        self.worker: Worker = build()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_DELAY_SECONDS
        while True:
            started = loop.time()
            try:
                await self.worker.async_run()
                return
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are being stopped
                return  # arq cancelled its own loop: a signal asked the worker to stop
            except OUTAGES as exc:
                if loop.time() - started > HEALTHY_RUN_SECONDS:
                    delay = RESTART_DELAY_SECONDS
                log.warning("worker stopped (%s: %s); restarting in %.1f s", type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_DELAY_MAX_SECONDS)
            self.worker = self._build()
