"""Blocks and mutes: each rule on each read path, and each interaction a block forbids.

The cast: ``alice`` blocks (or mutes) ``bob``; ``carol`` is a bystander both follow, whose
retweets, comments, likes and followers carry the other two into each other's reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette

from starling.config import Settings
from starling.store.monitoring import count_round_trips
from tests.api import Account, Api, eventually
from tests.conftest import make_settings
from tests.realtime import Listener, LiveApp, comment, like, retweet
from tests.test_notifications import drained, notifications_of

pytestmark = pytest.mark.both_redis_topologies


@pytest.fixture
def settings(redis_url: str, request: pytest.FixtureRequest) -> Settings:
    """The default settings, or those a test parametrizes (``indirect``)."""
    return make_settings(redis_url, **getattr(request, "param", {}))


RELATION = (
    "mutation($id: ID!) {{ {verb}(userId: $id) {{ id viewerHasBlocked blocksViewer viewerHasMuted }} }}"
)


async def relate(api: Api, who: Account, verb: str, whom: Account) -> dict[str, Any]:
    return (await api.gql(RELATION.format(verb=verb), {"id": whom.id}, who.token))[verb]


@dataclass
class Cast:
    alice: Account
    bob: Account
    carol: Account

    def pair(self, viewer: str) -> tuple[Account, Account]:
        """(viewer, the other one) of the block."""
        return (self.alice, self.bob) if viewer == "alice" else (self.bob, self.alice)


@pytest.fixture
async def cast(api: Api) -> AsyncIterator[Cast]:
    alice, bob, carol = [await api.sign_up(name) for name in ("alice", "bob", "carol")]
    yield Cast(alice, bob, carol)


async def feed_ids(api: Api, reader: Account) -> list[str]:
    return await api.whole_feed(reader)


async def tweet_ids(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in page["edges"]]


# -- the relation itself -----------------------------------------------------------------


async def test_block_is_idempotent_ends_follows_both_ways_and_shows_on_both_sides(
    api: Api, cast: Cast
) -> None:
    await api.follow(cast.alice, cast.bob)
    await api.follow(cast.bob, cast.alice)
    first = await relate(api, cast.alice, "block", cast.bob)
    again = await relate(api, cast.alice, "block", cast.bob)
    assert (
        first
        == again
        == {"id": cast.bob.id, "viewerHasBlocked": True, "blocksViewer": False, "viewerHasMuted": False}
    )
    data = await api.gql(
        "query($h: String!) { user(handle: $h) { blocksViewer viewerHasBlocked followersCount followingCount "
        "viewerIsFollowing followsViewer } }",
        {"h": "alice"},
        cast.bob.token,
    )
    assert data["user"] == {
        "blocksViewer": True,
        "viewerHasBlocked": False,
        "followersCount": 0,
        "followingCount": 0,
        "viewerIsFollowing": False,
        "followsViewer": False,
    }
    listed = await api.gql(
        "{ viewer { blocked { edges { node { handle } } } muted { edges { node { id } } } } }",
        token=cast.alice.token,
    )
    assert listed["viewer"] == {"blocked": {"edges": [{"node": {"handle": "bob"}}]}, "muted": {"edges": []}}
    assert (await relate(api, cast.alice, "unblock", cast.bob))["viewerHasBlocked"] is False
    assert (await relate(api, cast.alice, "unblock", cast.bob))["viewerHasBlocked"] is False
    await api.follow(cast.bob, cast.alice)  # allowed again


async def test_mute_is_idempotent_private_and_listed(api: Api, cast: Cast) -> None:
    assert (await relate(api, cast.alice, "mute", cast.bob))["viewerHasMuted"] is True
    assert (await relate(api, cast.alice, "mute", cast.bob))["viewerHasMuted"] is True
    seen_by_bob = await api.gql(
        'query { user(handle: "alice") { viewerHasMuted blocksViewer } }', token=cast.bob.token
    )
    assert seen_by_bob["user"] == {"viewerHasMuted": False, "blocksViewer": False}
    listed = await api.gql("{ viewer { muted { edges { node { handle } } } } }", token=cast.alice.token)
    assert listed["viewer"]["muted"]["edges"] == [{"node": {"handle": "bob"}}]
    assert (await relate(api, cast.alice, "unmute", cast.bob))["viewerHasMuted"] is False


@pytest.mark.parametrize("field", ["blocked", "muted"])
async def test_someone_elses_lists_are_forbidden(api: Api, cast: Cast, field: str) -> None:
    query = f'query {{ user(handle: "alice") {{ {field} {{ edges {{ node {{ id }} }} }} }} }}'
    assert await api.error_codes(query, token=cast.bob.token) == ["FORBIDDEN"]


@pytest.mark.parametrize("verb", ["block", "unblock", "mute", "unmute"])
async def test_bad_targets(api: Api, cast: Cast, verb: str) -> None:
    mutation = RELATION.format(verb=verb)
    assert await api.error_codes(mutation, {"id": cast.alice.id}, cast.alice.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(mutation, {"id": "x"}, cast.alice.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(mutation, {"id": "123"}, cast.alice.token) == ["NOT_FOUND"]
    assert await api.error_codes(mutation, {"id": cast.bob.id}) == ["UNAUTHENTICATED"]


# -- what a block forbids ---------------------------------------------------------------------

FORBIDDEN_ACTIONS = {
    "follow": "mutation($u: ID!) { follow(userId: $u) { id } }",
    "like": "mutation($t: ID!) { likeTweet(tweetId: $t) { id } }",
    "retweet": "mutation($t: ID!) { retweet(tweetId: $t) { id } }",
    "comment": 'mutation($t: ID!) { addComment(tweetId: $t, text: "hi") { id } }',
}


@pytest.mark.parametrize("actor", ["alice", "bob"])
@pytest.mark.parametrize("action", sorted(FORBIDDEN_ACTIONS))
@pytest.mark.parametrize("via_retweet", [False, True])
async def test_a_block_forbids_interaction_either_way(
    api: Api, cast: Cast, actor: str, action: str, via_retweet: bool
) -> None:
    me, other = cast.pair(actor)
    tweet = await api.post(other, "mine")
    target = await retweet(api, cast.carol, tweet["id"]) if via_retweet else tweet["id"]
    await relate(api, cast.alice, "block", cast.bob)
    variables = {"u": other.id} if action == "follow" else {"t": target}
    assert await api.error_codes(FORBIDDEN_ACTIONS[action], variables, me.token) == ["FORBIDDEN"]
    await relate(api, cast.alice, "unblock", cast.bob)
    await api.gql(FORBIDDEN_ACTIONS[action], variables, me.token)


async def test_a_mention_across_a_block_or_from_a_muted_user_notifies_nobody(
    api: Api, app: Starlette, cast: Cast
) -> None:
    await relate(api, cast.alice, "block", cast.bob)
    dave = await api.sign_up("dave")
    await relate(api, dave, "mute", cast.bob)
    posted = await api.post(cast.bob, "hey @alice and @dave and @carol")
    # The blocked user is no mention to the blocker's eyes either way; a muted one still is.
    assert [user["handle"] for user in posted["mentions"]] == ["dave", "carol"]
    await api.post(cast.alice, "hey @bob")
    await eventually(lambda: _count(api, cast.carol, 1))
    await drained(app.state.services)
    for silent in (cast.alice, cast.bob, dave):
        assert (await notifications_of(api, silent))["notifications"]["edges"] == []


async def _count(api: Api, who: Account, expected: int) -> bool:
    return len((await notifications_of(api, who))["notifications"]["edges"]) == expected


# -- what a block hides, path by path --------------------------------------------------------


@pytest.mark.parametrize("viewer", ["alice", "bob"])
@pytest.mark.parametrize("lost", [False, True], ids=["warm", "rebuilt"])
@pytest.mark.parametrize(
    "settings", [{}, {"celebrity_followers": 0}], ids=["fanned-out", "celebrity-merge"], indirect=True
)
async def test_home_feed_hides_the_other_side_of_a_block(
    api: Api, app: Starlette, cast: Cast, viewer: str, lost: bool
) -> None:
    """Through a bystander's retweet (fanned out, or merged at read time when everyone
    followed is a celebrity), on a warm timeline or one rebuilt after Redis lost it."""
    me, other = cast.pair(viewer)
    await api.follow(me, cast.carol)
    theirs = await api.post(other, "from the other side")
    carols = await api.post(cast.carol, "a bystander's")
    shared = await retweet(api, cast.carol, theirs["id"])
    await eventually(lambda: _feed_holds(api, me, {shared, carols["id"]}))
    await relate(api, cast.alice, "block", cast.bob)
    if lost:
        await app.state.services.redis.flushdb()
    assert await feed_ids(api, me) == [carols["id"]]


async def _feed_holds(api: Api, reader: Account, ids: set[str]) -> bool:
    return ids <= set(await api.whole_feed(reader))


@pytest.mark.parametrize("viewer", ["alice", "bob"])
async def test_profiles_search_and_tweet_hide_the_other_side(api: Api, cast: Cast, viewer: str) -> None:
    me, other = cast.pair(viewer)
    theirs = await api.post(other, "zebra crossing")
    shared = await retweet(api, cast.carol, theirs["id"])
    carols = await api.post(cast.carol, "zebra bystander")
    await relate(api, cast.alice, "block", cast.bob)
    query = """query($h: String!, $c: String!, $t: ID!) {
      theirs: user(handle: $h) { tweets { edges { node { id } } } }
      carol: user(handle: $c) { tweets { edges { node { id } } } }
      search(query: "zebra") { edges { node { id } } }
      tweet(id: $t) { id }
    }"""
    data = await api.gql(query, {"h": other.handle, "c": "carol", "t": theirs["id"]}, me.token)
    assert await tweet_ids(data["theirs"]["tweets"]) == []
    assert await tweet_ids(data["carol"]["tweets"]) == [carols["id"]]
    assert await tweet_ids(data["search"]) == [carols["id"]]
    assert data["tweet"] is None
    seen_by_carol = await api.gql(
        query, {"h": other.handle, "c": "carol", "t": theirs["id"]}, cast.carol.token
    )
    assert await tweet_ids(seen_by_carol["carol"]["tweets"]) == [carols["id"], shared]
    assert seen_by_carol["tweet"] == {"id": theirs["id"]}


@pytest.mark.parametrize("viewer", ["alice", "bob"])
async def test_comments_likes_and_follower_lists_hide_the_other_side(
    api: Api, cast: Cast, viewer: str
) -> None:
    me, other = cast.pair(viewer)
    carols = await api.post(cast.carol, "engage here")
    await comment(api, other, carols["id"], "their comment")
    await comment(api, cast.carol, carols["id"], "carol's comment")
    await like(api, other, carols["id"])
    await api.follow(other, cast.carol)
    await relate(api, cast.alice, "block", cast.bob)
    data = await api.gql(
        """query($t: ID!) {
             tweet(id: $t) { comments { edges { node { text } } } likedBy { edges { node { id } } } }
             user(handle: "carol") { followers { edges { node { id } } } } }""",
        {"t": carols["id"]},
        me.token,
    )
    assert data["tweet"]["comments"]["edges"] == [{"node": {"text": "carol's comment"}}]
    assert data["tweet"]["likedBy"]["edges"] == []
    assert data["user"]["followers"]["edges"] == []


async def test_notifications_from_before_a_block_or_mute_are_hidden(
    api: Api, app: Starlette, cast: Cast
) -> None:
    mine = await api.post(cast.alice, "like me")
    await like(api, cast.bob, mine["id"])
    await like(api, cast.carol, mine["id"])
    await eventually(lambda: _count(api, cast.alice, 2))
    for verb in ("block", "mute"):
        await relate(api, cast.alice, verb, cast.bob)
        page = await notifications_of(api, cast.alice)
        assert [edge["node"]["actor"]["handle"] for edge in page["notifications"]["edges"]] == ["carol"]
        assert page["unreadNotificationCount"] == 1
        await relate(api, cast.alice, f"un{verb}", cast.bob)


# -- mutes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lost", [False, True], ids=["warm", "rebuilt"])
async def test_mute_hides_tweets_and_retweets_from_the_muters_feed_only(
    api: Api, app: Starlette, cast: Cast, lost: bool
) -> None:
    await api.follow(cast.alice, cast.bob)
    await api.follow(cast.alice, cast.carol)
    await api.follow(cast.bob, cast.alice)
    bobs = await api.post(cast.bob, "bob speaks")
    dave = await api.sign_up("dave")  # not followed by alice: his tweet reaches her by bob
    by_bob = await retweet(api, cast.bob, (await api.post(dave, "dave speaks"))["id"])
    carols = await api.post(cast.carol, "carol speaks")
    alices = await api.post(cast.alice, "alice speaks")
    await eventually(lambda: _feed_holds(api, cast.alice, {bobs["id"], by_bob, carols["id"], alices["id"]}))
    await eventually(lambda: _feed_holds(api, cast.bob, {alices["id"]}))
    await relate(api, cast.alice, "mute", cast.bob)
    if lost:
        await app.state.services.redis.flushdb()
    assert await feed_ids(api, cast.alice) == [alices["id"], carols["id"]]
    assert alices["id"] in await feed_ids(api, cast.bob)  # the muted user notices nothing
    profile = await api.gql(
        '{ user(handle: "bob") { tweets { edges { node { id } } } } }', token=cast.alice.token
    )
    assert (
        len(profile["user"]["tweets"]["edges"]) == 2
    )  # bob's tweet and retweet: a mute is about the feed only
    await relate(api, cast.alice, "unmute", cast.bob)
    assert bobs["id"] in await feed_ids(api, cast.alice)


# -- live ----------------------------------------------------------------------------------------

HOME_FEED = "subscription { homeFeed { id } }"


@pytest.mark.parametrize("verb", ["block", "mute"])
async def test_live_feed_skips_what_a_block_or_mute_hides(live: LiveApp, verb: str) -> None:
    api = live.api
    alice, bob, carol = [await api.sign_up(name) for name in ("alice", "bob", "carol")]
    await api.follow(alice, carol)
    await api.follow(alice, bob)
    async with Listener(live.client(alice.token), HOME_FEED) as feed:
        await live.settled(1)
        await relate(api, alice, verb, bob)  # after subscribing: each event reads the sets as now
        bobs = await api.post(bob, "hidden")
        await retweet(api, carol, bobs["id"])
        visible = await api.post(carol, "shown")
        assert (await feed.next())["homeFeed"]["id"] == visible["id"]


# -- cost -------------------------------------------------------------------------------------


async def test_a_feed_page_with_blocks_and_mutes_in_force_costs_no_extra_round_trip(
    api: Api, cast: Cast
) -> None:
    """The sets are read in the feed's first pipeline: the warm page costs what it cost
    before there were any (round-trip budget, ``tests/test_round_trips.py``)."""
    query = "query($first: Int) { homeFeed(first: $first) { edges { node { id text author { handle } } } } }"
    await api.follow(cast.alice, cast.carol)
    for n in range(30):
        await api.post(cast.carol, f"tweet {n}")
    await eventually(lambda: _feed_holds_count(api, cast.alice, 30))

    async def trips(first: int) -> tuple[int, int]:
        await api.gql(query, {"first": first}, cast.alice.token)  # warm
        with count_round_trips() as counted:
            await api.gql(query, {"first": first}, cast.alice.token)
        return counted.mongo, counted.redis

    before = {first: await trips(first) for first in (5, 25)}
    await relate(api, cast.alice, "block", cast.bob)
    await relate(api, cast.alice, "mute", await api.sign_up("dave"))
    after = {first: await trips(first) for first in (5, 25)}
    assert before == after


async def _feed_holds_count(api: Api, reader: Account, count: int) -> bool:
    return len(await api.whole_feed(reader)) >= count
