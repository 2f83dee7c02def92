"""The counter flush: pending like, comment and retweet deltas into MongoDB, in batches.

Runs as a cron job every ``counter_flush_seconds`` and can be enqueued by name
(``FLUSH_COUNTERS``). What a flush guarantees is in ``store.counters`` ("Flush guarantee"):
safe to cut short and run again, each batch applied to each tweet once. While the worker
is down, deltas accumulate in Redis (readers see right counts all along) and the next flush
applies them in one write per tweet.
"""

from __future__ import annotations

import logging

from arq import cron
from arq.cron import CronJob

from starling.config import Settings
from starling.store.counters import Counters
from starling.store.jobs import FLUSH_COUNTERS, JobContext, instrumented
from starling.store.services import Services

log = logging.getLogger(__name__)


async def flush_counters(ctx: JobContext) -> int:
    """One flush; returns how many tweets' stored counts it updated (0 when another flush
    was running)."""
    services: Services = ctx["services"]
    updated = await Counters(services).flush()
    if updated is None:
        log.debug("counter flush skipped: another one is running")
    return updated or 0


def flush_cron(settings: Settings) -> CronJob:
    """The flush every ``counter_flush_seconds`` (seconds of the minute it divides)."""
    return cron(
        instrumented(FLUSH_COUNTERS.name, flush_counters),
        second=set(range(0, 60, settings.counter_flush_seconds)),
        run_at_startup=True,
        unique=True,
    )
