"""Issue 2's end-to-end flow over HTTP: follow, post, page the home feed, delete."""

from __future__ import annotations

import pytest

from tests.api import Api, eventually

pytestmark = pytest.mark.both_redis_topologies


async def test_followers_feed_pages_newest_first_and_deletion(api: Api) -> None:
    a, b, c = [await api.sign_up(handle) for handle in ("ann", "bob", "cat")]
    await api.follow(b, a)
    posted = [(await api.post(a, f"tweet number {n}"))["id"] for n in range(25)]
    newest_first = list(reversed(posted))

    async def b_has_all() -> bool:
        return len(await api.whole_feed(b)) == 25

    await eventually(b_has_all)

    pages, after = [], None
    for expected_size in (10, 10, 5):
        page = await api.feed_page(b, first=10, after=after)
        pages.append(page)
        assert len(page["edges"]) == expected_size
        after = page["pageInfo"]["endCursor"]
    seen = [edge["node"]["id"] for page in pages for edge in page["edges"]]
    assert seen == newest_first
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
    assert pages[0]["edges"][0]["node"]["author"]["handle"] == "ann"

    assert await api.whole_feed(c) == []
    assert await api.whole_feed(a) == newest_first

    doomed = posted[7]
    codes = await api.error_codes("mutation($id: ID!) { deleteTweet(id: $id) }", {"id": doomed}, b.token)
    assert codes == ["FORBIDDEN"]
    deleted = await api.gql("mutation($id: ID!) { deleteTweet(id: $id) }", {"id": doomed}, a.token)
    assert deleted == {"deleteTweet": True}
    assert doomed not in await api.whole_feed(b)
    assert doomed not in await api.whole_feed(a)
    assert await api.gql("query($id: ID!) { tweet(id: $id) { id } }", {"id": doomed}) == {"tweet": None}
    profile = await api.gql('{ user(handle: "ANN") { tweetsCount tweets(first: 100) { nodes { id } } } }')
    assert profile["user"]["tweetsCount"] == 24
    assert len(profile["user"]["tweets"]["nodes"]) == 24


async def test_cursor_stays_correct_while_new_tweets_arrive(api: Api) -> None:
    a, b = await api.sign_up("writer"), await api.sign_up("reader")
    await api.follow(b, a)
    first_batch = [(await api.post(a, f"old {n}"))["id"] for n in range(6)]

    async def delivered() -> bool:
        return len(await api.whole_feed(b)) == 6

    await eventually(delivered)
    page1 = await api.feed_page(b, first=3)
    for n in range(4):  # arrive between page 1 and page 2
        await api.post(a, f"new {n}")
    page2 = await api.feed_page(b, first=3, after=page1["pageInfo"]["endCursor"])
    seen = [e["node"]["id"] for e in page1["edges"] + page2["edges"]]
    assert seen == list(reversed(first_batch))
    assert page2["pageInfo"]["hasNextPage"] is False


async def test_follow_is_idempotent_and_counts_stay_right(api: Api) -> None:
    a, b = await api.sign_up("star"), await api.sign_up("fan")
    for _ in range(3):
        followee = await api.follow(b, a)
    assert followee == {"id": a.id, "followersCount": 1, "viewerIsFollowing": True}
    fan = await api.gql(
        '{ user(handle: "fan") { followingCount following { nodes { handle } } '
        "followers { nodes { handle } } } }"
    )
    assert fan["user"]["followingCount"] == 1
    assert fan["user"]["following"]["nodes"] == [{"handle": "star"}]
    star = await api.gql('{ user(handle: "star") { followsViewer viewerIsFollowing } }', token=b.token)
    assert star["user"] == {"followsViewer": False, "viewerIsFollowing": True}
    for _ in range(2):
        unfollowed = await api.unfollow(b, a)
    assert unfollowed == {"id": a.id, "followersCount": 0, "viewerIsFollowing": False}


async def test_tweet_fields(api: Api) -> None:
    a = await api.sign_up("Writer_1")
    await api.sign_up("friend")
    tweet = await api.post(a, "  Hi @friend and @ghost! #Python #python #GraphQL  ")
    assert tweet["text"] == "Hi @friend and @ghost! #Python #python #GraphQL"
    assert tweet["hashtags"] == ["python", "graphql"]
    assert tweet["mentions"] == [{"handle": "friend"}]
    assert tweet["url"] == f"https://starling.test/Writer_1/status/{tweet['id']}"
    assert tweet["createdAt"].endswith("+00:00")
