"""No tweet lost between MongoDB and the fan-out: the outbox marker and its repair cron."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from starling.store.jobs import FANOUT_TWEET
from tests.harness import started
from tests.test_fanout import audience, repaired_by_cron

pytestmark = pytest.mark.both_redis_topologies


async def test_a_tweet_whose_enqueue_failed_is_delivered_by_the_repair_job(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(redis_url, run_worker_in_process=False) as h:
        author = await h.api.sign_up("author")
        followers = await audience(h, author, 3)

        async def redis_down(*args: Any, **kwargs: Any) -> None:
            raise RedisConnectionError("Redis is briefly down")

        monkeypatch.setattr(h.services.queue, "enqueue_job", redis_down)
        tweet = (await h.api.post(author, "written while the queue is unreachable"))["id"]
        monkeypatch.undo()

        stored = await h.services.db.tweets.find_one({"_id": int(tweet)})
        assert stored is not None and stored["fanout_pending"] is True  # durable, marked
        assert await h.services.queue.zcard(h.settings.queue_name) == 0  # no job exists
        assert await h.api.whole_feed(author) == [tweet]  # the author sees it at once
        for follower in followers:
            assert tweet not in (await h.timeline(follower) or set())

        await repaired_by_cron(h)
        for follower in followers:
            assert tweet in (await h.timeline(follower) or set())
            assert await h.api.whole_feed(follower) == [tweet]


async def test_a_fanout_job_lost_from_the_queue_is_delivered_by_the_repair_job(redis_url: str) -> None:
    """The process died after the MongoDB write (or Redis lost the queue): no job, no trace
    in Redis, only the marker on the tweet."""
    async with started(redis_url, run_worker_in_process=False) as h:
        author = await h.api.sign_up("author")
        followers = await audience(h, author, 2)
        tweet = (await h.api.post(author, "its job vanishes"))["id"]
        queued = await h.services.queue.queued_jobs()
        assert [job.function for job in queued] == [FANOUT_TWEET.name]
        await h.services.queue_redis.delete(h.settings.queue_name, f"arq:job:{queued[0].job_id}")

        assert (await h.run_worker()).jobs_complete == 0
        assert await h.pending_fanouts() == 1
        await repaired_by_cron(h)
        for follower in followers:
            assert await h.api.whole_feed(follower) == [tweet]
