"""Timelines at scale, through the public API on real Redis: celebrities merged at read
time (and their cursors), threshold crossings, follow merge and unfollow removal, Redis
flushed or expired under the readers, and rebuilds that are not started twice."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from starling.store.keys import TIMELINE_SENTINEL, Keys
from starling.store.monitoring import count_round_trips
from starling.store.timelines import decode_members
from tests.api import Account, Api, eventually
from tests.harness import Harness, started
from tests.test_round_trips import WARM_BUDGET_FEED

pytestmark = pytest.mark.both_redis_topologies


def newest_first(tweet_ids: Iterable[str]) -> list[str]:
    return sorted(tweet_ids, key=int, reverse=True)


async def post_all(h: Harness, authors: list[Account], rounds: int) -> dict[str, str]:
    """Each author posts ``rounds`` tweets, interleaved; returns tweet ID -> author ID."""
    authored: dict[str, str] = {}
    for n in range(rounds):
        for author in authors:
            authored[(await h.api.post(author, f"{author.handle} says {n}"))["id"]] = author.id
    return authored


def feed_of(user: Account, follows: dict[str, set[str]], authored: dict[str, str]) -> list[str]:
    """What the user's feed must show: their own tweets and their followees', newest first."""
    return newest_first(t for t, a in authored.items() if a == user.id or a in follows.get(user.id, set()))


async def test_celebrity_tweets_are_merged_at_read_time_and_pages_mix_both_sources(redis_url: str) -> None:
    async with started(redis_url, celebrity_followers=3) as h:
        api = h.api
        star = await api.sign_up("star")
        friends = [await api.sign_up(f"friend{n}") for n in range(2)]
        fans = [await api.sign_up(f"fan{n}") for n in range(5)]
        follows: dict[str, set[str]] = {}
        for n, fan in enumerate(fans):
            friend = friends[0] if n < 3 else friends[1]  # 3 and 2 followers: not celebrities
            for followee in (star, friend):
                await api.follow(fan, followee)
            follows[fan.id] = {star.id, friend.id}
            await api.feed_page(fan)  # active readers: built timelines
        assert (await api.follow(fans[0], star))["followersCount"] == 5
        await api.feed_page(star)

        authored = await post_all(h, [star, *friends], rounds=6)
        await eventually(h.fanned_out)
        star_tweets = {t for t, a in authored.items() if a == star.id}
        for fan in fans:
            expected = feed_of(fan, follows, authored)
            assert len(expected) == 12
            assert await h.timeline(fan) == set(expected) - star_tweets  # none of the star's
            for page_size in (1, 2, 5, 20):
                assert await api.whole_feed(fan, page_size=page_size) == expected
        assert star_tweets <= (await h.timeline(star) or set())  # the author's own copies

        # Rebuilt from MongoDB, the timeline still leaves the star's tweets to the merge.
        await h.services.redis.delete(h.services.keys.home_timeline(int(fans[0].id)))
        assert await api.whole_feed(fans[0], page_size=3) == feed_of(fans[0], follows, authored)
        assert await h.timeline(fans[0]) == set(feed_of(fans[0], follows, authored)) - star_tweets

        # A lost author list is rebuilt too.
        await h.services.redis.delete(h.services.keys.author_tweets(int(star.id)))
        assert await api.whole_feed(fans[4], page_size=4) == feed_of(fans[4], follows, authored)


async def test_crossing_the_threshold_either_way_keeps_feeds_right(redis_url: str) -> None:
    async with started(redis_url, celebrity_followers=3, run_worker_in_process=False) as h:
        api, keys = h.api, h.services.keys
        star = await api.sign_up("star")
        fans = [await api.sign_up(f"fan{n}") for n in range(4)]
        for fan in fans[:3]:
            await api.follow(fan, star)
            await api.feed_page(fan)
        before = (await api.post(star, "three followers: fanned out"))["id"]
        await h.run_worker()
        for fan in fans[:3]:
            assert before in (await h.timeline(fan) or set())

        # Up: the fourth follower makes the star a celebrity; new tweets are merged at read time.
        await api.follow(fans[3], star)
        famous = (await api.post(star, "four followers: merged at read time"))["id"]
        await h.run_worker()
        assert await h.pending_fanouts() == 0
        for fan in fans:
            assert famous not in (await h.timeline(fan) or set())
            assert await api.whole_feed(fan) == [famous, before]

        # Down: back to three. Until the backfill job has run, readers keep merging the star,
        # even with their celebrity sets rebuilt from scratch.
        await api.unfollow(fans[3], star)
        assert await api.whole_feed(fans[3]) == []
        for fan in fans[:3]:
            await h.services.redis.delete(keys.followed_celebrities(int(fan.id)))
            assert await api.whole_feed(fan) == [famous, before]
        await h.run_worker()  # the backfill: the star's recent tweets into the fans' timelines
        assert not await h.services.redis.sismember(keys.merged_authors(), star.id)
        for fan in fans[:3]:
            assert {famous, before} <= (await h.timeline(fan) or set())
            assert await api.whole_feed(fan) == [famous, before]

        again = (await api.post(star, "three followers again: fanned out"))["id"]
        await h.run_worker()
        for fan in fans[:3]:
            assert again in (await h.timeline(fan) or set())
            assert await api.whole_feed(fan) == [again, famous, before]


async def test_a_crossing_missed_while_redis_was_down_is_caught_by_the_next_fanout(redis_url: str) -> None:
    async with started(redis_url, celebrity_followers=2, run_worker_in_process=False) as h:
        api, keys, redis = h.api, h.services.keys, h.services.redis
        star = await api.sign_up("star")
        fans = [await api.sign_up(f"fan{n}") for n in range(3)]
        for fan in fans[:2]:
            await api.follow(fan, star)
        for fan in fans[:2]:
            await api.feed_page(fan)  # celebrity sets cached: the star is not one
        epoch = await redis.get(keys.celebrity_epoch())
        await api.follow(fans[2], star)
        # As if Redis had been unreachable when the count crossed: nothing recorded it.
        await redis.srem(keys.merged_authors(), star.id)
        await redis.set(keys.celebrity_epoch(), epoch or 0)

        tweet = (await api.post(star, "not fanned out"))["id"]
        await h.run_worker()
        for fan in fans:
            assert tweet not in (await h.timeline(fan) or set())
            assert await api.whole_feed(fan) == [tweet]


async def test_follow_merges_recent_tweets_and_unfollow_removes_them(redis_url: str) -> None:
    async with started(redis_url) as h:
        api = h.api
        b, d, e = [await api.sign_up(handle) for handle in ("b", "d", "e")]
        await api.follow(b, e)
        from_e = (await api.post(e, "already followed"))["id"]
        from_d = [(await api.post(d, f"earlier {n}"))["id"] for n in range(5)]
        await eventually(h.fanned_out)
        assert await api.whole_feed(b) == [from_e]  # built, without D's tweets

        await api.follow(b, d)
        assert await api.whole_feed(b, page_size=2) == newest_first([from_e, *from_d])  # next read
        assert set(from_d) <= (await h.timeline(b) or set())
        await api.unfollow(b, d)
        assert await api.whole_feed(b) == [from_e]
        assert not set(from_d) & (await h.timeline(b) or set())


async def test_following_a_celebrity_merges_their_list_and_unfollowing_drops_it(redis_url: str) -> None:
    async with started(redis_url, celebrity_followers=3) as h:
        api = h.api
        star, reader = await api.sign_up("star"), await api.sign_up("reader")
        for n in range(4):
            await api.follow(await api.sign_up(f"fan{n}"), star)
        from_star = [(await api.post(star, f"famous {n}"))["id"] for n in range(3)]
        own = (await api.post(reader, "my own"))["id"]
        await eventually(h.fanned_out)
        assert await api.whole_feed(reader) == [own]

        await api.follow(reader, star)
        assert await api.whole_feed(reader, page_size=2) == newest_first([own, *from_star])
        assert await h.timeline(reader) == {own}  # merged at read time, not copied
        await api.unfollow(reader, star)
        assert await api.whole_feed(reader) == [own]


async def test_every_feed_is_complete_after_redis_is_flushed(redis_url: str) -> None:
    async with started(redis_url, celebrity_followers=3) as h:
        api = h.api
        users = [await api.sign_up(f"user{n}") for n in range(7)]
        ids = [user.id for user in users]
        # user0 is followed by five (a celebrity); the rest form a ring of two followees each.
        follows = {ids[n]: {ids[0]} for n in range(1, 6)}
        for n in range(1, 7):
            follows.setdefault(ids[n], set()).update({ids[n % 6 + 1], ids[(n + 1) % 6 + 1]} - {ids[n]})
        for user in users:
            for followee in follows.get(user.id, set()):
                await api.follow(user, next(u for u in users if u.id == followee))
            await api.feed_page(user)
        authored = await post_all(h, users, rounds=3)
        await eventually(h.fanned_out)
        for user in users:
            assert await api.whole_feed(user, page_size=5) == feed_of(user, follows, authored)

        for author in (users[0], users[3]):  # posted, then Redis loses everything before a read
            authored[(await api.post(author, "just before the flush"))["id"]] = author.id
        await h.services.redis.flushdb()
        for user in users:
            assert await api.whole_feed(user, page_size=4) == feed_of(user, follows, authored)


async def test_idle_timelines_expire_and_are_rebuilt(redis_url: str) -> None:
    async with started(redis_url, timeline_ttl_seconds=1) as h:
        api, redis = h.api, h.services.redis
        author, reader = await api.sign_up("author"), await api.sign_up("reader")
        await api.follow(reader, author)
        tweets = [(await api.post(author, f"tweet {n}"))["id"] for n in range(3)]
        await eventually(h.fanned_out)
        assert await api.whole_feed(reader) == newest_first(tweets)
        key = h.services.keys.home_timeline(int(reader.id))
        assert 0 < await redis.pttl(key) <= 1000  # each read renews the TTL

        async def expired() -> bool:
            return not await redis.exists(key)

        await eventually(expired, within=3)
        assert await api.whole_feed(reader) == newest_first(tweets)
        assert await h.timeline(reader) == set(tweets)


async def test_a_rebuild_in_progress_is_not_started_twice_and_misses_nothing(redis_url: str) -> None:
    async with started(redis_url) as h:
        api, redis = h.api, h.services.redis
        author, reader = await api.sign_up("author"), await api.sign_up("reader")
        await api.follow(reader, author)
        first = (await api.post(author, "before the rebuild"))["id"]
        await eventually(h.fanned_out)
        key = h.services.keys.home_timeline(int(reader.id))
        await redis.delete(key)

        # Another process holds the rebuild: this reader is served from MongoDB, writes nothing.
        await redis.set(Keys.rebuild_lock(key), 1)
        assert await api.whole_feed(reader) == [first]
        assert not await redis.exists(key)
        # A tweet posted meanwhile lands in the timeline under rebuild...
        during = (await api.post(author, "during the rebuild"))["id"]
        await eventually(h.fanned_out)
        assert await h.timeline(reader) is None
        assert await redis.zcard(key) == 1
        # ...and the next rebuild merges into it.
        await redis.delete(Keys.rebuild_lock(key))
        assert await api.whole_feed(reader) == [during, first]
        assert await h.timeline(reader) == {during, first}


async def test_a_feed_with_celebrities_costs_constant_round_trips(redis_url: str) -> None:
    async with started(redis_url, celebrity_followers=1) as h:
        api = h.api
        reader, other = await api.sign_up("reader"), await api.sign_up("other")
        stars = [await api.sign_up(f"star{n}") for n in range(2)]
        plain = await api.sign_up("plain")
        for star in stars:
            await api.follow(other, star)
        for followee in (*stars, plain):
            await api.follow(reader, followee)  # two stars with 2 followers: celebrities
        await post_all(h, [*stars, plain], rounds=40)
        await eventually(h.fanned_out, within=20)
        trips = {}
        for first in (10, 20, 50, 100):
            await api.feed_page(reader, first)  # warm: rebuilds and caches
            with count_round_trips() as counted:
                page = await api.feed_page(reader, first)
            assert len(page["edges"]) == first
            trips[first] = (counted.mongo, counted.redis)
        assert len(set(trips.values())) == 1, trips


async def test_a_full_timeline_stays_a_newest_first_listpack_capped_at_its_length(redis_url: str) -> None:
    async with started(redis_url, timeline_max=50) as h:
        timelines, cap = h.services.timelines, h.settings.timeline_max
        key = h.services.keys.home_timeline(12345)
        await timelines.store_timeline(key, list(range(1000, 1000 + cap)))
        async with h.services.redis.pipeline(transaction=False) as pipe:
            timelines.add_to_timelines(pipe, [key], [5000, 5001])
            timelines.add_to_timelines(pipe, [key], [10])  # older than everything: trimmed at once
            await pipe.execute()
        members = await h.services.redis.zrange(key, 0, -1)
        assert members[-1] == TIMELINE_SENTINEL and len(members) == cap + 1
        ids, _ = decode_members(members)
        assert ids == [5001, 5000, *range(1000 + cap - 1, 1000 + 1, -1)]
        assert await h.services.redis.object("encoding", key) == b"listpack"
        async with h.services.redis.pipeline(transaction=False) as pipe:
            timelines.queue_page(pipe, key, 5000, 3)
            timelines.queue_page(pipe, key, 1003, 5)
            after_cursor, at_the_end = await pipe.execute()
        assert decode_members(after_cursor) == ([1000 + cap - 1, 1000 + cap - 2, 1000 + cap - 3], False)
        assert decode_members(at_the_end) == ([1002], True)


async def test_a_celebrity_fans_page_reads_the_lists_its_last_page_merged_in_its_first_trip(
    redis_url: str,
) -> None:
    async with started(redis_url, celebrity_followers=2) as h:
        api = h.api
        stars = [await api.sign_up(f"star{n}") for n in range(2)]
        fans = [await api.sign_up(f"fan{n}") for n in range(3)]
        for fan in fans:
            await api.follow(fan, stars[0])
        reader = fans[0]
        authored = await post_all(h, stars, rounds=3)
        follows = {reader.id: {stars[0].id}}
        assert await api.whole_feed(reader, page_size=4) == feed_of(reader, follows, authored)
        for _ in range(2):  # warm: the first read fills the caches the second finds
            await page_ids(api, reader)
        with count_round_trips() as guessed:  # the last page merged stars[0]: read with the first
            assert await page_ids(api, reader) == feed_of(reader, follows, authored)
        # On a cluster a pipeline is a send per node it spans: counted here on one server.
        standalone = not h.services.cluster
        assert guessed.mongo == 0 and (guessed.redis <= 3 or not standalone), guessed
        # A guess gone stale (another celebrity followed) reads the lists after the set, as
        # without a guess; the next page guesses right again.
        for fan in fans:
            await api.follow(fan, stars[1])
        follows[reader.id].add(stars[1].id)
        for _ in range(2):
            assert await page_ids(api, reader) == feed_of(reader, follows, authored)
        with count_round_trips() as fresh:
            assert await page_ids(api, reader) == feed_of(reader, follows, authored)
        assert fresh.mongo == 0 and (fresh.redis == guessed.redis or not standalone), (guessed, fresh)


async def page_ids(api: Api, reader: Account) -> list[str]:
    """One page of the benchmark's selection (``test_round_trips.WARM_BUDGET_FEED``)."""
    data = await api.gql(WARM_BUDGET_FEED, {"first": 20}, reader.token)
    return [edge["node"]["id"] for edge in data["homeFeed"]["edges"]]
