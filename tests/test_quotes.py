"""Quote tweets and content warnings, end to end over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import Account, Api, eventually
from tests.realtime import retweet
from tests.test_notifications import notifications_of

POST = """mutation($t: String!, $q: ID, $s: Boolean, $w: String) {
  postTweet(text: $t, quoteOf: $q, sensitive: $s, spoilerText: $w) {
    id text sensitive spoilerText quoteOf { id text } quotedTweetUnavailable quoteCount
  }
}"""
TWEET = """query($id: ID!) { tweet(id: $id) {
  id sensitive spoilerText quoteCount quoteOf { id } quotedTweetUnavailable
  quotes { edges { node { id quoteOf { id } } } }
} }"""


async def post(api: Api, who: Account, text: str, **options: Any) -> dict[str, Any]:
    variables = {
        "t": text,
        "q": options.get("quote_of"),
        "s": options.get("sensitive"),
        "w": options.get("spoiler"),
    }
    return (await api.gql(POST, variables, who.token))["postTweet"]


async def tweet(api: Api, tweet_id: str, viewer: Account | None = None) -> dict[str, Any] | None:
    return (await api.gql(TWEET, {"id": tweet_id}, viewer.token if viewer else None))["tweet"]


async def test_content_warnings_are_stored_validated_and_follow_retweets(api: Api) -> None:
    me = await api.sign_up("me")
    plain = await post(api, me, "plain")
    assert (plain["sensitive"], plain["spoilerText"]) == (False, None)
    flagged = await post(api, me, "graphic", sensitive=True)
    assert (flagged["sensitive"], flagged["spoilerText"]) == (True, None)
    # Cleaned like text: trimmed and NFC ("e" + combining acute becomes "\u00e9").
    spoiler = await post(api, me, "the butler did it", spoiler=" Ende\u0301 spoilers ")
    assert (spoiler["sensitive"], spoiler["spoilerText"]) == (True, "End\u00e9 spoilers")
    stored = await tweet(api, spoiler["id"])
    assert stored is not None and (stored["sensitive"], stored["spoilerText"]) == (True, "End\u00e9 spoilers")
    shared = await retweet(api, me, spoiler["id"])
    as_retweet = (
        await api.gql("query($id: ID!) { tweet(id: $id) { sensitive spoilerText } }", {"id": shared})
    )["tweet"]
    assert as_retweet == {"sensitive": True, "spoilerText": stored["spoilerText"]}


@pytest.mark.parametrize("spoiler", ["", "   ", "x" * 101, "bad\u0000char"])
async def test_a_bad_spoiler_text_is_bad_user_input(api: Api, spoiler: str) -> None:
    me = await api.sign_up("me")
    codes = await api.error_codes(POST, {"t": "hello", "w": spoiler}, me.token)
    assert codes == ["BAD_USER_INPUT"]


async def test_a_quote_embeds_counts_lists_and_notifies(api: Api) -> None:
    author, quoter = await api.sign_up("author"), await api.sign_up("quoter")
    original = await api.post(author, "quote me")
    quote = await post(api, quoter, "well said", quote_of=original["id"])
    assert quote["quoteOf"] == {"id": original["id"], "text": "quote me"}
    assert quote["quotedTweetUnavailable"] is False
    shared = await retweet(api, quoter, original["id"])
    via_retweet = await post(api, quoter, "again", quote_of=shared)  # quoting a retweet quotes its original
    assert via_retweet["quoteOf"]["id"] == original["id"]
    seen = await tweet(api, original["id"])
    assert seen is not None and seen["quoteCount"] == 2
    assert [edge["node"]["id"] for edge in seen["quotes"]["edges"]] == [via_retweet["id"], quote["id"]]

    async def notified() -> bool:
        page = await notifications_of(api, author)
        return any(edge["node"]["kind"] == "QUOTE" for edge in page["notifications"]["edges"])

    await eventually(notified)
    await api.gql("mutation($id: ID!) { deleteTweet(id: $id) }", {"id": via_retweet["id"]}, quoter.token)
    seen = await tweet(api, original["id"])
    assert seen is not None and seen["quoteCount"] == 1


async def test_a_quoted_tweet_deleted_later_is_unavailable(api: Api) -> None:
    author, quoter = await api.sign_up("author"), await api.sign_up("quoter")
    original = await api.post(author, "soon gone")
    quote = await post(api, quoter, "look", quote_of=original["id"])
    await api.gql("mutation($id: ID!) { deleteTweet(id: $id) }", {"id": original["id"]}, author.token)
    seen = await tweet(api, quote["id"])
    assert seen is not None and (seen["quoteOf"], seen["quotedTweetUnavailable"]) == (None, True)


async def test_quoting_a_deleted_unknown_or_blocked_tweet_is_not_found(api: Api) -> None:
    author, quoter = await api.sign_up("author"), await api.sign_up("quoter")
    gone = await api.post(author, "gone")
    await api.gql("mutation($id: ID!) { deleteTweet(id: $id) }", {"id": gone["id"]}, author.token)
    blocked = await api.post(author, "not for you")
    await api.gql("mutation($id: ID!) { block(userId: $id) { id } }", {"id": quoter.id}, author.token)
    for target in (gone["id"], "123", blocked["id"]):
        assert await api.error_codes(POST, {"t": "hm", "q": target}, quoter.token) == ["NOT_FOUND"]
    assert await api.error_codes(POST, {"t": "hm", "q": "nope"}, quoter.token) == ["BAD_USER_INPUT"]
