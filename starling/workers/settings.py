"""arq worker configuration, used by ``starling worker`` and by ``starling dev`` in-process."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from arq import Worker, cron

from starling.config import Settings
from starling.store.jobs import (
    BACKFILL_AUTHOR,
    DELETE_TWEET_MEDIA,
    FANOUT_TWEET,
    FLUSH_COUNTERS,
    NOTIFY,
    RETRACT_RETWEETS,
    RETRACT_TWEET,
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

CRON_JOBS = [
    cron(
        instrumented("repair_outbox", repair_outbox), second={0, 15, 30, 45}, run_at_startup=True, unique=True
    ),
    cron(
        instrumented("repair_revocations", repair_revocations),
        second={5, 35},
        run_at_startup=True,
        unique=True,
    ),
    cron(
        instrumented("repair_retweet_cascades", repair_retweet_cascades),
        second={10, 40},
        run_at_startup=True,
        unique=True,
    ),
    cron(
        instrumented("repair_user_counters", repair_user_counters),
        second={20, 50},
        run_at_startup=True,
        unique=True,
    ),
    cron(
        instrumented("repair_media_deletions", repair_media_deletions),
        second={25, 55},
        run_at_startup=True,
        unique=True,
    ),
    cron(instrumented("expire_media", expire_media), minute=set(range(0, 60, 5)), second=45, unique=True),
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
