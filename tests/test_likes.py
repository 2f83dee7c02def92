"""Likes over HTTP: idempotent under concurrency, counted in Redis at once, flushed to
MongoDB by the worker's cron job, recounted from the likes collection when Redis loses them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette

from starling.config import Settings
from starling.store.jobs import FLUSH_COUNTERS
from starling.store.monitoring import count_round_trips
from starling.store.services import Services
from starling.workers.settings import build_worker
from tests.api import Account, Api, eventually
from tests.conftest import make_settings
from tests.harness import started

pytestmark = pytest.mark.both_redis_topologies

LIKE = "mutation($id: ID!) { likeTweet(tweetId: $id) { id likeCount viewerHasLiked } }"
UNLIKE = "mutation($id: ID!) { unlikeTweet(tweetId: $id) { id likeCount viewerHasLiked } }"
TWEET = """
query($id: ID!, $first: Int, $after: String) {
  tweet(id: $id) {
    likeCount viewerHasLiked
    likedBy(first: $first, after: $after) { nodes { handle } pageInfo { hasNextPage endCursor } }
  }
}
"""


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Flush every second, so the cron job runs within the test."""
    return make_settings(redis_url, counter_flush_seconds=1)


async def like(api: Api, who: Account, tweet_id: str) -> dict[str, Any]:
    return (await api.gql(LIKE, {"id": tweet_id}, who.token))["likeTweet"]


async def unlike(api: Api, who: Account, tweet_id: str) -> dict[str, Any]:
    return (await api.gql(UNLIKE, {"id": tweet_id}, who.token))["unlikeTweet"]


async def tweet_of(api: Api, tweet_id: str, who: Account | None = None, first: int = 20) -> dict[str, Any]:
    data = await api.gql(TWEET, {"id": tweet_id, "first": first}, who.token if who else None)
    return data["tweet"]


async def stored_like_count(services: Services, tweet_id: str) -> int:
    doc = await services.db.tweets.find_one({"_id": int(tweet_id)}, {"like_count": 1})
    return doc["like_count"]


async def test_concurrent_likes_count_once_each_and_reach_mongodb(api: Api, app: Starlette) -> None:
    services: Services = app.state.services
    author = await api.sign_up("author")
    tweet = await api.post(author, "like me")
    fans = [await api.sign_up(f"fan{n}") for n in range(50)]

    results = await asyncio.gather(*(like(api, fan, tweet["id"]) for fan in fans))
    assert all(result["viewerHasLiked"] for result in results)
    # Each liker reads a count that includes their own like at once.
    assert all(1 <= result["likeCount"] <= 50 for result in results)
    assert (await tweet_of(api, tweet["id"]))["likeCount"] == 50

    eager = fans[0]
    repeats = await asyncio.gather(*(like(api, eager, tweet["id"]) for _ in range(10)))
    assert {result["likeCount"] for result in repeats} == {50}
    assert await services.db.likes.count_documents({"tweet_id": int(tweet["id"])}) == 50

    assert await unlike(api, eager, tweet["id"]) == {
        "id": tweet["id"],
        "likeCount": 49,
        "viewerHasLiked": False,
    }
    assert (await unlike(api, eager, tweet["id"]))["likeCount"] == 49  # idempotent
    assert (await like(api, eager, tweet["id"]))["likeCount"] == 50
    assert (await tweet_of(api, tweet["id"], author))["viewerHasLiked"] is False
    assert (await tweet_of(api, tweet["id"]))["viewerHasLiked"] is False  # anonymous

    async def flushed() -> bool:  # by the cron job of the in-process worker
        return await stored_like_count(services, tweet["id"]) == 50

    await eventually(flushed, within=10)
    assert (await tweet_of(api, tweet["id"]))["likeCount"] == 50


async def test_liked_by_is_newest_first_and_pages(api: Api) -> None:
    author = await api.sign_up("author")
    tweet = await api.post(author, "popular")
    fans = [await api.sign_up(f"fan{n}") for n in range(5)]
    for fan in fans:
        await like(api, fan, tweet["id"])
    await unlike(api, fans[2], tweet["id"])
    expected = [fan.handle for fan in reversed(fans) if fan is not fans[2]]

    first = (await tweet_of(api, tweet["id"], first=3))["likedBy"]
    assert [node["handle"] for node in first["nodes"]] == expected[:3]
    assert first["pageInfo"]["hasNextPage"] is True
    data = await api.gql(TWEET, {"id": tweet["id"], "first": 3, "after": first["pageInfo"]["endCursor"]})
    rest = data["tweet"]["likedBy"]
    assert [node["handle"] for node in rest["nodes"]] == expected[3:]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_liking_a_retweet_likes_the_original(api: Api) -> None:
    author, retweeter, fan = (
        await api.sign_up("author"),
        await api.sign_up("retweeter"),
        await api.sign_up("fan"),
    )
    original = await api.post(author, "worth sharing")
    data = await api.gql(
        "mutation($id: ID!) { retweet(tweetId: $id) { id } }", {"id": original["id"]}, retweeter.token
    )
    retweet_id = data["retweet"]["id"]
    liked = await like(api, fan, retweet_id)
    assert liked == {"id": retweet_id, "likeCount": 1, "viewerHasLiked": True}
    assert (await tweet_of(api, original["id"], fan))["viewerHasLiked"] is True
    assert (await tweet_of(api, original["id"]))["likeCount"] == 1


async def test_like_errors(api: Api) -> None:
    author, fan = await api.sign_up("author"), await api.sign_up("fan")
    tweet = await api.post(author, "soon gone")
    assert await api.error_codes(LIKE, {"id": tweet["id"]}) == ["UNAUTHENTICATED"]
    assert await api.error_codes(LIKE, {"id": "12x"}, fan.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(LIKE, {"id": "123456789"}, fan.token) == ["NOT_FOUND"]
    await api.gql("mutation($id: ID!) { deleteTweet(id: $id) }", {"id": tweet["id"]}, author.token)
    assert await api.error_codes(LIKE, {"id": tweet["id"]}, fan.token) == ["NOT_FOUND"]
    assert await api.error_codes(UNLIKE, {"id": tweet["id"]}, fan.token) == ["NOT_FOUND"]


async def test_counts_lost_with_redis_are_recounted_and_mongodb_repaired(redis_url: str) -> None:
    """Redis loses everything between the likes and the flush: readers get the count
    recounted from the likes collection, and the next flush repairs MongoDB's field."""
    async with started(redis_url, run_worker_in_process=False) as h:
        api, services = h.api, h.services
        author = await api.sign_up("author")
        tweet = await api.post(author, "a like magnet")
        fans = [await api.sign_up(f"fan{n}") for n in range(3)]
        for fan in fans:
            await like(api, fan, tweet["id"])
        assert (await tweet_of(api, tweet["id"]))["likeCount"] == 3

        await services.redis.flushdb()  # Redis lost: counters and their pending deltas with it
        assert await stored_like_count(services, tweet["id"]) == 0
        assert (await tweet_of(api, tweet["id"]))["likeCount"] == 3  # recounted

        await FLUSH_COUNTERS.enqueue(services.queue)
        await h.run_worker()
        assert await stored_like_count(services, tweet["id"]) == 3
        await unlike(api, fans[0], tweet["id"])
        await FLUSH_COUNTERS.enqueue(services.queue)
        await h.run_worker()
        assert await stored_like_count(services, tweet["id"]) == 2
        assert (await tweet_of(api, tweet["id"]))["likeCount"] == 2


async def test_the_flush_job_writes_a_batch_of_likes_with_one_bulk_write(redis_url: str) -> None:
    """The flush as a job: enqueued by name, run by a real arq worker on real Redis; 15
    likes on 5 tweets (and a like taken back on a sixth) cost MongoDB one write."""
    async with started(redis_url, run_worker_in_process=False) as h:
        api, services, settings = h.api, h.services, h.settings
        author = await api.sign_up("author")
        tweets = [await api.post(author, f"tweet {n}") for n in range(6)]
        fans = [await api.sign_up(f"fan{n}") for n in range(5)]
        for n, tweet in enumerate(tweets[:5]):
            for fan in fans[: n + 1]:
                await like(api, fan, tweet["id"])
        await like(api, fans[0], tweets[5]["id"])
        await unlike(api, fans[0], tweets[5]["id"])
        # Run what posting queued (fan-out) first, so the measured worker runs the flush only.
        await h.run_worker()

        await FLUSH_COUNTERS.enqueue(services.queue)
        worker = build_worker(services, settings, burst=True, cron_jobs=[])
        with count_round_trips() as trips:
            assert await worker.run_check() == 1
        assert trips.mongo_commands == ["update"]
        stored = [await stored_like_count(services, tweet["id"]) for tweet in tweets]
        assert stored == [1, 2, 3, 4, 5, 0]

        await FLUSH_COUNTERS.enqueue(services.queue)
        with count_round_trips() as trips:
            assert await build_worker(services, settings, burst=True, cron_jobs=[]).run_check() == 1
        assert trips.mongo_commands == []
