"""Bookmarks: idempotent, newest bookmark first, private, batched viewer state."""

from __future__ import annotations

from typing import Any

from starling.store.monitoring import count_round_trips
from tests.api import Account, Api
from tests.realtime import retweet

BOOKMARK = "mutation($t: ID!) {{ {verb}(tweetId: $t) {{ id viewerHasBookmarked }} }}"
MINE = """query($first: Int, $after: String) { viewer { bookmarks(first: $first, after: $after) {
  edges { node { id viewerHasBookmarked } } pageInfo { hasNextPage endCursor } } } }"""


async def mark(api: Api, who: Account, verb: str, tweet_id: str) -> dict[str, Any]:
    return (await api.gql(BOOKMARK.format(verb=verb), {"t": tweet_id}, who.token))[verb]


async def listed(api: Api, who: Account, first: int = 20, after: str | None = None) -> dict[str, Any]:
    return (await api.gql(MINE, {"first": first, "after": after}, who.token))["viewer"]["bookmarks"]


async def test_bookmarks_are_idempotent_newest_first_and_paged(api: Api) -> None:
    me, author = await api.sign_up("me"), await api.sign_up("author")
    tweets = [await api.post(author, f"tweet {n}") for n in range(3)]
    for tweet in (tweets[1], tweets[0], tweets[2], tweets[0]):
        assert await mark(api, me, "bookmark", tweet["id"]) == {
            "id": tweet["id"],
            "viewerHasBookmarked": True,
        }
    first = await listed(api, me, first=2)
    assert [edge["node"] for edge in first["edges"]] == [
        {"id": tweets[2]["id"], "viewerHasBookmarked": True},
        {"id": tweets[0]["id"], "viewerHasBookmarked": True},
    ]
    rest = await listed(api, me, after=first["pageInfo"]["endCursor"])
    assert [edge["node"]["id"] for edge in rest["edges"]] == [tweets[1]["id"]]
    for _ in range(2):
        assert await mark(api, me, "unbookmark", tweets[0]["id"]) == {
            "id": tweets[0]["id"],
            "viewerHasBookmarked": False,
        }
    assert len((await listed(api, me))["edges"]) == 2


async def test_bookmarking_a_retweet_bookmarks_its_original_and_deleted_tweets_drop_out(api: Api) -> None:
    me, author = await api.sign_up("me"), await api.sign_up("author")
    original = await api.post(author, "original")
    shared = await retweet(api, author, original["id"])
    assert (await mark(api, me, "bookmark", shared))["viewerHasBookmarked"] is True
    assert [edge["node"]["id"] for edge in (await listed(api, me))["edges"]] == [original["id"]]
    await api.gql("mutation($id: ID!) { deleteTweet(id: $id) }", {"id": original["id"]}, author.token)
    assert (await listed(api, me))["edges"] == []


async def test_bookmarks_are_private(api: Api) -> None:
    me, other = await api.sign_up("me"), await api.sign_up("other")
    tweet = await api.post(other, "mark me")
    await mark(api, me, "bookmark", tweet["id"])
    query = 'query { user(handle: "me") { bookmarks { edges { node { id } } } } }'
    assert await api.error_codes(query, token=other.token) == ["FORBIDDEN"]
    assert await api.error_codes(query) == ["UNAUTHENTICATED"]
    seen = await api.gql(
        "query($t: ID!) { tweet(id: $t) { viewerHasBookmarked } }", {"t": tweet["id"]}, other.token
    )
    assert seen["tweet"]["viewerHasBookmarked"] is False
    anonymous = await api.gql("query($t: ID!) { tweet(id: $t) { viewerHasBookmarked } }", {"t": tweet["id"]})
    assert anonymous["tweet"]["viewerHasBookmarked"] is False


async def test_bookmark_errors(api: Api) -> None:
    me = await api.sign_up("me")
    for verb in ("bookmark", "unbookmark"):
        mutation = BOOKMARK.format(verb=verb)
        assert await api.error_codes(mutation, {"t": "nope"}, me.token) == ["BAD_USER_INPUT"]
        assert await api.error_codes(mutation, {"t": "123"}, me.token) == ["NOT_FOUND"]
        assert await api.error_codes(mutation, {"t": "123"}) == ["UNAUTHENTICATED"]


async def test_viewer_has_bookmarked_is_one_batch_for_a_feed_page(api: Api) -> None:
    me = await api.sign_up("me")
    tweets = [await api.post(me, f"tweet {n}") for n in range(30)]
    for tweet in tweets[::3]:
        await mark(api, me, "bookmark", tweet["id"])
    query = "query($first: Int) { homeFeed(first: $first) { edges { node { id viewerHasBookmarked } } } }"
    counts = {}
    for first in (5, 30):
        await api.gql(query, {"first": first}, me.token)
        with count_round_trips() as trips:
            data = await api.gql(query, {"first": first}, me.token)
        counts[first] = trips.mongo
        marked = {
            edge["node"]["id"] for edge in data["homeFeed"]["edges"] if edge["node"]["viewerHasBookmarked"]
        }
        assert marked == {tweet["id"] for tweet in tweets[::3]} & {
            e["node"]["id"] for e in data["homeFeed"]["edges"]
        }
    assert counts[5] == counts[30]
