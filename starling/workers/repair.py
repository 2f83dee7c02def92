"""Periodic repairs: the outbox of undelivered tweets, and lost token revocations."""

from __future__ import annotations

import logging
import time
from typing import Any

from starling.resolvers.tokens import restore_revocations
from starling.store.ids import lowest_id_at
from starling.store.queue import FANOUT_TWEET, enqueue
from starling.store.services import Services

log = logging.getLogger(__name__)

REPAIR_BATCH = 500


async def repair_outbox(ctx: dict[str, Any]) -> int:
    """Re-enqueue fan-out for tweets still marked ``fanout_pending`` well after posting:
    their job was never enqueued (Redis down, process killed), was lost, or failed or died
    half-way (the marker is cleared only when the last batch is written). Returns how many
    jobs it enqueued (a job still pending under the same ID is not enqueued twice). The new
    job starts over from the first follower; fan-out is idempotent, so followers who had the
    tweet already get nothing twice. Redis down: the cron itself waits for Redis."""
    services: Services = ctx["services"]
    cutoff_ms = int(time.time() * 1000) - services.settings.outbox_repair_after_seconds * 1000
    stale = (
        await services.db.tweets.find(
            {"fanout_pending": True, "_id": {"$lt": lowest_id_at(cutoff_ms)}}, {"_id": 1}
        )
        .sort("_id", 1)
        .limit(REPAIR_BATCH)
        .to_list()
    )
    enqueued = 0
    for doc in stale:
        if await enqueue(services.queue, FANOUT_TWEET, doc["_id"], 0, job_id=f"fanout:{doc['_id']}"):
            enqueued += 1
    if enqueued:
        log.warning("outbox repair re-enqueued %d undelivered tweets", enqueued)
    return enqueued


async def repair_revocations(ctx: dict[str, Any]) -> int:
    return await restore_revocations(ctx["services"])
