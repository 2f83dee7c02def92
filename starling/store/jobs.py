"""The background jobs: each one's name, arguments and job ID rule, in one place.

The API enqueues jobs without importing the worker; ``workers.settings`` registers each
job function under its ``Job`` with ``Job.function``, whose type ties the function's
parameters to the job's (a job function takes arq's context, then exactly the
parameters of its ``Job``), so a caller and the function it reaches cannot drift apart:
mypy rejects a mismatch and so does registration at start-up.

Job IDs make enqueueing idempotent: arq refuses a job whose ID is queued or running
(results are not kept, so a finished job's ID is free again for a repair). Each rule
names the job and every argument that makes its work different, so a continuation of a
long job (the next batch of followers) never collides with the job that enqueued it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec

from arq import ArqRedis
from arq.typing import WorkerCoroutine
from arq.worker import Function, func

from starling.store import job_context
from starling.store.metrics import WORKER_JOB_DURATION, WORKER_JOBS

log = logging.getLogger(__name__)

P = ParamSpec("P")

JobContext = dict[str, Any]
"""What arq hands every job function first (``ctx["services"]`` is the ``Services``)."""


@dataclass(frozen=True, slots=True)
class Job(Generic[P]):
    """A job: its ``name`` in the queue and ``job_id``, the ID rule, which has exactly the
    job's parameters (None: every enqueue is a new job)."""

    name: str
    job_id: Callable[P, str | None]

    def __post_init__(self) -> None:
        if any(name.startswith("_") for name in inspect.signature(self.job_id).parameters):
            raise TypeError(f"job {self.name}: a parameter starting with '_' is one of arq's options")

    async def enqueue(self, queue: ArqRedis, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Enqueue the job; False when one with the same ID is still queued or running."""
        # arq's own options (``_job_id``...) share the keyword namespace with the job's
        # arguments, which never start with "_" (``__post_init__``), so none is taken for one;
        # CARRIER_ARG is not a parameter of any job (``Job.function`` wraps it away).
        arguments: dict[str, Any] = {**kwargs, job_context.CARRIER_ARG: job_context.carrier()}
        job = await queue.enqueue_job(self.name, *args, _job_id=self.job_id(*args, **kwargs), **arguments)
        return job is not None

    def function(
        self, coroutine: Callable[Concatenate[JobContext, P], Coroutine[Any, Any, object]]
    ) -> Function:
        """The arq function running this job. Results are not kept: a repair must be able
        to enqueue the same job ID again once the job is done."""
        expected = list(inspect.signature(self.job_id).parameters.values())
        actual = list(inspect.signature(coroutine).parameters.values())[1:]
        if [(p.name, p.kind, p.default) for p in actual] != [(p.name, p.kind, p.default) for p in expected]:
            raise TypeError(f"job {self.name}: {coroutine.__qualname__} does not take the job's parameters")
        return func(instrumented(self.name, coroutine), name=self.name, keep_result=0)


def instrumented(name: str, coroutine: Callable[..., Awaitable[object]]) -> WorkerCoroutine:
    """The job function as arq runs it: in the context its enqueuer had (request ID, trace;
    ``store.job_context``), counted and timed (``starling_worker_jobs_total``,
    ``starling_worker_job_duration_seconds``). Cron jobs are wrapped the same way.

    Measured here rather than in arq's ``on_job_start``/``after_job_end`` hooks, which are
    told neither the job's name nor how it ended."""

    @functools.wraps(coroutine)
    async def run(ctx: JobContext, *args: Any, **kwargs: Any) -> object:
        carrier = kwargs.pop(job_context.CARRIER_ARG, None)
        started = time.perf_counter()
        outcome = "error"
        with job_context.restored(carrier, name):
            try:
                result = await coroutine(ctx, *args, **kwargs)
                outcome = "ok"
                return result
            except asyncio.CancelledError:
                outcome = "cancelled"  # shutdown: arq re-queues it
                raise
            finally:
                elapsed = time.perf_counter() - started
                WORKER_JOBS.labels(name, outcome).inc()
                WORKER_JOB_DURATION.labels(name).observe(elapsed)
                log.debug("job %s %s in %.1f ms", name, outcome, elapsed * 1000)

    return run


# Fan-out jobs walk an author's followers in (follower shard, follow edge) order
# (``store.follows``); a continuation starts after the pair its predecessor stopped at.


def _fanout_id(tweet_id: int, after_shard: int = 0, after_edge: int = 0) -> str:
    return f"fanout_tweet:{tweet_id}:{after_shard}:{after_edge}"


def _retract_id(tweet_id: int, after_shard: int = 0, after_edge: int = 0) -> str:
    return f"retract_tweet:{tweet_id}:{after_shard}:{after_edge}"


def _backfill_id(author_id: int, after_shard: int = 0, after_edge: int = 0) -> str:
    return f"backfill_author:{author_id}:{after_shard}:{after_edge}"


def _retract_retweets_id(original_id: int, round: int = 0) -> str:
    return f"retract_retweets:{original_id}:{round}"


def _delete_media_id(tweet_id: int) -> str:
    return f"delete_tweet_media:{tweet_id}"


def _notify_id(
    kind: str,
    actor_id: int,
    *,
    tweet_id: int | None = None,
    comment_id: int | None = None,
    user_id: int | None = None,
) -> str:
    # Identical requests still queued collapse into one (a like/unlike burst).
    return f"notify:{kind}:{actor_id}:{comment_id or tweet_id or user_id}"


def _flush_id() -> None:
    return None


FANOUT_TWEET = Job("fanout_tweet", _fanout_id)
"""Deliver a tweet to its author's followers, from the one after (``after_shard``, ``after_edge``)."""

RETRACT_TWEET = Job("retract_tweet", _retract_id)
"""Take a deleted tweet out of its author's followers' timelines."""

BACKFILL_AUTHOR = Job("backfill_author", _backfill_id)
"""Copy a former celebrity's recent tweets into their followers' timelines."""

RETRACT_RETWEETS = Job("retract_retweets", _retract_retweets_id)
"""Take back the retweets of a deleted original; ``round`` counts the jobs before this one
(each takes a batch; those it took back drop out of the next one's query)."""

NOTIFY = Job("notify", _notify_id)
"""Create the notifications one stored action causes."""

FLUSH_COUNTERS = Job("flush_counters", _flush_id)
"""Write pending like/comment/retweet count deltas to MongoDB (also a cron job)."""

DELETE_TWEET_MEDIA = Job("delete_tweet_media", _delete_media_id)
"""Delete the media objects and records of a deleted tweet (``resolvers.media``)."""
