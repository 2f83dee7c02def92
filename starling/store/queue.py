"""Names of the background jobs and how they are enqueued.

The API enqueues by name so it does not import the worker; ``workers`` registers a
function under each name. Job IDs make enqueueing idempotent: arq refuses a second job
with the ID of one that is still queued or running.
"""

from __future__ import annotations

from typing import Any

from arq import ArqRedis

FANOUT_TWEET = "fanout_tweet"
RETRACT_TWEET = "retract_tweet"
BACKFILL_AUTHOR = "backfill_author"
NOTIFY = "notify"
FLUSH_COUNTERS = "flush_counters"
RETRACT_RETWEETS = "retract_retweets"


async def enqueue(queue: ArqRedis, name: str, *args: Any, job_id: str, **kwargs: Any) -> bool:
    """Enqueue ``name(*args, **kwargs)``; False when a job with ``job_id`` is already pending."""
    job = await queue.enqueue_job(name, *args, _job_id=job_id, **kwargs)
    return job is not None
