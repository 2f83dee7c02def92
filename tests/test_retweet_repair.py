"""The retweets of a deleted tweet are taken back even when their job could not be enqueued:
the ``retweets_pending`` marker on the original and its repair cron."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from starling.store.jobs import RETRACT_RETWEETS
from starling.workers.repair import repair_retweet_cascades
from starling.workers.retweets import retract_retweets
from tests.harness import Harness, started
from tests.test_retweets import DELETE, retweet, tweets_count


async def marked(h: Harness, tweet_id: str) -> bool:
    stored = await h.services.db.tweets.find_one({"_id": int(tweet_id)})
    assert stored is not None and stored["deleted"] is True
    return stored.get("retweets_pending") is True


async def test_retweets_whose_retraction_was_not_enqueued_are_retracted_by_the_repair_job(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(redis_url, run_worker_in_process=False) as h:
        api = h.api
        author, first, second = [await api.sign_up(handle) for handle in ("author", "first", "second")]
        original = (await api.post(author, "soon regretted"))["id"]
        for retweeter in (first, second):
            await retweet(api, retweeter, original)
        await h.run_worker()

        enqueue_job = h.services.queue.enqueue_job

        async def cascade_unreachable(name: str, *args: Any, **kwargs: Any) -> Any:
            if name == RETRACT_RETWEETS.name:
                raise RedisConnectionError("Redis is briefly down")
            return await enqueue_job(name, *args, **kwargs)

        monkeypatch.setattr(h.services.queue, "enqueue_job", cascade_unreachable)
        assert await api.gql(DELETE, {"id": original}, author.token) == {"deleteTweet": True}
        monkeypatch.undo()

        await h.run_worker()  # everything but the cascade, which was never enqueued
        assert await marked(h, original)
        assert [await tweets_count(api, who) for who in (first, second)] == [1, 1]

        # Once the marker is older than OUTBOX_REPAIR_AFTER_SECONDS, the cron enqueues the
        # cascade and the same burst run of the worker carries it out.
        await asyncio.sleep(h.settings.outbox_repair_after_seconds + 0.1)
        await h.run_worker(crons=True)
        assert [await tweets_count(api, who) for who in (first, second)] == [0, 0]
        assert not await marked(h, original)
        assert await repair_retweet_cascades({"services": h.services}) == 0
        assert await h.services.queue.zcard(h.settings.queue_name) == 0


async def test_the_retraction_job_clears_the_marker_with_or_without_retweets(redis_url: str) -> None:
    async with started(redis_url, run_worker_in_process=False) as h:
        api = h.api
        author, fan = await api.sign_up("author"), await api.sign_up("fan")
        shared = (await api.post(author, "retweeted, then deleted"))["id"]
        alone = (await api.post(author, "deleted, never retweeted"))["id"]
        await retweet(api, fan, shared)
        await h.run_worker()

        for tweet_id in (shared, alone):
            assert await api.gql(DELETE, {"id": tweet_id}, author.token) == {"deleteTweet": True}
            assert await marked(h, tweet_id)
        await h.run_worker()
        assert not await marked(h, shared) and not await marked(h, alone)
        assert await tweets_count(api, fan) == 0


async def test_a_long_cascade_under_way_is_not_started_again_beside_itself(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(redis_url, run_worker_in_process=False, retweet_cascade_batch=1) as h:
        api = h.api
        author = await api.sign_up("author")
        fans = [await api.sign_up(f"fan{n}") for n in range(3)]
        original = (await api.post(author, "retweeted thrice, then deleted"))["id"]
        for fan in fans:
            await retweet(api, fan, original)
        await h.run_worker()
        enqueue_job = h.services.queue.enqueue_job

        async def no_cascade(name: str, *args: Any, **kwargs: Any) -> Any:
            return None if name == RETRACT_RETWEETS.name else await enqueue_job(name, *args, **kwargs)

        monkeypatch.setattr(h.services.queue, "enqueue_job", no_cascade)
        assert await api.gql(DELETE, {"id": original}, author.token) == {"deleteTweet": True}
        monkeypatch.undo()
        await h.run_worker()  # the deletion's other jobs
        # Round 0 of three runs (one retweet a round) and leaves round 1 queued.
        assert await retract_retweets({"services": h.services}, int(original)) == "continued"
        stored = await h.services.db.tweets.find_one({"_id": int(original)})
        assert stored is not None and stored["retweets_round"] == 1
        queued = await h.services.queue.zrange(h.settings.queue_name, 0, -1)
        assert RETRACT_RETWEETS.job_id(int(original), 1).encode() in queued

        await asyncio.sleep(h.settings.outbox_repair_after_seconds + 0.1)
        assert await repair_retweet_cascades({"services": h.services}) == 0  # round 1 is pending
        assert await h.services.queue.zrange(h.settings.queue_name, 0, -1) == queued
        await h.run_worker()
        assert [await tweets_count(api, fan) for fan in fans] == [0, 0, 0]
        assert not await marked(h, original)
