"""Gauges read when ``/metrics`` is scraped rather than kept up to date on every change:
the arq queue's depth (one ``ZCARD``) and this process's live subscriptions."""

from __future__ import annotations

import asyncio
import logging

from starling.store.metrics import ACTIVE_SUBSCRIPTIONS, QUEUE_DEPTH
from starling.store.pubsub.hub import EventHub
from starling.store.services import Services

log = logging.getLogger(__name__)

SAMPLE_TIMEOUT_SECONDS = 1.0


async def sample_gauges(services: Services, hub: EventHub) -> None:
    ACTIVE_SUBSCRIPTIONS.set(hub.subscriber_count)
    try:
        depth = await asyncio.wait_for(
            services.queue.zcard(services.settings.queue_name), SAMPLE_TIMEOUT_SECONDS
        )
    except Exception as exc:  # Redis down: the scrape still answers, with the last depth
        log.warning("queue depth not sampled: %s", type(exc).__name__)
        return
    QUEUE_DEPTH.set(depth)
