"""The app with settings of a test's own, its HTTP client, and what timeline tests inspect.

``started(redis_url, **overrides)`` runs the real app (lifespan, and the in-process arq
worker unless ``run_worker_in_process=False``); ``Harness.run_worker`` then drains the queue
with a real arq ``Worker`` in burst mode, the one ``starling worker`` runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from arq import Worker

from starling.cli import build_app
from starling.config import Settings
from starling.store.ids import from_member
from starling.store.keys import TIMELINE_SENTINEL
from starling.store.services import Services
from starling.workers.settings import build_worker
from tests.api import Account, Api
from tests.conftest import make_settings, running


@dataclass
class Harness:
    api: Api
    services: Services

    @property
    def settings(self) -> Settings:
        return self.services.settings

    async def run_worker(self, *, crons: bool = False, **options: Any) -> Worker:
        """Run what is queued (and, with ``crons``, the crons that run at start-up: the outbox
        repair) to the end. A job that fails makes this raise ``arq.worker.FailedJobs``."""
        overrides: dict[str, Any] = {"burst": True, "poll_delay": 0.01, **options}
        if not crons:
            overrides["cron_jobs"] = []
        worker = build_worker(self.services, self.settings, **overrides)
        await worker.run_check()
        return worker

    async def timeline(self, user: Account) -> set[str] | None:
        """The user's Redis home timeline (tweet IDs), or None when it is not built."""
        key = self.services.keys.home_timeline(int(user.id))
        members = set(await self.services.redis.zrange(key, 0, -1))
        if TIMELINE_SENTINEL not in members:
            return None
        return {str(from_member(member)) for member in members - {TIMELINE_SENTINEL}}

    async def pending_fanouts(self) -> int:
        """Tweets whose outbox marker the fan-out has not cleared yet."""
        return await self.services.db.tweets.count_documents({"fanout_pending": True})

    async def fanned_out(self) -> bool:
        return await self.pending_fanouts() == 0


@contextlib.asynccontextmanager
async def started(redis_url: str, **overrides: Any) -> AsyncIterator[Harness]:
    app = build_app(make_settings(redis_url, **overrides))
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://starling.test") as http:
            yield Harness(Api(http), app.state.services)
