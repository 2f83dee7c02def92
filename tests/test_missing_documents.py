"""A missing related document (a tweet's author, a commenter) drops or nulls that one item,
never the whole answer (issue 10: one bad record made `search` answer `data: null`)."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette

from starling.store import user_cache
from tests.api import Account, Api, eventually
from tests.realtime import comment, retweet

TWEET = """
id text author { handle } url
retweetOf { id author { handle } }
comments { nodes { text author { handle } } }
"""
SEARCH = f"query($q: String!) {{ search(query: $q) {{ edges {{ cursor node {{ {TWEET} }} }} }} }}"
FEED = f"{{ homeFeed {{ nodes {{ {TWEET} }} pageInfo {{ hasNextPage }} }} }}"
USER_TWEETS = f'{{ user(handle: "reader") {{ tweets {{ nodes {{ {TWEET} }} }} }} }}'
ONE = f"query($id: ID!) {{ tweet(id: $id) {{ {TWEET} }} }}"
IDS_ONLY = "query($q: String!) { search(query: $q) { nodes { id } } }"


async def erase_user(app: Starlette, account: Account) -> None:
    """Delete the user's document directly in MongoDB, as a bad migration or a partial
    restore would; nothing in Starling deletes users."""
    result = await app.state.services.db.users.delete_one({"_id": int(account.id)})
    assert result.deleted_count == 1
    # Its cached profile would answer for it until USER_CACHE_TTL_SECONDS (store.user_cache).
    await user_cache.forget(app.state.services, int(account.id))


async def test_a_tweet_whose_author_is_missing_drops_out_of_pages_and_nulls_references(
    app: Starlette, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    reader, ghost, friend = [await api.sign_up(name) for name in ("reader", "ghost", "friend")]
    await api.follow(reader, friend)  # not the ghost: the reader's retweet brings it in
    haunted = await api.post(ghost, "haunted words #spooky")
    fine = await api.post(friend, "friendly words #spooky")
    shared = await retweet(api, reader, haunted["id"])  # the reader's retweet of the ghost's tweet
    await comment(api, friend, fine["id"], "a comment by a friend")
    await comment(api, ghost, fine["id"], "a comment by the ghost")
    own = await api.post(reader, "words of the reader")

    async def delivered() -> bool:
        return len(await api.whole_feed(reader)) == 3

    await eventually(delivered)
    await erase_user(app, ghost)

    with caplog.at_level(logging.WARNING, logger="starling.schema.types"):
        found = await api.gql(SEARCH, {"q": "words"})
        feed = await api.gql(FEED, token=reader.token)
        tweets = await api.gql(USER_TWEETS)

    # search: the ghost's tweet is gone, the others answer in full.
    nodes = [edge["node"] for edge in found["search"]["edges"]]
    assert [node["id"] for node in nodes] == [own["id"], fine["id"]]
    assert [c["text"] for c in nodes[1]["comments"]["nodes"]] == ["a comment by a friend"]
    # homeFeed: the reader's retweet stays (its author exists), its original is null.
    feed_nodes = feed["homeFeed"]["nodes"]
    assert [node["id"] for node in feed_nodes] == [own["id"], shared, fine["id"]]
    assert feed_nodes[1]["retweetOf"] is None
    # user.tweets: the same retweet, the same null.
    assert [node["id"] for node in tweets["user"]["tweets"]["nodes"]] == [own["id"], shared]
    assert tweets["user"]["tweets"]["nodes"][1]["retweetOf"] is None
    # tweet(id): null, not an error.
    assert await api.gql(ONE, {"id": haunted["id"]}) == {"tweet": None}
    # A selection that does not load authors shows it: nothing it asked for is missing, and
    # checking would cost every such page a users read.
    ids = await api.gql(IDS_ONLY, {"q": "haunted"})
    assert ids == {"search": {"nodes": [{"id": haunted["id"]}]}}
    assert any("author is missing" in record.getMessage() for record in caplog.records)
