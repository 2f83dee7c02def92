"""arq worker configuration, used by ``starling worker`` and by ``starling dev`` in-process."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from arq import Worker, cron
from arq.worker import func

from starling.config import Settings
from starling.store.queue import (
    BACKFILL_AUTHOR,
    FANOUT_TWEET,
    FLUSH_COUNTERS,
    NOTIFY,
    RETRACT_RETWEETS,
    RETRACT_TWEET,
)
from starling.store.services import Services
from starling.workers.counters import flush_counters, flush_cron
from starling.workers.fanout import backfill_author, fanout_tweet, retract_tweet
from starling.workers.notifications import notify
from starling.workers.repair import repair_outbox, repair_retweet_cascades, repair_revocations
from starling.workers.retweets import retract_retweets

# Fan-out results are not kept: a repair must be able to enqueue the same job ID again.
FUNCTIONS = [
    func(fanout_tweet, name=FANOUT_TWEET, keep_result=0),
    func(retract_tweet, name=RETRACT_TWEET, keep_result=0),
    func(backfill_author, name=BACKFILL_AUTHOR, keep_result=0),
    func(notify, name=NOTIFY, keep_result=0),
    func(flush_counters, name=FLUSH_COUNTERS, keep_result=0),
    func(retract_retweets, name=RETRACT_RETWEETS, keep_result=0),
]

CRON_JOBS = [
    cron(repair_outbox, second={0, 15, 30, 45}, run_at_startup=True, unique=True),
    cron(repair_revocations, second={5, 35}, run_at_startup=True, unique=True),
    cron(repair_retweet_cascades, second={10, 40}, run_at_startup=True, unique=True),
]

JOB_TIMEOUT_SECONDS = 120
MAX_CONCURRENT_JOBS = 50


def build_worker(services: Services, settings: Settings, **overrides: Any) -> Worker:
    """An arq ``Worker`` consuming ``settings.queue_name`` on the services' Redis."""
    options: dict[str, Any] = {
        "functions": FUNCTIONS,
        # Copies: a CronJob records its next run, and a worker that shared the module's
        # objects with an earlier one would skip the run_at_startup runs.
        "cron_jobs": [replace(job) for job in CRON_JOBS] + [flush_cron(settings)],
        "queue_name": settings.queue_name,
        "redis_pool": services.queue,
        "ctx": {"services": services},
        "job_timeout": JOB_TIMEOUT_SECONDS,
        "max_jobs": MAX_CONCURRENT_JOBS,
        "handle_signals": False,
        "poll_delay": 0.05,
    }
    options.update(overrides)
    return Worker(**options)
