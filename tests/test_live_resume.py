"""Resuming a home feed subscription with ``after`` (no gap, no duplicate at the seam) and
``homeFeedEvents``' deletions, over real WebSockets with gql in both protocols."""

from __future__ import annotations

from typing import Any

import pytest
from gql import GraphQLRequest

from starling.store.pubsub.publishing import tweet_event
from tests.api import Account, Api, eventually
from tests.conftest import make_settings
from tests.realtime import PROTOCOLS, Listener, LiveApp, codes, retweet, serve_live

pytestmark = pytest.mark.both_redis_topologies

RESUME = "subscription($after: String) { homeFeed(after: $after) { id text } }"
EVENTS = """
subscription($after: String) {
  homeFeedEvents(after: $after) {
    __typename
    ... on TweetPosted { tweet { id text } }
    ... on TweetDeleted { tweetId }
  }
}
"""
DELETE = "mutation($id: ID!) { deleteTweet(id: $id) }"


async def _in_feed(api: Api, reader: Account, tweet_ids: list[str]) -> None:
    """Wait until the fan-out has put ``tweet_ids`` in the reader's timeline."""

    async def check() -> bool:
        return set(tweet_ids) <= set(await api.whole_feed(reader, page_size=1))

    await eventually(check)


async def _missed_while_away(
    live: LiveApp, protocol: str, count: int
) -> tuple[Account, Account, str, list[str]]:
    """A reader sees one tweet live, leaves, and misses ``count`` more; returns the
    accounts, the last tweet seen and the missed ones, oldest first."""
    api = live.api
    author, reader = await api.sign_up("author"), await api.sign_up("reader")
    await api.follow(reader, author)
    async with Listener(live.client(reader.token, protocol), RESUME) as feed:
        await live.settled(1)
        seen = (await api.post(author, "before the tunnel"))["id"]
        assert (await feed.next())["homeFeed"]["id"] == seen
    await live.settled(0)
    missed = [(await api.post(author, f"missed {n}"))["id"] for n in range(count)]
    await _in_feed(api, reader, missed)
    return author, reader, seen, missed


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_resuming_with_after_delivers_exactly_what_was_missed_then_live_tweets(
    live: LiveApp, protocol: str
) -> None:
    author, reader, seen, missed = await _missed_while_away(live, protocol, 5)
    async with Listener(live.client(reader.token, protocol), RESUME, {"after": seen}) as feed:
        replayed = [(await feed.next())["homeFeed"]["id"] for _ in missed]
        assert replayed == missed  # oldest first, each once
        await live.settled(1)
        # A replayed tweet announced live as well (a fan-out retried at the seam): once.
        channel = live.services.keys.feed_events(int(reader.id))
        await live.services.queue_redis.publish(channel, tweet_event(int(missed[-1])))
        for who, text in ((author, "out of the tunnel"), (reader, "me too")):
            fresh = await live.api.post(who, text)
            assert (await feed.next())["homeFeed"]["id"] == fresh["id"]


async def test_a_subscription_without_after_replays_nothing(live: LiveApp) -> None:
    api = live.api
    me = await api.sign_up("me")
    old = await api.post(me, "old news")
    await _in_feed(api, me, [old["id"]])
    async with Listener(live.client(me.token), RESUME, {"after": None}) as feed:
        await live.settled(1)
        new = await api.post(me, "new")
        assert (await feed.next())["homeFeed"]["id"] == new["id"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_more_missed_than_a_page_replays_the_newest_page_and_says_so(
    redis_url: str, protocol: str
) -> None:
    async with serve_live(make_settings(redis_url, page_size_max=3)) as live:
        _, reader, seen, missed = await _missed_while_away(live, protocol, 5)
        results: list[Any] = []
        async with live.client(reader.token, protocol) as session:
            stream = session.subscribe(
                GraphQLRequest(RESUME, variable_values={"after": seen}), get_execution_result=True
            )
            async for result in stream:
                results.append(result)
                if len(results) == 3:
                    break
            await stream.aclose()
    assert [result.data["homeFeed"]["id"] for result in results] == missed[-3:]
    assert [(result.extensions or {}).get("missed") for result in results] == [True, None, None]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_after_must_be_a_tweet_id(live: LiveApp, protocol: str) -> None:
    me = await live.api.sign_up("me")
    for query in (RESUME, EVENTS):
        async with Listener(live.client(me.token, protocol), query, {"after": "yesterday"}) as refused:
            assert codes(await refused.error()) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_deletion_reaches_online_followers_and_the_author_within_two_seconds(
    live: LiveApp, protocol: str
) -> None:
    api = live.api
    author, reader = await api.sign_up("author"), await api.sign_up("reader")
    await api.follow(reader, author)
    async with (
        Listener(live.client(reader.token, protocol), EVENTS) as follower_feed,
        Listener(live.client(author.token, protocol), EVENTS) as own_feed,
    ):
        await live.settled(2)
        tweet = await api.post(author, "regrettable")
        posted = {"__typename": "TweetPosted", "tweet": {"id": tweet["id"], "text": "regrettable"}}
        assert (await follower_feed.next())["homeFeedEvents"] == posted
        assert (await own_feed.next())["homeFeedEvents"] == posted
        await api.gql(DELETE, {"id": tweet["id"]}, author.token)
        deleted = {"__typename": "TweetDeleted", "tweetId": tweet["id"]}
        assert (await follower_feed.next(within=2.0))["homeFeedEvents"] == deleted
        assert (await own_feed.next(within=2.0))["homeFeedEvents"] == deleted


async def test_deleting_an_original_announces_its_retweets_leaving_feeds(live: LiveApp) -> None:
    api = live.api
    author, fan, reader = await api.sign_up("author"), await api.sign_up("fan"), await api.sign_up("reader")
    await api.follow(reader, fan)  # sees the fan's retweet, not the author
    original = await api.post(author, "worth sharing")
    async with Listener(live.client(reader.token), EVENTS) as feed:
        await live.settled(1)
        copy = await retweet(api, fan, original["id"])
        assert (await feed.next())["homeFeedEvents"]["tweet"]["id"] == copy
        await api.gql(DELETE, {"id": original["id"]}, author.token)
        assert (await feed.next(within=2.0))["homeFeedEvents"] == {
            "__typename": "TweetDeleted",
            "tweetId": copy,
        }


async def test_home_feed_does_not_announce_deletions(live: LiveApp) -> None:
    api = live.api
    me = await api.sign_up("me")
    async with Listener(live.client(me.token), RESUME) as feed:
        await live.settled(1)
        gone = await api.post(me, "gone soon")
        assert (await feed.next())["homeFeed"]["id"] == gone["id"]
        await api.gql(DELETE, {"id": gone["id"]}, me.token)
        kept = await api.post(me, "kept")
        assert (await feed.next())["homeFeed"]["id"] == kept["id"]
