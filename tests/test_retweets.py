"""Retweets over HTTP: fanned out like tweets, idempotent, undone, gone with their original,
and not shown twice on one feed page."""

from __future__ import annotations

from typing import Any

import pytest

from starling.config import Settings
from tests.api import Account, Api, eventually
from tests.conftest import make_settings

pytestmark = pytest.mark.both_redis_topologies

RETWEET = """
mutation($id: ID!) {
  retweet(tweetId: $id) { id text author { handle } retweetOf { id author { handle } } }
}
"""
UNDO = "mutation($id: ID!) { undoRetweet(tweetId: $id) }"
DELETE = "mutation($id: ID!) { deleteTweet(id: $id) }"
STATE = "query($id: ID!) { tweet(id: $id) { id retweetCount viewerHasRetweeted } }"
FEED = """
query($first: Int, $after: String) {
  homeFeed(first: $first, after: $after) {
    edges { node { id text author { handle } retweetOf { id author { handle } } } }
    pageInfo { endCursor }
  }
}
"""


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Small cascade jobs, so taking back a deleted tweet's retweets takes several."""
    return make_settings(redis_url, retweet_cascade_batch=2)


async def retweet(api: Api, who: Account, tweet_id: str) -> dict[str, Any]:
    return (await api.gql(RETWEET, {"id": tweet_id}, who.token))["retweet"]


async def state(api: Api, tweet_id: str, who: Account | None = None) -> dict[str, Any] | None:
    return (await api.gql(STATE, {"id": tweet_id}, who.token if who else None))["tweet"]


async def feed(api: Api, reader: Account, first: int = 20, after: str | None = None) -> list[dict[str, Any]]:
    data = await api.gql(FEED, {"first": first, "after": after}, reader.token)
    return [edge["node"] for edge in data["homeFeed"]["edges"]]


async def feed_ids(api: Api, reader: Account) -> list[str]:
    return [node["id"] for node in await feed(api, reader)]


async def tweets_count(api: Api, who: Account) -> int:
    data = await api.gql("query($h: String!) { user(handle: $h) { tweetsCount } }", {"h": who.handle})
    return data["user"]["tweetsCount"]


async def wait_for_feed(api: Api, reader: Account, expected: list[str]) -> None:
    async def check() -> bool:
        return await feed_ids(api, reader) == expected

    await eventually(check)


async def test_a_retweet_reaches_the_retweeters_followers_once_until_undone(api: Api) -> None:
    author, retweeter, follower = [await api.sign_up(h) for h in ("author", "retweeter", "follower")]
    await api.follow(follower, retweeter)
    original = await api.post(author, "original thought #idea")

    shared = await retweet(api, retweeter, original["id"])
    assert shared["text"] == "original thought #idea"
    assert shared["author"] == {"handle": "retweeter"}
    assert shared["retweetOf"] == {"id": original["id"], "author": {"handle": "author"}}
    assert await retweet(api, retweeter, original["id"]) == shared  # idempotent
    assert await retweet(api, retweeter, shared["id"]) == shared  # a retweet of the retweet
    await wait_for_feed(api, follower, [shared["id"]])
    [node] = await feed(api, follower)
    assert node["retweetOf"] == {"id": original["id"], "author": {"handle": "author"}}

    assert await state(api, original["id"], retweeter) == {
        "id": original["id"],
        "retweetCount": 1,
        "viewerHasRetweeted": True,
    }
    assert (await state(api, shared["id"], retweeter))["viewerHasRetweeted"] is True
    assert (await state(api, original["id"], follower))["viewerHasRetweeted"] is False
    assert (await state(api, original["id"]))["viewerHasRetweeted"] is False
    assert await tweets_count(api, retweeter) == 1

    assert await api.gql(UNDO, {"id": original["id"]}, retweeter.token) == {"undoRetweet": True}
    assert await api.gql(UNDO, {"id": original["id"]}, retweeter.token) == {"undoRetweet": False}
    await wait_for_feed(api, follower, [])
    assert await state(api, original["id"], retweeter) == {
        "id": original["id"],
        "retweetCount": 0,
        "viewerHasRetweeted": False,
    }
    assert await tweets_count(api, retweeter) == 0

    again = await retweet(api, retweeter, original["id"])
    assert again["id"] != shared["id"]
    await wait_for_feed(api, follower, [again["id"]])


async def test_deleting_the_original_removes_its_retweets(api: Api) -> None:
    author, retweeter = await api.sign_up("author"), await api.sign_up("retweeter")
    fan_of_author, fan_of_retweeter = await api.sign_up("fan1"), await api.sign_up("fan2")
    await api.follow(fan_of_author, author)
    await api.follow(fan_of_retweeter, retweeter)
    original = await api.post(author, "regrettable")
    shared = await retweet(api, retweeter, original["id"])
    others = [await api.sign_up(f"other{n}") for n in range(4)]
    for other in others:
        await retweet(api, other, original["id"])
    assert (await state(api, original["id"]))["retweetCount"] == 5
    await wait_for_feed(api, fan_of_author, [original["id"]])
    await wait_for_feed(api, fan_of_retweeter, [shared["id"]])

    assert await api.gql(DELETE, {"id": original["id"]}, author.token) == {"deleteTweet": True}
    assert await feed_ids(api, fan_of_author) == []
    assert await feed_ids(api, fan_of_retweeter) == []  # hidden at once, retracted by a job

    async def retracted() -> bool:  # five retweets, two per job
        counts = [await tweets_count(api, who) for who in [retweeter, *others]]
        return await state(api, shared["id"]) is None and counts == [0] * 5

    await eventually(retracted)
    assert await tweets_count(api, author) == 0
    profile = await api.gql('{ user(handle: "retweeter") { tweets { nodes { id } } } }')
    assert profile["user"]["tweets"]["nodes"] == []
    # The retweeter can still undo (nothing left) and cannot retweet a deleted tweet.
    assert await api.gql(UNDO, {"id": original["id"]}, retweeter.token) == {"undoRetweet": False}
    assert await api.error_codes(RETWEET, {"id": original["id"]}, retweeter.token) == ["NOT_FOUND"]


async def test_a_feed_page_shows_an_original_once(api: Api) -> None:
    author, outsider = await api.sign_up("author"), await api.sign_up("outsider")
    first_rt, second_rt, reader = [await api.sign_up(h) for h in ("early", "late", "reader")]
    for followee in (author, first_rt, second_rt):
        await api.follow(reader, followee)
    original = await api.post(author, "seen already")
    retweet_of_seen = await retweet(api, first_rt, original["id"])
    news = await api.post(outsider, "news from afar")
    early = await retweet(api, first_rt, news["id"])
    late = await retweet(api, second_rt, news["id"])

    async def delivered() -> bool:
        return len(await feed(api, reader, first=1)) == 1 and await feed_ids(api, reader) == [
            early["id"],
            original["id"],
        ]

    # On one page: the original hides its retweet, the earlier retweet hides the later one.
    await eventually(delivered)
    # On pages of one tweet nothing is hidden: the window is the page.
    seen, after = [], None
    for _ in range(4):
        data = await api.gql(FEED, {"first": 1, "after": after}, reader.token)
        seen += [edge["node"]["id"] for edge in data["homeFeed"]["edges"]]
        after = data["homeFeed"]["pageInfo"]["endCursor"]
    assert seen == [late["id"], early["id"], retweet_of_seen["id"], original["id"]]


async def test_retweet_rules_and_errors(api: Api) -> None:
    author, fan = await api.sign_up("author"), await api.sign_up("fan")
    tweet = await api.post(author, "mine")
    own = await retweet(api, author, tweet["id"])  # allowed, as on Twitter
    assert own["retweetOf"]["id"] == tweet["id"]
    assert (await state(api, tweet["id"]))["retweetCount"] == 1

    shared = await retweet(api, fan, tweet["id"])
    assert (await state(api, tweet["id"]))["retweetCount"] == 2
    # Deleting your retweet is undoing it.
    assert await api.error_codes(DELETE, {"id": shared["id"]}, author.token) == ["FORBIDDEN"]
    assert await api.gql(DELETE, {"id": shared["id"]}, fan.token) == {"deleteTweet": True}
    assert (await state(api, tweet["id"], fan))["retweetCount"] == 1
    assert (await state(api, tweet["id"], fan))["viewerHasRetweeted"] is False
    assert (await retweet(api, fan, tweet["id"]))["id"] != shared["id"]

    assert await api.error_codes(RETWEET, {"id": tweet["id"]}) == ["UNAUTHENTICATED"]
    assert await api.error_codes(RETWEET, {"id": "x"}, fan.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(RETWEET, {"id": "424242"}, fan.token) == ["NOT_FOUND"]
    assert await api.error_codes(UNDO, {"id": "424242"}, fan.token) == ["NOT_FOUND"]
    assert await api.error_codes(UNDO, {"id": "x"}, fan.token) == ["BAD_USER_INPUT"]
