"""Comments over HTTP: oldest first, counted, deletable by their author or the tweet's."""

from __future__ import annotations

from typing import Any

from tests.api import Account, Api

ADD = """
mutation($id: ID!, $text: String!) {
  addComment(tweetId: $id, text: $text) { id text createdAt author { handle } tweet { id commentCount } }
}
"""
DELETE = "mutation($id: ID!) { deleteComment(id: $id) }"
COMMENTS = """
query($id: ID!, $first: Int, $after: String) {
  tweet(id: $id) {
    commentCount
    comments(first: $first, after: $after) {
      edges { cursor node { id text author { handle } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


async def comment(api: Api, who: Account, tweet_id: str, text: str) -> dict[str, Any]:
    return (await api.gql(ADD, {"id": tweet_id, "text": text}, who.token))["addComment"]


async def comments_of(api: Api, tweet_id: str, first: int = 20, after: str | None = None) -> dict[str, Any]:
    return (await api.gql(COMMENTS, {"id": tweet_id, "first": first, "after": after}))["tweet"]


async def test_comments_come_back_oldest_first_with_their_count(api: Api) -> None:
    author, ann, bob = await api.sign_up("author"), await api.sign_up("ann"), await api.sign_up("bob")
    tweet = await api.post(author, "thoughts?")
    added = [await comment(api, who, tweet["id"], f"  reply {n}  ") for n, who in enumerate([ann, bob, ann])]
    assert [c["text"] for c in added] == ["reply 0", "reply 1", "reply 2"]  # trimmed
    assert added[0]["author"] == {"handle": "ann"}
    assert added[-1]["tweet"] == {"id": tweet["id"], "commentCount": 3}

    first = await comments_of(api, tweet["id"], first=2)
    assert first["commentCount"] == 3
    assert [e["node"]["text"] for e in first["comments"]["edges"]] == ["reply 0", "reply 1"]
    assert first["comments"]["pageInfo"]["hasNextPage"] is True
    rest = await comments_of(api, tweet["id"], first=2, after=first["comments"]["pageInfo"]["endCursor"])
    assert [e["node"]["text"] for e in rest["comments"]["edges"]] == ["reply 2"]
    assert rest["comments"]["pageInfo"]["hasNextPage"] is False


async def test_who_may_delete_a_comment(api: Api) -> None:
    author, ann, bob = await api.sign_up("author"), await api.sign_up("ann"), await api.sign_up("bob")
    tweet = await api.post(author, "moderated")
    by_ann = [await comment(api, ann, tweet["id"], f"ann {n}") for n in range(2)]

    assert await api.error_codes(DELETE, {"id": by_ann[0]["id"]}, bob.token) == ["FORBIDDEN"]
    assert await api.error_codes(DELETE, {"id": by_ann[0]["id"]}) == ["UNAUTHENTICATED"]
    assert await api.gql(DELETE, {"id": by_ann[0]["id"]}, ann.token) == {"deleteComment": True}
    assert await api.gql(DELETE, {"id": by_ann[1]["id"]}, author.token) == {"deleteComment": True}
    assert await api.error_codes(DELETE, {"id": by_ann[1]["id"]}, author.token) == ["NOT_FOUND"]
    assert await api.error_codes(DELETE, {"id": "not-an-id"}, author.token) == ["BAD_USER_INPUT"]
    after = await comments_of(api, tweet["id"])
    assert after["commentCount"] == 0
    assert after["comments"]["edges"] == []


async def test_comment_text_follows_the_tweet_rules(api: Api) -> None:
    author = await api.sign_up("author")
    tweet = await api.post(author, "say something")
    for bad in ("   ", "x" * 281, "bell\x07"):
        codes = await api.error_codes(ADD, {"id": tweet["id"], "text": bad}, author.token)
        assert codes == ["BAD_USER_INPUT"], bad
    assert (await comment(api, author, tweet["id"], "x" * 280))["text"] == "x" * 280
    assert await api.error_codes(ADD, {"id": "999999", "text": "hi"}, author.token) == ["NOT_FOUND"]
    assert await api.error_codes(ADD, {"id": tweet["id"], "text": "hi"}) == ["UNAUTHENTICATED"]


async def test_comments_of_a_deleted_tweet_are_unreachable(api: Api) -> None:
    author, ann = await api.sign_up("author"), await api.sign_up("ann")
    tweet = await api.post(author, "short-lived")
    remark = await comment(api, ann, tweet["id"], "nice")
    await api.gql("mutation($id: ID!) { deleteTweet(id: $id) }", {"id": tweet["id"]}, author.token)
    assert await comments_of(api, tweet["id"]) is None
    assert await api.error_codes(DELETE, {"id": remark["id"]}, ann.token) == ["NOT_FOUND"]
    assert await api.error_codes(ADD, {"id": tweet["id"], "text": "late"}, ann.token) == ["NOT_FOUND"]


async def test_commenting_on_a_retweet_comments_on_the_original(api: Api) -> None:
    author, fan = await api.sign_up("author"), await api.sign_up("fan")
    original = await api.post(author, "share me")
    data = await api.gql(
        "mutation($id: ID!) { retweet(tweetId: $id) { id } }", {"id": original["id"]}, fan.token
    )
    added = await comment(api, fan, data["retweet"]["id"], "via my retweet")
    assert added["tweet"] == {"id": original["id"], "commentCount": 1}
    shown_on_retweet = await comments_of(api, data["retweet"]["id"])
    assert shown_on_retweet["commentCount"] == 1
    assert [e["node"]["text"] for e in shown_on_retweet["comments"]["edges"]] == ["via my retweet"]
