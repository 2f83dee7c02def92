"""Notifications: created by the worker for mentions, comments, likes, retweets and
follows; listed, counted and marked read over GraphQL; delivered live over WebSocket."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from starling.store.services import Services
from starling.workers.notifications import notify
from tests.api import Account, Api, eventually
from tests.realtime import (
    GRAPHQL_TRANSPORT_WS,
    GRAPHQL_WS,
    Listener,
    LiveApp,
    comment,
    like,
    retweet,
    undo_retweet,
    unlike,
)

NOTIFICATIONS = """
query($first: Int, $after: String) {
  notifications(first: $first, after: $after) {
    edges { cursor node { id kind read actor { handle } tweet { id } } }
    pageInfo { hasNextPage endCursor }
  }
  unreadNotificationCount
}
"""
UNREAD = "{ unreadNotificationCount }"
MARK_READ = "mutation { markNotificationsRead }"
LIVE_NOTIFICATIONS = (
    "subscription { notifications { id kind read actor { handle } tweet { id text } comment { text } } }"
)


async def notifications_of(
    api: Api, who: Account, first: int = 20, after: str | None = None
) -> dict[str, Any]:
    return await api.gql(NOTIFICATIONS, {"first": first, "after": after}, who.token)


async def unread(api: Api, who: Account) -> int:
    return (await api.gql(UNREAD, token=who.token))["unreadNotificationCount"]


async def has_unread(api: Api, who: Account, count: int) -> None:
    async def check() -> bool:
        return await unread(api, who) == count

    await eventually(check)


# An upper bound, not a wait: on a loaded machine a burst of notify jobs takes seconds.
DRAIN_SECONDS = 20.0


async def drained(services: Services) -> None:
    """Wait until the worker has run every queued ``notify`` job (their IDs start with
    ``notify:``), so a notification not created by now will not be created later. arq
    leaves a job in its queue until the job has finished, so the test's own queue tells
    (arq's in-progress keys are shared by every test's worker: a job another test's
    worker was stopped in holds one until it expires)."""

    async def check() -> bool:
        queued = await services.queue_redis.zrange(services.settings.queue_name, 0, -1)
        return not any(job.startswith(b"notify:") for job in queued)

    await eventually(check, within=DRAIN_SECONDS)


def kinds(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["kind"] for edge in page["notifications"]["edges"]]


async def test_a_mention_and_a_follow_notify_their_target(api: Api) -> None:
    alice, bob = await api.sign_up("alice"), await api.sign_up("bob")
    await api.follow(bob, alice)
    tweet = await api.post(bob, "hello @Alice and @nobody")
    await has_unread(api, alice, 2)
    page = await notifications_of(api, alice)
    assert page["unreadNotificationCount"] == 2
    mention, follow = (edge["node"] for edge in page["notifications"]["edges"])  # newest first
    assert mention["kind"] == "MENTION" and mention["actor"] == {"handle": "bob"}
    assert mention["tweet"] == {"id": tweet["id"]} and mention["read"] is False
    assert follow["kind"] == "FOLLOW" and follow["actor"] == {"handle": "bob"} and follow["tweet"] is None
    assert await unread(api, bob) == 0


async def test_your_own_actions_notify_nobody(api: Api, app: Starlette) -> None:
    alice, bob = await api.sign_up("alice"), await api.sign_up("bob")
    await api.post(alice, "note to self, @alice")
    await api.follow(bob, alice)  # a real notification, to know the worker has been
    await has_unread(api, alice, 1)
    await drained(app.state.services)
    assert kinds(await notifications_of(api, alice)) == ["FOLLOW"]


async def test_following_again_notifies_once(api: Api, app: Starlette) -> None:
    alice, bob = await api.sign_up("alice"), await api.sign_up("bob")
    for _ in range(3):
        await api.follow(bob, alice)
        await api.unfollow(bob, alice)
    await api.follow(bob, alice)
    await has_unread(api, alice, 1)
    await drained(app.state.services)
    assert kinds(await notifications_of(api, alice)) == ["FOLLOW"]


async def test_a_retried_notify_job_creates_nothing_twice(api: Api, app: Starlette) -> None:
    services: Services = app.state.services
    alice, bob = await api.sign_up("alice"), await api.sign_up("bob")
    tweet = await api.post(bob, "hi @alice")
    await has_unread(api, alice, 1)
    ctx = {"services": services}
    assert await notify(ctx, "MENTION", int(bob.id), tweet_id=int(tweet["id"])) == 0
    assert await notify(ctx, "FOLLOW", int(bob.id), user_id=int(alice.id)) == 1
    assert await notify(ctx, "FOLLOW", int(bob.id), user_id=int(alice.id)) == 0
    assert await unread(api, alice) == 2


async def test_marking_read_clears_the_unread_count(api: Api) -> None:
    alice = await api.sign_up("alice")
    fans = [await api.sign_up(f"fan{n}") for n in range(3)]
    for fan in fans:
        await api.follow(fan, alice)
    await has_unread(api, alice, 3)
    assert (await api.gql(MARK_READ, token=alice.token))["markNotificationsRead"] == 3
    page = await notifications_of(api, alice)
    assert page["unreadNotificationCount"] == 0
    assert all(edge["node"]["read"] for edge in page["notifications"]["edges"])
    assert (await api.gql(MARK_READ, token=alice.token))["markNotificationsRead"] == 0


async def test_notifications_page_newest_first(api: Api) -> None:
    alice = await api.sign_up("alice")
    fans = [await api.sign_up(f"fan{n}") for n in range(3)]
    for fan in fans:
        await api.follow(fan, alice)
        await has_unread(api, alice, fans.index(fan) + 1)  # one at a time: a known order
    first = await notifications_of(api, alice, first=2)
    connection = first["notifications"]
    assert [edge["node"]["actor"]["handle"] for edge in connection["edges"]] == ["fan2", "fan1"]
    assert connection["pageInfo"]["hasNextPage"] is True
    rest = await notifications_of(api, alice, first=2, after=connection["pageInfo"]["endCursor"])
    assert [edge["node"]["actor"]["handle"] for edge in rest["notifications"]["edges"]] == ["fan0"]
    assert rest["notifications"]["pageInfo"]["hasNextPage"] is False


async def test_notification_operations_need_a_viewer_and_a_good_cursor(api: Api) -> None:
    for operation in (NOTIFICATIONS, UNREAD, MARK_READ):
        assert await api.error_codes(operation) == ["UNAUTHENTICATED"]
    alice = await api.sign_up("alice")
    assert await api.error_codes(NOTIFICATIONS, {"after": "garbage"}, alice.token) == ["BAD_USER_INPUT"]
    assert await api.error_codes(NOTIFICATIONS, {"first": 0}, alice.token) == ["BAD_USER_INPUT"]


async def test_mentions_and_follows_arrive_live(live: LiveApp) -> None:
    api = live.api
    alice, bob = await api.sign_up("alice"), await api.sign_up("bob")
    async with Listener(live.client(alice.token, GRAPHQL_WS), LIVE_NOTIFICATIONS) as inbox:
        await live.settled(1)
        await api.follow(bob, alice)
        follow = (await inbox.next())["notifications"]
        tweet = await api.post(bob, "look, @alice")
        mention = (await inbox.next())["notifications"]
    assert follow["kind"] == "FOLLOW" and follow["actor"] == {"handle": "bob"} and follow["tweet"] is None
    assert mention["kind"] == "MENTION" and mention["tweet"] == {"id": tweet["id"], "text": "look, @alice"}
    listed = await notifications_of(api, alice)
    assert [edge["node"]["id"] for edge in listed["notifications"]["edges"]] == [mention["id"], follow["id"]]


async def test_each_kind_arrives_live_and_is_counted_until_marked_read(live: LiveApp) -> None:
    """A watches their notifications; B likes, comments on and retweets A's tweet and
    mentions @A; C follows A: five kinds, live, and the unread count agrees."""
    api = live.api
    a, b, c = await api.sign_up("A"), await api.sign_up("B"), await api.sign_up("C")
    tweet = await api.post(a, "a tweet of A")
    async with Listener(live.client(a.token, GRAPHQL_TRANSPORT_WS), LIVE_NOTIFICATIONS) as inbox:
        await live.settled(1)
        await like(api, b, tweet["id"])
        await comment(api, b, tweet["id"], "nice one")
        await retweet(api, b, tweet["id"])
        mention = await api.post(b, "hey @A")
        await api.follow(c, a)
        received = [(await inbox.next())["notifications"] for _ in range(5)]
    by_kind = {note["kind"]: note for note in received}
    assert set(by_kind) == {"LIKE", "COMMENT", "RETWEET", "MENTION", "FOLLOW"}
    for kind in ("LIKE", "COMMENT", "RETWEET"):
        assert by_kind[kind]["actor"] == {"handle": "B"}
        assert by_kind[kind]["tweet"]["id"] == tweet["id"]
    assert by_kind["COMMENT"]["comment"] == {"text": "nice one"}
    assert by_kind["MENTION"]["tweet"]["id"] == mention["id"] and by_kind["MENTION"]["comment"] is None
    assert by_kind["FOLLOW"]["actor"] == {"handle": "C"} and by_kind["FOLLOW"]["tweet"] is None
    assert all(note["read"] is False for note in received)

    page = await notifications_of(api, a)
    assert page["unreadNotificationCount"] == 5
    assert {edge["node"]["id"] for edge in page["notifications"]["edges"]} == {
        note["id"] for note in received
    }
    assert (await api.gql(MARK_READ, token=a.token))["markNotificationsRead"] == 5
    assert await unread(api, a) == 0


async def test_liking_or_retweeting_again_notifies_once(api: Api, app: Starlette) -> None:
    alice, bob = await api.sign_up("alice"), await api.sign_up("bob")
    tweet = await api.post(alice, "like me, maybe")
    for _ in range(4):
        await like(api, bob, tweet["id"])
        await unlike(api, bob, tweet["id"])
        await retweet(api, bob, tweet["id"])
        await undo_retweet(api, bob, tweet["id"])
    await like(api, bob, tweet["id"])
    await has_unread(api, alice, 2)
    await drained(app.state.services)
    assert sorted(kinds(await notifications_of(api, alice))) == ["LIKE", "RETWEET"]


async def test_a_comment_notifies_the_author_and_whom_it_mentions(api: Api, app: Starlette) -> None:
    author, critic, friend = (
        await api.sign_up("author"),
        await api.sign_up("critic"),
        await api.sign_up("friend"),
    )
    tweet = await api.post(author, "an opinion")
    comment_id = await comment(api, critic, tweet["id"], "@friend look what @author wrote")
    await has_unread(api, author, 1)
    await has_unread(api, friend, 1)
    await drained(app.state.services)
    query = "{ notifications { nodes { kind tweet { id } comment { id } } } }"
    expected = {"tweet": {"id": tweet["id"]}, "comment": {"id": comment_id}}
    # The author is mentioned too, but the COMMENT already tells them: one notification.
    assert (await api.gql(query, token=author.token))["notifications"]["nodes"] == [
        {"kind": "COMMENT", **expected}
    ]
    assert (await api.gql(query, token=friend.token))["notifications"]["nodes"] == [
        {"kind": "MENTION", **expected}
    ]


async def test_engaging_with_your_own_tweet_notifies_nobody(api: Api, app: Starlette) -> None:
    alice, bob = await api.sign_up("alice"), await api.sign_up("bob")
    tweet = await api.post(alice, "mine")
    await like(api, alice, tweet["id"])
    await comment(api, alice, tweet["id"], "replying to myself, @alice")
    await retweet(api, alice, tweet["id"])
    await drained(app.state.services)
    await api.follow(bob, alice)  # a real one, to see the worker at work
    await has_unread(api, alice, 1)
    await drained(app.state.services)
    assert kinds(await notifications_of(api, alice)) == ["FOLLOW"]
