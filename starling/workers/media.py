"""Media jobs: deleting a deleted tweet's media, expiring unattached uploads, and the repair
of media deletions whose job was lost (``resolvers.media`` has the rules)."""

from __future__ import annotations

import logging
from datetime import timedelta

from starling.resolvers import media
from starling.store.documents import utcnow
from starling.store.jobs import DELETE_TWEET_MEDIA, JobContext
from starling.store.services import Services

log = logging.getLogger(__name__)


async def delete_tweet_media(ctx: JobContext, tweet_id: int) -> int:
    return await media.delete_tweet_media(ctx["services"], tweet_id)


async def expire_media(ctx: JobContext) -> int:
    return await media.expire_media(ctx["services"])


async def repair_media_deletions(ctx: JobContext) -> int:
    """Re-enqueue the media deletion of tweets whose media are still marked well after the
    tweet's deletion (the job was never enqueued, was lost or failed)."""
    services: Services = ctx["services"]
    cutoff = utcnow() - timedelta(seconds=services.settings.outbox_repair_after_seconds)
    enqueued = 0
    for tweet_id in await media.stale_deletions(services, cutoff):
        enqueued += await DELETE_TWEET_MEDIA.enqueue(services.queue, tweet_id)
    if enqueued:
        log.warning("repair re-enqueued the media deletion of %d tweets", enqueued)
    return enqueued
