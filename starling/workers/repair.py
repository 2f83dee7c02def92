"""Periodic repairs: the outboxes of undelivered tweets and of deleted tweets' retweets,
lost token revocations, and users' counters."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from starling.resolvers.tokens import resync_revocations
from starling.store import user_cache
from starling.store.documents import Document, TweetDoc, utcnow
from starling.store.ids import lowest_id_at
from starling.store.jobs import FANOUT_TWEET, RETRACT_RETWEETS, JobContext
from starling.store.services import Services
from starling.store.user_counts import COUNTED_FIELDS, repair_user_counts

log = logging.getLogger(__name__)

REPAIR_BATCH = 500


async def repair_outbox(ctx: JobContext) -> int:
    """Re-enqueue fan-out for tweets still marked ``fanout_pending`` well after posting:
    their job was never enqueued (Redis down, process killed), was lost, or failed or died
    half-way (the marker is cleared only when the last batch is written). Returns how many
    jobs it enqueued (a job still pending under the same ID is not enqueued twice). The new
    job starts over from the first follower; fan-out is idempotent, so followers who had the
    tweet already get nothing twice. Redis down: the cron itself waits for Redis."""
    services: Services = ctx["services"]
    cutoff_ms = int(time.time() * 1000) - services.settings.outbox_repair_after_seconds * 1000

    stale = {"fanout_pending": True, "_id": {"$lt": lowest_id_at(cutoff_ms)}}
    return await _reenqueue(
        services, stale, lambda doc: FANOUT_TWEET.enqueue(services.queue, doc["_id"]), "undelivered tweets"
    )


async def repair_retweet_cascades(ctx: JobContext) -> int:
    """Re-enqueue the retraction of the retweets of originals still marked
    ``retweets_pending`` well after their deletion (the job was never enqueued, was lost or
    died half-way), at the round the cascade last recorded (``retweets_round``): the job ID
    of the job pending or under way, so a long cascade is not started a second time beside
    itself. Retracting is idempotent: retweets already taken back are not counted twice."""
    services: Services = ctx["services"]
    cutoff = utcnow() - timedelta(seconds=services.settings.outbox_repair_after_seconds)
    stale = {"retweets_pending": True, "deleted_at": {"$lt": cutoff}}
    return await _reenqueue(
        services,
        stale,
        lambda doc: RETRACT_RETWEETS.enqueue(services.queue, doc["_id"], doc.get("retweets_round", 0)),
        "deleted tweets' retweet retractions",
        projection={"retweets_round": 1},
    )


async def _reenqueue(
    services: Services,
    stale: Document,
    enqueue_job: Callable[[TweetDoc], Awaitable[bool]],
    what: str,
    projection: Document | None = None,
) -> int:
    """Enqueue ``enqueue_job`` for the oldest ``REPAIR_BATCH`` tweets matching ``stale`` (read
    with ``_id`` and ``projection``); how many were enqueued (not pending already)."""
    fields = {"_id": 1, **(projection or {})}
    docs = await services.db.tweets.find(stale, fields).sort("_id", 1).limit(REPAIR_BATCH).to_list()
    enqueued = 0
    for doc in docs:
        if await enqueue_job(doc):
            enqueued += 1
    if enqueued:
        log.warning("repair re-enqueued %d %s", enqueued, what)
    return enqueued


async def repair_revocations(ctx: JobContext) -> int:
    return await resync_revocations(ctx["services"])


async def repair_user_counters(ctx: JobContext) -> int:
    """Recount the next ``user_recount_batch`` users (by _id) and set drifted counters right;
    returns how many were repaired.

    A rolling scan rather than a list of "users to check": a skipped counter write leaves
    no trace to find it by (a marker would be one more write a crash can skip), and the
    scan also repairs drift from any older cause. Its cost is bounded per run (one page of
    users, three aggregations), so it scales with the cron's rate, not with the traffic;
    a full pass takes users / batch runs. The cursor lives on the queue Redis; lost, the
    pass starts over. Redis down: the cron fails and runs again at its next time."""
    services: Services = ctx["services"]
    batch = services.settings.user_recount_batch
    cursor_key = services.keys.user_recount_cursor()
    after = int(await services.queue_redis.get(cursor_key) or 0)
    users = (
        await services.db.users.find({"_id": {"$gt": after}}, COUNTED_FIELDS)
        .sort("_id", 1)
        .limit(batch)
        .to_list()
    )
    settled = utcnow() - timedelta(seconds=services.settings.user_recount_settle_seconds)
    repaired = await repair_user_counts(services.db, users, settled)
    await user_cache.forget(services, *repaired)  # readers see the counts just set right
    if len(users) < batch:
        await services.queue_redis.delete(cursor_key)  # the pass is done: start over
    else:
        await services.queue_redis.set(cursor_key, users[-1]["_id"])
    if repaired:
        log.warning("repair set the counters of %d users right", len(repaired))
    return len(repaired)
