"""A home feed page costs the same number of datastore round trips whatever its size."""

from __future__ import annotations

from starlette.applications import Starlette

from starling.store.monitoring import RoundTrips, count_round_trips
from starling.store.redis import connect_redis
from tests.api import Account, Api, eventually
from tests.realtime import comment, like, retweet

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


def assert_constant(counts: dict[int, RoundTrips]) -> None:
    mongo = {first: trips.mongo for first, trips in counts.items()}
    redis = {first: trips.redis for first, trips in counts.items()}
    print(f"round trips per page: mongo={mongo} redis={redis}")
    assert len(set(mongo.values())) == 1, mongo
    assert len(set(redis.values())) == 1, redis


async def test_feed_round_trips_do_not_grow_with_page_size(api: Api) -> None:
    reader = await busy_reader(api)
    counts = {first: await measure(api, reader, BASIC_FEED, first) for first in PAGE_SIZES}
    assert_constant(counts)
    # Sanity: the page really hit the datastores (auth, timeline, hydration).
    assert counts[10].redis >= 2


WARM_BUDGET_FEED = """
query Feed($first: Int) {
  homeFeed(first: $first) {
    edges { cursor node { id text createdAt author { handle displayName }
      likeCount commentCount retweetCount viewerHasLiked viewerHasRetweeted } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
"""The benchmark's selection (bench/floor.py ``FEED_QUERY``) with ``viewerHasRetweeted``."""

WARM_MONGO_BUDGET = 0
# The first trip (token, budget, timeline), the page's tweets, then authors and retweets' originals.
WARM_REDIS_BUDGET = 3


async def test_a_warm_page_reads_redis_only_within_its_budget(api: Api) -> None:
    reader = await busy_reader(api)
    feed = await api.whole_feed(reader, page_size=100)
    for tweet_id in feed[::4]:
        await like(api, reader, tweet_id)
    page = await api.gql(WARM_BUDGET_FEED, {"first": 20}, reader.token)
    liked = [edge["node"]["viewerHasLiked"] for edge in page["homeFeed"]["edges"]]
    assert liked == [position % 4 == 0 for position in range(20)]
    counts = {first: await measure(api, reader, WARM_BUDGET_FEED, first) for first in PAGE_SIZES}
    assert_constant(counts)
    for first, trips in counts.items():
        assert trips.mongo == WARM_MONGO_BUDGET, (first, trips.mongo_commands)
        assert trips.redis <= WARM_REDIS_BUDGET, (first, trips.redis)


ENGAGEMENT_FEED = """
query Feed($first: Int) {
  homeFeed(first: $first) {
    edges { cursor node { id text author { handle }
      likeCount commentCount retweetCount viewerHasLiked viewerHasRetweeted
      retweetOf { id author { handle } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def engaged_reader(api: Api) -> Account:
    """``busy_reader``'s feed topped with retweets mixed among new tweets (some by the reader,
    so ``viewerHasRetweeted`` is true on them), then liked and commented throughout."""
    reader = await busy_reader(api)
    writers = [await api.sign_up(f"writer{n}") for n in range(3, 6)]
    outsider = await api.sign_up("outsider")
    for writer in writers:
        await api.follow(reader, writer)
    for n in range(15):
        await api.post(writers[n % 3], f"fresh {n}")
        shared = await api.post(outsider, f"from afar {n}")
        await retweet(api, reader if n % 3 == 0 else writers[n % 3], shared["id"])

    async def delivered() -> bool:
        return len(await api.whole_feed(reader, page_size=100)) == 150

    await eventually(delivered, within=20)
    feed = await api.whole_feed(reader, page_size=100)
    for position, tweet_id in enumerate(feed):
        if position % 3 == 0:
            await like(api, reader, tweet_id)
        if position % 4 == 0:
            await like(api, writers[0], tweet_id)
        if position % 5 == 0:
            await comment(api, writers[1], tweet_id, f"comment on {position}")
    return reader


async def test_a_warm_page_with_retweets_stays_within_the_budget(api: Api) -> None:
    """Retweets show their originals' counts and the viewer's engagement with them: those
    are read in the authors' round trip, so the budget holds."""
    reader = await engaged_reader(api)
    counts = {first: await measure(api, reader, WARM_BUDGET_FEED, first) for first in PAGE_SIZES}
    assert_constant(counts)
    for first, trips in counts.items():
        assert trips.mongo == WARM_MONGO_BUDGET, (first, trips.mongo_commands)
        assert trips.redis <= WARM_REDIS_BUDGET, (first, trips.redis)


async def drop_counters(app: Starlette) -> None:
    """Forget every tweet's counts in Redis, as an expiry or a lost Redis would."""
    services = app.state.services
    pattern = services.keys.prefix + "{t*}:ct:[0-9]*"  # store.keys.Keys.counts, every shard
    keys = [key async for key in services.redis.scan_iter(match=pattern)]
    for key in keys:  # one at a time: on a cluster they live in many slots
        await services.redis.delete(key)


async def test_engagement_fields_cost_constant_round_trips(api: Api, app: Starlette) -> None:
    reader = await engaged_reader(api)
    page = await api.gql(ENGAGEMENT_FEED, {"first": 100}, reader.token)
    nodes = [edge["node"] for edge in page["homeFeed"]["edges"]]
    assert any(node["retweetOf"] for node in nodes[:10])
    assert any(node["viewerHasRetweeted"] for node in nodes[:10])
    assert any(node["viewerHasLiked"] for node in nodes[:10])
    assert any(node["commentCount"] for node in nodes[:10])
    assert max(node["likeCount"] for node in nodes) == 2

    # Counts cached in Redis: one round trip for the page's counts.
    warm = {first: await measure(api, reader, ENGAGEMENT_FEED, first) for first in PAGE_SIZES}
    assert_constant(warm)

    # Counts gone from Redis: recounted from MongoDB, still a batch per kind for the page.
    cold = {}
    for first in PAGE_SIZES:
        await drop_counters(app)
        with count_round_trips() as trips:
            data = await api.gql(ENGAGEMENT_FEED, {"first": first}, reader.token)
        assert [edge["node"] for edge in data["homeFeed"]["edges"]] == nodes[:first]
        cold[first] = trips
    assert_constant(cold)
    assert cold[10].mongo > warm[10].mongo


async def test_a_new_pooled_connection_costs_the_request_no_extra_round_trip(redis_url: str) -> None:
    """Opening a connection (CLIENT SETINFO, SELECT of the test database) is the pool's cost:
    counting it made a page measured right after the pool grew look dearer than the rest."""
    redis = connect_redis(redis_url)
    try:
        with count_round_trips() as trips:
            await redis.ping()
        assert trips.redis == 1
    finally:
        await redis.aclose()
