"""The GCRA script (``store.ratelimit``) on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from starling.store.monitoring import count_round_trips
from starling.store.ratelimit import Decision, Limit, charge_all
from starling.store.redis import connect_redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect_redis(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def bucket() -> str:
    return f"test-rl:{{{uuid.uuid4().hex}}}"


async def charge(redis: Redis, key: str, limit: Limit, cost: int = 1) -> Decision:
    [decision] = await charge_all(redis, [(key, limit, cost)])
    return decision


async def test_a_full_bucket_lets_its_amount_through_then_refuses(redis: Redis) -> None:
    key, limit = bucket(), Limit(amount=5, period_seconds=10)
    decisions = [await charge(redis, key, limit) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    refused = decisions[-1]
    # One unit comes back every period / amount = 2 s; the bucket is full again in 10 s.
    assert 1.5 < refused.retry_after <= 2.0
    assert 9.0 < refused.reset_after <= 10.0
    # A refusal consumed nothing: the bucket still frees its next unit as soon as it would have.
    again = await charge(redis, key, limit)
    assert not again.allowed and again.retry_after <= refused.retry_after
    ttl = await redis.pttl(key)
    assert 0 < ttl <= 10_000  # the key goes when the bucket would be full


async def test_units_come_back_at_the_rate(redis: Redis) -> None:
    key, limit = bucket(), Limit(amount=4, period_seconds=1)  # one back every 0.25 s
    assert all([(await charge(redis, key, limit)).allowed for _ in range(4)])
    refused = await charge(redis, key, limit)
    assert not refused.allowed
    await asyncio.sleep(refused.retry_after + 0.02)
    assert (await charge(redis, key, limit)).allowed
    assert not (await charge(redis, key, limit)).allowed


async def test_a_cost_takes_that_many_units_and_a_refused_one_takes_none(redis: Redis) -> None:
    key, limit = bucket(), Limit(amount=10, period_seconds=60)
    assert (await charge(redis, key, limit, cost=7)).remaining == 3
    refused = await charge(redis, key, limit, cost=5)
    assert not refused.allowed and refused.remaining == 3
    assert (await charge(redis, key, limit, cost=3)).allowed


async def test_a_cost_above_the_whole_amount_spends_a_full_bucket(redis: Redis) -> None:
    key, limit = bucket(), Limit(amount=10, period_seconds=60)
    spent = await charge(redis, key, limit, cost=1_000)
    assert spent.allowed and spent.remaining == 0
    assert not (await charge(redis, key, limit)).allowed


async def test_many_buckets_are_checked_in_one_round_trip(redis: Redis) -> None:
    limit = Limit(amount=3, period_seconds=60)
    await redis.ping()  # the pool's connection is open
    with count_round_trips() as trips:
        decisions = await charge_all(redis, [(bucket(), limit, 1) for _ in range(5)])
    assert trips.redis == 1
    assert all(d.allowed and d.remaining == 2 for d in decisions)
