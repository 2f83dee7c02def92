"""Grouped notifications (one kind on one target, grouped on the server) and read markers
(forward only), over GraphQL with the worker creating the notifications."""

from __future__ import annotations

from typing import Any

from starling.store.documents import utcnow
from starling.store.notifications import NotificationKind, group_key
from tests.api import Account, Api, eventually
from tests.realtime import like

GROUPS = """
query($first: Int, $after: String) {
  groupedNotifications(first: $first, after: $after) {
    edges { cursor node { kind count latestAt unread sampleActors { handle } tweet { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
MARKERS = "{ markers { homeFeed { lastReadId updatedAt } notifications { lastReadId updatedAt } } }"
UPDATE_MARKER = """
mutation($timeline: MarkerTimeline!, $id: ID!) {
  updateMarker(timeline: $timeline, lastReadId: $id) { lastReadId updatedAt }
}
"""
FOLLOW_BY_ID = "mutation($id: ID!) { follow(userId: $id) { id } }"


async def groups_of(api: Api, who: Account, first: int = 20, after: str | None = None) -> dict[str, Any]:
    return (await api.gql(GROUPS, {"first": first, "after": after}, who.token))["groupedNotifications"]


async def groups_once(api: Api, who: Account, counts: list[int]) -> list[dict[str, Any]]:
    """The viewer's groups once the worker has produced ``counts`` (in page order)."""
    nodes: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal nodes
        nodes = [edge["node"] for edge in (await groups_of(api, who))["edges"]]
        return [node["count"] for node in nodes] == counts

    await eventually(check, within=20.0)
    return nodes


async def test_thirty_likes_of_one_tweet_are_one_group_with_the_latest_actors_first(api: Api) -> None:
    author = await api.sign_up("author")
    tweet = await api.post(author, "a popular post")
    fans = [await api.sign_up(f"fan{n}") for n in range(30)]
    for fan in fans:
        await like(api, fan, tweet["id"])
        await eventually(lambda fan=fan: _group_has(api, author, fan))  # type: ignore[misc]
    (group,) = await groups_once(api, author, [30])
    assert group["kind"] == "LIKE" and group["tweet"] == {"id": tweet["id"]} and group["unread"]
    assert [actor["handle"] for actor in group["sampleActors"]] == [f"fan{n}" for n in range(29, 24, -1)]


async def _group_has(api: Api, who: Account, actor: Account) -> bool:
    """The actor is the newest of the viewer's first group (the like was counted)."""
    edges = (await groups_of(api, who, first=1))["edges"]
    return bool(edges) and edges[0]["node"]["sampleActors"][0]["handle"] == actor.handle


async def test_groups_are_per_kind_and_target_newest_activity_first_and_page(api: Api) -> None:
    author, fan, other = await api.sign_up("author"), await api.sign_up("fan"), await api.sign_up("other")
    first_tweet = await api.post(author, "first")
    second_tweet = await api.post(author, "second")
    await like(api, fan, first_tweet["id"])
    await eventually(lambda: _group_has(api, author, fan))
    await like(api, fan, second_tweet["id"])
    await api.follow(fan, author)
    await eventually(lambda: _count_is(api, author, 3))
    await api.follow(other, author)  # follows of one day: one group
    await like(api, other, first_tweet["id"])  # the first tweet's group is the newest again
    nodes = await groups_once(api, author, [2, 2, 1])
    assert [(node["kind"], node["tweet"]) for node in nodes] == [
        ("LIKE", {"id": first_tweet["id"]}),
        ("FOLLOW", None),
        ("LIKE", {"id": second_tweet["id"]}),
    ]
    page = await groups_of(api, author, first=2)
    assert page["pageInfo"]["hasNextPage"]
    rest = await groups_of(api, author, first=2, after=page["pageInfo"]["endCursor"])
    assert [edge["node"]["tweet"] for edge in rest["edges"]] == [{"id": second_tweet["id"]}]
    assert not rest["pageInfo"]["hasNextPage"]


async def _count_is(api: Api, who: Account, groups: int) -> bool:
    return len((await groups_of(api, who))["edges"]) == groups


def test_group_keys_name_the_kind_and_the_target() -> None:
    now = utcnow()
    assert group_key(NotificationKind.LIKE, now, 42) == "LIKE:t42"
    assert group_key(NotificationKind.MENTION, now, 42) == "MENTION:t42"
    assert group_key(NotificationKind.FOLLOW, now, None) == f"FOLLOW:d{now.date().isoformat()}"


async def test_markers_move_forward_only_and_read_groups(api: Api) -> None:
    author, fan = await api.sign_up("author"), await api.sign_up("fan")
    assert (await api.gql(MARKERS, token=author.token))["markers"] == {
        "homeFeed": {"lastReadId": None, "updatedAt": None},
        "notifications": {"lastReadId": None, "updatedAt": None},
    }
    older, newer = await api.post(author, "older"), await api.post(author, "newer")
    moved = (await api.gql(UPDATE_MARKER, {"timeline": "HOME_FEED", "id": newer["id"]}, author.token))[
        "updateMarker"
    ]
    assert moved["lastReadId"] == newer["id"] and moved["updatedAt"]
    kept = (await api.gql(UPDATE_MARKER, {"timeline": "HOME_FEED", "id": older["id"]}, author.token))[
        "updateMarker"
    ]
    assert kept == moved  # an older ID (another device, behind) moves nothing
    markers = (await api.gql(MARKERS, token=author.token))["markers"]
    assert markers["homeFeed"] == moved and markers["notifications"]["lastReadId"] is None

    await like(api, fan, older["id"])
    (group,) = await groups_once(api, author, [1])
    assert group["unread"]
    await api.gql("mutation { markNotificationsRead }", token=author.token)
    (group,) = await groups_once(api, author, [1])
    assert not group["unread"]
    assert (await api.gql(MARKERS, token=author.token))["markers"]["notifications"]["lastReadId"]


async def test_update_marker_checks_its_input_and_viewer(api: Api) -> None:
    me = await api.sign_up("me")
    variables = {"timeline": "NOTIFICATIONS", "id": "not-an-id"}
    assert await api.error_codes(UPDATE_MARKER, variables, me.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(UPDATE_MARKER, {**variables, "id": "1"}) == ["UNAUTHENTICATED"]
    assert await api.error_codes(GROUPS, {"first": 0}, me.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(MARKERS) == ["UNAUTHENTICATED"]
