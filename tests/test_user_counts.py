"""Users' counters whose second write was skipped are set right by the repair cron, run by a
real arq worker, in bounded batches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from starling.workers.repair import repair_user_counters
from tests.api import Account, Api
from tests.harness import started

COUNTS = "query($h: String!) { user(handle: $h) { followersCount followingCount tweetsCount } }"


async def counts(api: Api, who: Account) -> list[int]:
    user = (await api.gql(COUNTS, {"h": who.handle}))["user"]
    return [user["followersCount"], user["followingCount"], user["tweetsCount"]]


SETTLE = 4


async def test_counters_a_crash_left_behind_are_recounted_by_the_cron(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settling takes long enough that a loaded machine still runs the first cron in time.
    async with started(redis_url, run_worker_in_process=False, user_recount_settle_seconds=SETTLE) as h:
        api, users = h.api, h.services.db.users
        fan, star = await api.sign_up("fan"), await api.sign_up("star")

        # The process dies after each first write: the edge and the tweet are stored, the
        # users' counters never move.
        async def crashed(*args: Any, **kwargs: Any) -> None:
            return None

        monkeypatch.setattr(users, "update_one", crashed)
        await api.post(star, "counted by nobody")
        monkeypatch.undo()
        await api.follow(fan, star)
        await users.update_one({"_id": int(star.id)}, {"$inc": {"followers_count": -1}})
        await users.update_one({"_id": int(fan.id)}, {"$inc": {"following_count": -1}})
        assert [await counts(api, who) for who in (fan, star)] == [[0, 0, 0], [0, 0, 0]]

        await h.run_worker(crons=True)  # too soon: the counter writes may be on their way
        assert [await counts(api, who) for who in (fan, star)] == [[0, 0, 0], [0, 0, 0]]
        await asyncio.sleep(SETTLE + 0.1)  # USER_RECOUNT_SETTLE_SECONDS later
        await h.run_worker(crons=True)
        assert [await counts(api, who) for who in (fan, star)] == [[0, 1, 0], [1, 0, 1]]


async def test_the_repair_walks_the_users_in_batches_and_starts_over(redis_url: str) -> None:
    async with started(redis_url, run_worker_in_process=False, user_recount_batch=2) as h:
        services = h.services
        accounts = [await h.api.sign_up(f"user{n}") for n in range(3)]
        ids = [int(account.id) for account in accounts]
        await services.db.users.update_many({}, {"$set": {"tweets_count": 7}})
        cursor = services.keys.user_recount_cursor()
        ctx = {"services": services}

        assert await repair_user_counters(ctx) == 2  # the first two users
        assert int(await services.queue_redis.get(cursor)) == ids[1]
        assert await repair_user_counters(ctx) == 1  # the last one: the pass is done
        assert await services.queue_redis.get(cursor) is None
        assert await repair_user_counters(ctx) == 0  # the next pass finds nothing to repair
        assert [(await services.db.users.find_one({"_id": i}))["tweets_count"] for i in ids] == [0, 0, 0]
