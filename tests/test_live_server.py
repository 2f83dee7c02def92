"""The real thing: a uvicorn server on a socket, and an arq Worker consuming real Redis.

The API runs without an in-process worker; a separate ``Worker`` (the one ``starling
worker`` runs) delivers the fan-out. Both live in this process because the embedded MongoDB
engine does; with MONGODB_URL set, tests/test_processes.py runs them as separate processes.
"""

from __future__ import annotations

import contextlib

import pytest

from starling.config import Settings
from starling.store.ids import to_member
from starling.store.mongo import connect_mongo
from starling.store.services import Services
from starling.workers.settings import build_worker
from tests.api import eventually
from tests.conftest import make_settings
from tests.realtime import serve_live

pytestmark = pytest.mark.both_redis_topologies


async def test_tweet_posted_over_http_reaches_follower_through_the_worker(redis_url: str) -> None:
    settings: Settings = make_settings(redis_url, run_worker_in_process=False)
    mongo = connect_mongo(settings)
    async with contextlib.AsyncExitStack() as stack:
        api = (await stack.enter_async_context(serve_live(settings, mongo))).api
        author, follower = await api.sign_up("author"), await api.sign_up("follower")
        await api.follow(follower, author)
        await api.feed_page(follower)  # the follower has an active (built) timeline
        tweet = await api.post(author, "over a real socket")

        services = await Services.open(settings, mongo=mongo)
        stack.push_async_callback(services.close, close_mongo=False)
        worker = build_worker(services, settings, burst=True, poll_delay=0.01)
        await worker.main()  # burst: runs what is queued, then returns
        assert worker.jobs_complete >= 1 and worker.jobs_failed == 0

        timeline = services.keys.home_timeline(int(follower.id))
        assert await services.redis.zscore(timeline, to_member(int(tweet["id"]))) is not None

        async def visible() -> bool:
            return [e["node"]["id"] for e in (await api.feed_page(follower))["edges"]] == [tweet["id"]]

        await eventually(visible)
    await mongo.close()
