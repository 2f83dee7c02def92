"""search, searchUsers and trends over HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette

from starling.config import Settings
from starling.resolvers.search import prefix_range
from starling.resolvers.text import search_terms, words_in
from starling.resolvers.tweets import new_tweet_document
from starling.store import trends as trend_counts
from starling.store.ids import lowest_id_at
from starling.store.monitoring import count_round_trips
from tests.api import PASSWORD, Account, Api
from tests.conftest import make_settings
from tests.harness import started

SEARCH = """
query($q: String!, $first: Int, $after: String) {
  search(query: $q, first: $first, after: $after) {
    edges { cursor node { id text author { handle } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
SEARCH_USERS = (
    "query($q: String!, $first: Int) { searchUsers(query: $q, first: $first) { handle displayName } }"
)
TRENDS = "query($limit: Int) { trends(limit: $limit) { hashtag tweetCount } }"
RETWEET = "mutation($id: ID!) { retweet(tweetId: $id) { id } }"
DELETE = "mutation($id: ID!) { deleteTweet(id: $id) }"
SIGN_UP = """
mutation($h: String!, $p: String!, $n: String) { signUp(handle: $h, password: $p, displayName: $n) { token } }
"""
RENAME = "mutation($n: String!) { updateProfile(displayName: $n) { displayName } }"


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Trends uncached, so each test sees its latest tweets at once."""
    return make_settings(redis_url, trends_cache_seconds=0)


async def found(api: Api, query: str, first: int = 20) -> list[str]:
    """The texts ``search`` finds for ``query``, newest first (one page)."""
    data = await api.gql(SEARCH, {"q": query, "first": first})
    return [edge["node"]["text"] for edge in data["search"]["edges"]]


async def handles(api: Api, query: str, first: int | None = None) -> list[str]:
    variables: dict[str, Any] = {"q": query} if first is None else {"q": query, "first": first}
    return [user["handle"] for user in (await api.gql(SEARCH_USERS, variables))["searchUsers"]]


async def trending(api: Api, limit: int | None = None) -> list[tuple[str, int]]:
    data = await api.gql(TRENDS, {} if limit is None else {"limit": limit})
    return [(trend["hashtag"], trend["tweetCount"]) for trend in data["trends"]]


# -- tokenising ---------------------------------------------------------------------------


def test_words_are_whole_lower_cased_nfc_and_distinct() -> None:
    assert words_in("Café CAFE\u0301 café, #Coffee @Ann don't") == ["café", "coffee", "ann", "don", "t"]


def test_query_terms_split_into_hashtags_and_words() -> None:
    assert search_terms("Rust #Async, rust tokio #ASYNC!") == (["async"], ["rust", "tokio"])
    assert search_terms("... # !") == ([], [])


def test_prefix_range_holds_exactly_the_strings_with_the_prefix() -> None:
    assert prefix_range("ab") == {"$gte": "ab", "$lt": "ac"}
    assert prefix_range("a\ud7ff") == {"$gte": "a\ud7ff", "$lt": "a\ue000"}
    assert prefix_range("a\U0010ffff") == {"$gte": "a\U0010ffff", "$lt": "b"}
    assert prefix_range("\U0010ffff") == {"$gte": "\U0010ffff"}


# -- search -------------------------------------------------------------------------------


async def test_search_matches_whole_words_and_hashtags_case_insensitively(api: Api) -> None:
    ann = await api.sign_up("ann")
    await api.post(ann, "Learning Rust today #Programming")
    await api.post(ann, "rusty nails everywhere")
    await api.post(ann, "Python and RUST are friends #python")
    assert await found(api, "rust") == [
        "Python and RUST are friends #python",
        "Learning Rust today #Programming",
    ]
    assert await found(api, "RUSTY") == ["rusty nails everywhere"]
    assert await found(api, "#programming") == ["Learning Rust today #Programming"]
    # A hashtag's body is a word of the text; a plain word is not a hashtag.
    assert await found(api, "programming") == ["Learning Rust today #Programming"]
    assert await found(api, "#rust") == []


async def test_every_term_is_required(api: Api) -> None:
    ann = await api.sign_up("ann")
    await api.post(ann, "rust and python #lang")
    await api.post(ann, "rust alone #lang")
    await api.post(ann, "python alone")
    assert await found(api, "python rust") == ["rust and python #lang"]
    assert await found(api, "rust #lang") == ["rust alone #lang", "rust and python #lang"]
    assert await found(api, "python #lang") == ["rust and python #lang"]
    assert await found(api, "python #other") == []


async def test_deleted_tweets_and_retweets_are_not_found(api: Api) -> None:
    ann, bob = await api.sign_up("ann"), await api.sign_up("bob")
    kept = await api.post(ann, "searchable news")
    gone = await api.post(ann, "searchable gossip")
    await api.gql(RETWEET, {"id": kept["id"]}, bob.token)
    await api.gql(DELETE, {"id": gone["id"]}, ann.token)
    data = await api.gql(SEARCH, {"q": "searchable"})
    assert [(e["node"]["id"], e["node"]["author"]["handle"]) for e in data["search"]["edges"]] == [
        (kept["id"], "ann")
    ]


async def test_paging_returns_every_match_once_newest_first(api: Api) -> None:
    ann = await api.sign_up("ann")
    posted = [(await api.post(ann, f"page test {n}"))["id"] for n in range(7)]
    await api.post(ann, "unrelated")
    ids: list[str] = []
    after = None
    while True:
        page = (await api.gql(SEARCH, {"q": "page", "first": 3, "after": after}))["search"]
        ids.extend(edge["node"]["id"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["edges"][-1]["cursor"] == page["pageInfo"]["endCursor"]
        after = page["pageInfo"]["endCursor"]
    assert ids == list(reversed(posted))


@pytest.mark.parametrize(
    "variables",
    [
        {"q": ""},
        {"q": "   "},
        {"q": "?!, #"},
        {"q": "x" * 101},
        {"q": "ok", "first": 0},
        {"q": "ok", "first": 101},
        {"q": "ok", "after": "not-a-cursor"},
    ],
)
async def test_bad_searches_are_bad_user_input(api: Api, variables: dict[str, Any]) -> None:
    assert await api.error_codes(SEARCH, variables) == ["BAD_USER_INPUT"]


# -- searchUsers --------------------------------------------------------------------------


async def sign_up_named(api: Api, handle: str, display_name: str) -> str:
    data = await api.gql(SIGN_UP, {"h": handle, "p": PASSWORD, "n": display_name})
    return data["signUp"]["token"]


async def test_handles_match_first_then_display_names_once_each(api: Api) -> None:
    await sign_up_named(api, "sam_b", "Zed")
    await sign_up_named(api, "SAM_A", "Samantha")  # handle and display name: listed once
    await sign_up_named(api, "zoe", "samuel Z")
    await sign_up_named(api, "abe", "Sammy")
    await sign_up_named(api, "other", "Nobody")
    assert await handles(api, "sam") == ["SAM_A", "sam_b", "abe", "zoe"]
    assert await handles(api, "@Sam") == ["SAM_A", "sam_b", "abe", "zoe"]
    assert await handles(api, "samu") == ["zoe"]
    assert await handles(api, "sam", first=3) == ["SAM_A", "sam_b", "abe"]
    assert await handles(api, "sam", first=1) == ["SAM_A"]
    assert await handles(api, "nomatch") == []


async def test_display_name_prefixes_follow_profile_updates(api: Api) -> None:
    token = await sign_up_named(api, "ann", "Ann")
    await api.gql(RENAME, {"n": "Émilie Ann"}, token)
    assert await handles(api, "émi") == ["ann"]
    assert await handles(api, "ÉMILIE a") == ["ann"]
    assert await handles(api, "Ann") == ["ann"]  # still the handle
    await api.gql(RENAME, {"n": "Zoë"}, token)
    assert await handles(api, "émi") == []


async def test_the_default_is_ten_users(api: Api) -> None:
    for n in range(12):
        await api.sign_up(f"user{n:02d}")
    assert await handles(api, "user") == [f"user{n:02d}" for n in range(10)]


@pytest.mark.parametrize(
    "variables",
    [{"q": ""}, {"q": "@"}, {"q": " @ "}, {"q": "x" * 101}, {"q": "a", "first": 0}, {"q": "a", "first": 101}],
)
async def test_bad_user_searches_are_bad_user_input(api: Api, variables: dict[str, Any]) -> None:
    assert await api.error_codes(SEARCH_USERS, variables) == ["BAD_USER_INPUT"]


# -- trends -------------------------------------------------------------------------------


async def post_old_tweet(app: Starlette, author: Account, text: str, hours_ago: float) -> None:
    """A tweet whose snowflake ID (its time) lies ``hours_ago`` in the past."""
    services = app.state.services
    doc = new_tweet_document(services, int(author.id), text, [])
    doc["_id"] = lowest_id_at(int((time.time() - hours_ago * 3600) * 1000)) + 1
    await services.db.tweets.insert_one(doc)
    await trend_counts.record(services, doc["_id"], doc["hashtags"], 1)  # as publishing does


async def test_trends_count_recent_live_original_tweets(api: Api, app: Starlette) -> None:
    ann, bob = await api.sign_up("ann"), await api.sign_up("bob")
    await api.post(ann, "#rust #python")
    await api.post(bob, "#Rust again")
    await api.post(bob, "#rust thrice #go")
    popular = await api.post(ann, "#python #go")
    await api.gql(RETWEET, {"id": popular["id"]}, bob.token)  # not counted twice
    gone = await api.post(ann, "#deleted")
    await api.gql(DELETE, {"id": gone["id"]}, ann.token)
    await post_old_tweet(app, ann, "#stale #rust", hours_ago=25)
    await post_old_tweet(app, ann, "#fresh", hours_ago=23)
    assert await trending(api) == [("rust", 3), ("go", 2), ("python", 2), ("fresh", 1)]
    assert await trending(api, limit=2) == [("rust", 3), ("go", 2)]


async def test_no_recent_hashtags_no_trends(api: Api, app: Starlette) -> None:
    ann = await api.sign_up("ann")
    await api.post(ann, "no tags here")
    await post_old_tweet(app, ann, "#stale", hours_ago=48)
    assert await trending(api) == []


async def test_trends_issue_no_mongodb_command(api: Api) -> None:
    ann = await api.sign_up("ann")
    await api.post(ann, "#quiet #mongo")
    with count_round_trips() as trips:
        assert await trending(api) == [("mongo", 1), ("quiet", 1)]
    assert trips.mongo == 0, trips.mongo_commands
    assert trips.redis >= 1


@pytest.mark.parametrize("limit", [0, 51, -1])
async def test_bad_trend_limits_are_bad_user_input(api: Api, limit: int) -> None:
    assert await api.error_codes(TRENDS, {"limit": limit}) == ["BAD_USER_INPUT"]


@pytest.fixture
async def cached_api(redis_url: str) -> AsyncIterator[Api]:
    async with started(redis_url, trends_cache_seconds=60) as h:
        yield h.api


async def test_trends_are_cached_for_their_lifetime(cached_api: Api) -> None:
    ann = await cached_api.sign_up("ann")
    await cached_api.post(ann, "#first #second #second_too")
    assert await trending(cached_api, limit=1) == [("first", 1)]
    await cached_api.post(ann, "#second")
    # Within the cache lifetime the earlier answer stands, for any limit.
    assert await trending(cached_api) == [("first", 1), ("second", 1), ("second_too", 1)]


async def test_users_a_block_stands_between_are_not_found_either_way(api: Api) -> None:
    block = "mutation($id: ID!) { block(userId: $id) { id } }"
    viewer = await api.sign_up("seeker")
    blocked, blocker = await api.sign_up("sam_blocked"), await api.sign_up("sam_blocker")
    await api.sign_up("sam_free")
    await api.gql(block, {"id": blocked.id}, viewer.token)
    await api.gql(block, {"id": viewer.id}, blocker.token)
    found = await api.gql(SEARCH_USERS, {"q": "sam"}, viewer.token)
    assert [user["handle"] for user in found["searchUsers"]] == ["sam_free"]
    assert await handles(api, "sam") == ["sam_blocked", "sam_blocker", "sam_free"]  # anonymous
