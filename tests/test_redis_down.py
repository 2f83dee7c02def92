"""Writes while Redis is unreachable: MongoDB has them, the request succeeds, and the
repair paths deliver what Redis missed once it is back."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette

from starling.store.services import Services
from starling.workers.repair import repair_revocations
from tests.api import Api
from tests.harness import started


class RedisOutage:
    """Every new Redis command fails as if the server were gone (the API's pool, which the
    job queue shares)."""

    def __init__(self, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
        self._pool = services.redis.connection_pool
        self._monkeypatch = monkeypatch

    def __enter__(self) -> None:
        async def refused(*args: object, **kwargs: object) -> None:
            raise RedisConnectionError("Error 111 connecting to Redis. Connection refused.")

        self._monkeypatch.setattr(self._pool, "get_connection", refused)

    def __exit__(self, *exc: object) -> None:
        self._monkeypatch.undo()


async def test_writes_survive_a_redis_outage_and_are_repaired(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(redis_url, run_worker_in_process=False) as h:
        api, services, settings = h.api, h.services, h.settings
        author, reader = await api.sign_up("author"), await api.sign_up("reader")
        await api.follow(reader, author)
        await api.feed_page(reader)  # the reader's timeline is built

        with RedisOutage(services, monkeypatch):
            tweet = await api.gql(
                'mutation { postTweet(text: "posted while Redis is down") { id text } }',
                token=author.token,
            )
            other = await api.sign_up("other")
            followed = await api.follow(other, author)
            assert followed["followersCount"] == 2
            # What the viewer did is MongoDB's to tell: the like's answer says it holds.
            liked = await api.gql(
                "mutation($id: ID!) { likeTweet(tweetId: $id) { viewerHasLiked viewerHasRetweeted } }",
                {"id": tweet["postTweet"]["id"]},
                token=reader.token,
            )
            assert liked == {"likeTweet": {"viewerHasLiked": True, "viewerHasRetweeted": False}}
            engage = (
                "mutation($id: ID!) {"
                ' addComment(tweetId: $id, text: "hi") { id } retweet(tweetId: $id) { id } }'
            )
            engaged = await api.gql(engage, {"id": tweet["postTweet"]["id"]}, token=reader.token)
            assert engaged["addComment"]["id"] and engaged["retweet"]["id"]
            # Reads need Redis: they fail cleanly, with a code and no detail.
            body = await api.raw("{ homeFeed { nodes { id } } }", token=reader.token)
            assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
            assert "try again" in body["errors"][0]["message"]
            assert "111" not in str(body)

        tweet_id = int(tweet["postTweet"]["id"])
        stored = await services.db.tweets.find_one({"_id": tweet_id})
        assert stored is not None and stored["fanout_pending"] is True

        # Redis is back: the outbox repair (the worker's cron, run here by a real worker
        # in burst mode once the marker is older than OUTBOX_REPAIR_AFTER_SECONDS) delivers.
        await asyncio.sleep(settings.outbox_repair_after_seconds + 0.1)
        await h.run_worker(crons=True)
        assert str(tweet_id) in await api.whole_feed(reader)
        assert (await services.db.tweets.find_one({"_id": tweet_id})).get("fanout_pending") is None


async def test_log_out_while_redis_is_down_still_revokes(
    app: Starlette, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await api.sign_up("leaver")
    services: Services = app.state.services
    with RedisOutage(services, monkeypatch):
        assert await api.gql("mutation { logOut }", token=account.token) == {"logOut": True}
        codes = await api.error_codes('mutation { postTweet(text: "x") { id } }', token=account.token)
        assert codes == ["UNAUTHENTICATED"]
    # Redis is back without the revocation: the worker's repair cron copies it over.
    await repair_revocations({"services": services})
    assert (await api.gql("{ viewer { handle } }", token=account.token))["viewer"] is None
