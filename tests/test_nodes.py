"""Global object identification: node/nodes resolve every type in a bounded number of
round trips, and answer null for what the viewer may not see."""

from __future__ import annotations

from starling.store.monitoring import count_round_trips
from tests.api import Api, eventually
from tests.realtime import comment, like, retweet
from tests.test_notifications import notifications_of

NODES = """query($ids: [ID!]!) { nodes(ids: $ids) {
  __typename id
  ... on User { handle }
  ... on Tweet { text }
  ... on Comment { text }
  ... on Notification { kind }
} }"""
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
BLOCK = "mutation($id: ID!) { block(userId: $id) { id } }"


async def test_nodes_resolves_every_type_in_order(api: Api) -> None:
    author, fan = await api.sign_up("author"), await api.sign_up("fan")
    tweet = await api.post(author, "find me")
    comment_id = await comment(api, fan, tweet["id"], "found you")
    await like(api, fan, tweet["id"])

    async def notified() -> bool:
        return bool((await notifications_of(api, author))["notifications"]["edges"])

    await eventually(notified)
    notification = (await notifications_of(api, author))["notifications"]["edges"][-1]["node"]
    ids = [tweet["id"], author.id, "42", comment_id, notification["id"]]
    data = await api.gql(NODES, {"ids": ids}, author.token)
    assert data["nodes"] == [
        {"__typename": "Tweet", "id": tweet["id"], "text": "find me"},
        {"__typename": "User", "id": author.id, "handle": "author"},
        None,
        {"__typename": "Comment", "id": comment_id, "text": "found you"},
        {"__typename": "Notification", "id": notification["id"], "kind": notification["kind"]},
    ]
    # Notifications only for their owner; everything else for anyone.
    as_fan = await api.gql(NODES, {"ids": ids}, fan.token)
    assert as_fan["nodes"][4] is None and as_fan["nodes"][0] is not None
    anonymous = await api.gql(NODE, {"id": notification["id"]})
    assert anonymous["node"] is None
    assert (await api.gql(NODE, {"id": author.id}))["node"] == {"__typename": "User", "id": author.id}


async def test_nodes_costs_the_same_round_trips_for_any_number_of_ids(api: Api) -> None:
    author = await api.sign_up("author")
    tweets = [(await api.post(author, f"tweet {n}"))["id"] for n in range(20)]
    trips = {}
    await api.gql(NODE, {"id": author.id}, author.token)  # warm: the viewer's block and mute sets
    for count in (1, 20):
        ids = [*tweets[:count], author.id]
        with count_round_trips() as counted:
            await api.gql(NODES, {"ids": ids}, author.token)
        trips[count] = (counted.mongo, counted.redis)
    assert trips[1] == trips[20], trips


async def test_retweets_behind_blocks_cost_the_same_round_trips_however_many(api: Api) -> None:
    author, retweeter, reader, stranger = [await api.sign_up(h) for h in ("author", "rt", "reader", "x")]
    originals = [(await api.post(author, f"tweet {n}"))["id"] for n in range(10)]
    copies = [await retweet(api, retweeter, original) for original in originals]
    await api.gql(BLOCK, {"id": stranger.id}, reader.token)  # a block to check every tweet against
    await api.gql(BLOCK, {"id": reader.id}, author.token)  # and one that hides them all
    await api.gql(NODES, {"ids": copies}, reader.token)  # warm: caches and the reader's sets
    trips = {}
    for count in (1, 10):
        with count_round_trips() as counted:
            data = await api.gql(NODES, {"ids": copies[:count]}, reader.token)
        assert data["nodes"] == [None] * count  # retweets of a tweet behind a block
        trips[count] = (counted.mongo, counted.redis)
    assert trips[1] == trips[10], trips
    shown = await api.gql(NODES, {"ids": copies[:2]}, stranger.token)
    assert [node["__typename"] for node in shown["nodes"]] == ["Tweet", "Tweet"]


async def test_nodes_hides_what_a_block_hides_and_deleted_tweets(api: Api) -> None:
    author, other = await api.sign_up("author"), await api.sign_up("other")
    tweet = await api.post(author, "not for other")
    gone = await api.post(author, "gone")
    await api.gql("mutation($id: ID!) { deleteTweet(id: $id) }", {"id": gone["id"]}, author.token)
    await api.gql("mutation($id: ID!) { block(userId: $id) { id } }", {"id": other.id}, author.token)
    data = await api.gql(NODES, {"ids": [tweet["id"], gone["id"]]}, other.token)
    assert data["nodes"] == [None, None]


async def test_nodes_refuses_bad_ids_and_more_than_the_maximum(api: Api) -> None:
    assert await api.error_codes(NODES, {"ids": ["1"] * 101}) == ["BAD_USER_INPUT"]
    assert await api.error_codes(NODES, {"ids": ["x"]}) == ["BAD_USER_INPUT"]
    assert await api.error_codes(NODE, {"id": "-1"}) == ["BAD_USER_INPUT"]
    assert (await api.gql(NODES, {"ids": []}))["nodes"] == []
