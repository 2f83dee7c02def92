"""Following and unfollowing edit the follower's home timeline in place: the next read is
served from Redis, not rebuilt from MongoDB (a regression: both used to drop the timeline)."""

from __future__ import annotations

import pytest

from starling.store.monitoring import count_round_trips
from tests.api import eventually
from tests.harness import started

pytestmark = pytest.mark.both_redis_topologies

# Only fields the Redis tweet cache holds, so a warm page needs no MongoDB at all.
CACHED_FEED = "query { homeFeed(first: 20) { edges { node { id text } } } }"


async def test_follow_and_unfollow_keep_the_timeline_they_edit(redis_url: str) -> None:
    async with started(redis_url) as h:
        api = h.api
        reader, friend, other = [await api.sign_up(handle) for handle in ("reader", "friend", "other")]
        await api.follow(reader, other)
        kept = (await api.post(other, "from a followee"))["id"]
        merged = [(await api.post(friend, f"before the follow {n}"))["id"] for n in range(3)]
        await eventually(h.fanned_out)
        await api.gql(CACHED_FEED, token=reader.token)  # built and warm

        await api.follow(reader, friend)
        with count_round_trips() as trips:
            page = await api.gql(CACHED_FEED, token=reader.token)
        assert [edge["node"]["id"] for edge in page["homeFeed"]["edges"]] == sorted(
            [kept, *merged], key=int, reverse=True
        )
        assert trips.mongo == 0, f"the read after a follow went to MongoDB {trips.mongo} times"

        await api.unfollow(reader, friend)
        with count_round_trips() as trips:
            page = await api.gql(CACHED_FEED, token=reader.token)
        assert [edge["node"]["id"] for edge in page["homeFeed"]["edges"]] == [kept]
        assert trips.mongo == 0, f"the read after an unfollow went to MongoDB {trips.mongo} times"
