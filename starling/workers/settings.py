"""arq worker configuration, used by ``starling worker`` and by ``starling dev`` in-process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from arq import Worker, cron
from arq.cron import CronJob

from starling.config import Settings
from starling.store.jobs import (
    BACKFILL_AUTHOR,
    DELETE_TWEET_MEDIA,
    FANOUT_TWEET,
    FLUSH_COUNTERS,
    NOTIFY,
    RETRACT_RETWEETS,
    RETRACT_TWEET,
    JobContext,
    instrumented,
)
from starling.store.services import Services
from starling.workers.counters import flush_counters, flush_cron
from starling.workers.fanout import backfill_author, fanout_tweet, retract_tweet
from starling.workers.media import delete_tweet_media, expire_media, repair_media_deletions
from starling.workers.notifications import notify
from starling.workers.repair import (
    repair_outbox,
    repair_retweet_cascades,
    repair_revocations,
    repair_user_counters,
)
from starling.workers.retweets import retract_retweets

FUNCTIONS = [
    FANOUT_TWEET.function(fanout_tweet),
    RETRACT_TWEET.function(retract_tweet),
    BACKFILL_AUTHOR.function(backfill_author),
    NOTIFY.function(notify),
    FLUSH_COUNTERS.function(flush_counters),
    RETRACT_RETWEETS.function(retract_retweets),
    DELETE_TWEET_MEDIA.function(delete_tweet_media),
]


def periodic(coroutine: Callable[[JobContext], Awaitable[object]], **schedule: Any) -> CronJob:
    """A repair or clean-up cron: instrumented under its function's name, run once when a
    worker starts (a repair must not wait a period after an outage) unless ``schedule``
    says otherwise, one at a time across workers."""
    options: dict[str, Any] = {"run_at_startup": True, "unique": True, **schedule}
    return cron(instrumented(coroutine.__name__, coroutine), **options)


CRON_JOBS = [
    periodic(repair_outbox, second={0, 15, 30, 45}),
    periodic(repair_revocations, second={5, 35}),
    periodic(repair_retweet_cascades, second={10, 40}),
    periodic(repair_user_counters, second={20, 50}),
    periodic(repair_media_deletions, second={25, 55}),
    periodic(expire_media, minute=set(range(0, 60, 5)), second=45, run_at_startup=False),
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
