"""Running the arq worker inside the API process (``starling dev``, tests).

arq's own ``Worker.close`` cancels in-flight jobs and closes the Redis pool it was given;
in-process, that pool is the API's too. So the worker is stopped here: stop polling, let
in-flight jobs finish (bounded), and leave the shared connections to their owner. While it
runs, the same ``Supervisor`` as ``starling worker``'s restarts it after an outage.
"""

from __future__ import annotations

import asyncio
import logging

from arq import Worker

from starling.config import Settings
from starling.store.services import Services
from starling.workers.settings import build_worker
from starling.workers.supervisor import Supervisor

log = logging.getLogger(__name__)

DRAIN_SECONDS = 10.0


class InProcessWorker:
    def __init__(self, services: Services, settings: Settings) -> None:
        self.supervisor = Supervisor(lambda: build_worker(services, settings))
        self._task: asyncio.Task[None] | None = None

    @property
    def worker(self) -> Worker:
        return self.supervisor.worker

    def start(self) -> None:
        self._task = asyncio.create_task(self.supervisor.run(), name="arq-worker")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        except Exception:  # a worker that already died (e.g. Redis gone) must not block shutdown
            log.exception("in-process worker had stopped with an error")
        jobs = [task for task in self.worker.tasks.values() if not task.done()]
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=DRAIN_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._task = None
