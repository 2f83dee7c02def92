"""A home feed page costs the same number of datastore round trips whatever its size."""

from __future__ import annotations

import pytest

from starling.store.monitoring import RoundTrips, count_round_trips
from tests.api import Account, Api, eventually

PAGE_SIZES = (10, 20, 50, 100)

BASIC_FEED = """
query Feed($first: Int) {
  homeFeed(first: $first) {
    edges { cursor node { id text createdAt url hashtags author { handle displayName }
      mentions { handle } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def busy_reader(api: Api, authors: int = 3, tweets_each: int = 40) -> Account:
    """A reader following several authors whose feed holds more than 100 tweets."""
    reader = await api.sign_up("reader")
    writers = [await api.sign_up(f"writer{n}") for n in range(authors)]
    for writer in writers:
        await api.follow(reader, writer)
    for n in range(tweets_each):
        for writer in writers:
            await api.post(writer, f"tweet {n} from @{writer.handle} to @reader #n{n % 5}")
    total = authors * tweets_each

    async def delivered() -> bool:
        return len(await api.whole_feed(reader, page_size=100)) == total

    await eventually(delivered, within=20)
    return reader


async def measure(api: Api, reader: Account, query: str, first: int) -> RoundTrips:
    await api.gql(query, {"first": first}, reader.token)  # warm: the rebuild and caches
    with count_round_trips() as trips:
        data = await api.gql(query, {"first": first}, reader.token)
    assert len(data["homeFeed"]["edges"]) == first
    return trips


@pytest.mark.parametrize("query", [BASIC_FEED], ids=["basic"])
async def test_feed_round_trips_do_not_grow_with_page_size(api: Api, query: str) -> None:
    reader = await busy_reader(api)
    counts = {first: await measure(api, reader, query, first) for first in PAGE_SIZES}
    mongo = {first: trips.mongo for first, trips in counts.items()}
    redis = {first: trips.redis for first, trips in counts.items()}
    print(f"round trips per page: mongo={mongo} redis={redis}")
    assert len(set(mongo.values())) == 1, mongo
    assert len(set(redis.values())) == 1, redis
    # Sanity: the page really hit the datastores (auth, timeline, hydration).
    assert counts[10].redis >= 2
