"""Subscriptions over real WebSockets to a real uvicorn server, with gql as the client,
in both protocols: graphql-transport-ws and the legacy graphql-ws."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
import websockets
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from graphql import Executor, build_schema, parse

from starling.config import Settings
from starling.schema.execution import CompiledExecutor, GraphQLCoreExecutor, executor_class
from starling.store.mongo import connect_mongo
from tests.api import Api
from tests.conftest import make_settings
from tests.realtime import (
    GRAPHQL_TRANSPORT_WS,
    GRAPHQL_WS,
    PROTOCOLS,
    Listener,
    LiveApp,
    codes,
    comment,
    like,
    retweet,
    serve_live,
)

pytestmark = pytest.mark.both_redis_topologies

HOME_FEED = "subscription { homeFeed { id text author { handle } } }"
NOTIFICATIONS = "subscription { notifications { kind actor { handle } } }"
TWEET_ACTIVITY = (
    "subscription($id: ID!) { tweetActivity(tweetId: $id) { kind actor { handle } tweet { id } } }"
)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_home_feed_delivers_a_followed_authors_tweet_within_two_seconds(
    live: LiveApp, protocol: str
) -> None:
    api = live.api
    author, reader = await api.sign_up("author"), await api.sign_up("reader")
    await api.follow(reader, author)
    async with Listener(live.client(reader.token, protocol), HOME_FEED) as feed:
        await live.settled(1)
        tweet = await api.post(author, "hello, live world")
        result = await feed.next(within=2.0)
    expected = {"id": tweet["id"], "text": "hello, live world", "author": {"handle": "author"}}
    assert result["homeFeed"] == expected


async def test_a_home_feed_subscriber_is_marked_online_before_the_subscription_is_live(
    live: LiveApp,
) -> None:
    """Online = what the fan-out publishes to (``store.pubsub.Presence``); the entry is left
    to expire when the subscription ends, since another process may hold one too."""
    reader = await live.api.sign_up("reader")
    keys, settings = live.services.keys, live.services.settings
    presence = live.hub.presence("feed", keys.feed_presence_of, settings.presence_ttl_seconds)
    async with Listener(live.client(reader.token), HOME_FEED) as feed:
        await live.settled(1)
        assert presence.holders == {int(reader.id)}
        assert (
            await live.services.queue_redis.zscore(keys.feed_presence_of(int(reader.id)), reader.id)
            is not None
        )
        await feed.stop()
        await live.settled(0)
    assert presence.holders == frozenset()


async def test_home_feed_includes_the_viewers_own_tweets_and_not_strangers(live: LiveApp) -> None:
    api = live.api
    me, stranger = await api.sign_up("me"), await api.sign_up("stranger")
    async with Listener(live.client(me.token), HOME_FEED) as feed:
        await live.settled(1)
        await api.post(stranger, "not for you")
        mine = await api.post(me, "my own")
        result = await feed.next()
    assert result["homeFeed"]["id"] == mine["id"]


async def test_followers_of_a_celebrity_hear_of_posts_merged_at_read_time(redis_url: str) -> None:
    async with serve_live(make_settings(redis_url, celebrity_followers=1)) as live:
        api = live.api
        star, fan, other = await api.sign_up("star"), await api.sign_up("fan"), await api.sign_up("other")
        await api.follow(fan, star)
        await api.follow(other, star)  # two followers: a celebrity
        async with Listener(live.client(fan.token), HOME_FEED) as feed:
            await live.settled(1)
            assert live.services.keys.author_events(int(star.id)) in live.channels
            tweet = await api.post(star, "to my many fans")
            assert (await feed.next())["homeFeed"]["id"] == tweet["id"]
            follow_up = await api.post(star, "and again")
            # Whether or not the fan-out also ran, each tweet arrives once.
            assert (await feed.next())["homeFeed"]["id"] == follow_up["id"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("token", [None, "not-a-token"])
@pytest.mark.parametrize("query", [HOME_FEED, NOTIFICATIONS])
async def test_viewer_subscriptions_refuse_anonymous_clients(
    live: LiveApp, protocol: str, token: str | None, query: str
) -> None:
    async with Listener(live.client(token, protocol), query) as refused:
        assert codes(await refused.error()) == ["UNAUTHENTICATED"]
    assert live.subscriptions == 0


WATCH = """
subscription($id: ID!) {
  tweetActivity(tweetId: $id) {
    kind actor { handle } comment { text } tweet { id likeCount commentCount retweetCount }
  }
}
"""


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_tweet_activity_delivers_likes_comments_and_retweets_to_an_anonymous_watcher(
    live: LiveApp, protocol: str
) -> None:
    api = live.api
    author, fan, critic = await api.sign_up("author"), await api.sign_up("fan"), await api.sign_up("critic")
    tweet = await api.post(author, "watch this space")
    async with Listener(live.client(None, protocol), WATCH, {"id": tweet["id"]}) as page:
        await live.settled(1)
        await like(api, fan, tweet["id"])
        liked = (await page.next())["tweetActivity"]
        await comment(api, critic, tweet["id"], "meh")
        commented = (await page.next())["tweetActivity"]
        await retweet(api, fan, tweet["id"])
        retweeted = (await page.next())["tweetActivity"]
        await like(api, fan, tweet["id"])  # a repeat changes nothing and announces nothing
        await like(api, critic, tweet["id"])
        second_like = (await page.next())["tweetActivity"]
    counts = {"id": tweet["id"], "likeCount": 1, "commentCount": 0, "retweetCount": 0}
    assert liked == {"kind": "LIKE", "actor": {"handle": "fan"}, "comment": None, "tweet": counts}
    assert commented == {
        "kind": "COMMENT",
        "actor": {"handle": "critic"},
        "comment": {"text": "meh"},
        "tweet": {**counts, "commentCount": 1},
    }
    assert retweeted["kind"] == "RETWEET" and retweeted["actor"] == {"handle": "fan"}
    assert retweeted["tweet"] == {**counts, "commentCount": 1, "retweetCount": 1}
    assert second_like["actor"] == {"handle": "critic"} and second_like["tweet"]["likeCount"] == 2


async def test_engaging_with_a_retweet_is_activity_on_the_original(live: LiveApp) -> None:
    api = live.api
    author, fan = await api.sign_up("author"), await api.sign_up("fan")
    original = await api.post(author, "the original")
    copy = await retweet(api, fan, original["id"])
    async with (
        Listener(live.client(), WATCH, {"id": original["id"]}) as original_page,
        Listener(live.client(), WATCH, {"id": copy}) as retweet_page,
    ):
        await live.settled(2)
        await like(api, author, copy)
        for page in (original_page, retweet_page):
            activity = (await page.next())["tweetActivity"]
            assert activity["kind"] == "LIKE" and activity["tweet"]["id"] == original["id"]


async def test_tweet_activity_holds_blocks_both_ways(live: LiveApp) -> None:
    api = live.api
    author, watcher, blocked, fan = [await api.sign_up(h) for h in ("author", "watcher", "blocked", "fan")]
    block = "mutation($id: ID!) { block(userId: $id) { id } }"
    await api.gql(block, {"id": blocked.id}, watcher.token)
    tweet = await api.post(author, "watched")
    hidden = await api.post(blocked, "by someone the watcher blocked")
    async with Listener(live.client(watcher.token), TWEET_ACTIVITY, {"id": hidden["id"]}) as refused:
        assert codes(await refused.error()) == ["NOT_FOUND"]
    async with Listener(live.client(watcher.token), WATCH, {"id": tweet["id"]}) as page:
        await live.settled(1)
        await like(api, blocked, tweet["id"])  # left out: a block stands between them
        await like(api, fan, tweet["id"])
        activity = (await page.next())["tweetActivity"]
    assert activity["actor"] == {"handle": "fan"} and activity["tweet"]["likeCount"] == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("tweet_id", "code"), [("nope", "BAD_USER_INPUT"), ("123", "NOT_FOUND")])
async def test_tweet_activity_checks_its_tweet(
    live: LiveApp, protocol: str, tweet_id: str, code: str
) -> None:
    async with Listener(live.client(None, protocol), TWEET_ACTIVITY, {"id": tweet_id}) as refused:
        assert codes(await refused.error()) == [code]


@pytest.mark.parametrize(
    ("protocol", "options"),
    [
        # The server's `ka` messages must keep arriving within the client's timeout.
        (GRAPHQL_WS, {"keep_alive_timeout": 1.0}),
        # The client pings; the server must answer each ping in time.
        (GRAPHQL_TRANSPORT_WS, {"ping_interval": 0.2, "pong_timeout": 0.5}),
    ],
)
async def test_keep_alive_holds_an_idle_subscription_open(
    redis_url: str, protocol: str, options: dict[str, float]
) -> None:
    async with serve_live(make_settings(redis_url, ws_keep_alive_seconds=0.2)) as live:
        me = await live.api.sign_up("idle")
        async with Listener(live.client(me.token, protocol, **options), HOME_FEED) as feed:
            await live.settled(1)
            await asyncio.sleep(2.0)  # idle for several keep-alive periods
            tweet = await live.api.post(me, "still there?")
            assert (await feed.next())["homeFeed"]["id"] == tweet["id"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_client_leaving_mid_stream_leaves_nothing_behind(live: LiveApp, protocol: str) -> None:
    api = live.api
    me = await api.sign_up("leaver")
    channel = live.services.keys.feed_events(int(me.id))
    baseline = len(asyncio.all_tasks())
    async with Listener(live.client(me.token, protocol), HOME_FEED) as feed:
        await live.settled(1)
        await api.post(me, "first")
        await feed.next()
        await feed.stop()  # gql ends the operation (complete / stop) and closes the socket
        await live.settled(0)
    assert live.channels == frozenset()
    await live.released([channel])
    await _tasks_back_to(baseline)


async def test_a_connection_dropped_without_a_goodbye_is_cleaned_up(live: LiveApp) -> None:
    """No `complete`, no close frame: the TCP connection just goes away."""
    me = await live.api.sign_up("vanisher")
    baseline = len(asyncio.all_tasks())
    async with websockets.connect(live.ws_url, subprotocols=[GRAPHQL_TRANSPORT_WS]) as socket:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {me.token}"}}
        await socket.send(json.dumps(init))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": HOME_FEED}}))
        await live.settled(1)
        socket.transport.abort()
        with contextlib.suppress(websockets.ConnectionClosed):
            await socket.recv()
    await live.settled(0)
    await live.released([live.services.keys.feed_events(int(me.id))])
    await _tasks_back_to(baseline)


async def _tasks_back_to(baseline: int) -> None:
    """The server's per-connection tasks (handler, operations, keep-alive) are gone."""
    deadline = asyncio.get_running_loop().time() + 5
    while len(asyncio.all_tasks()) > baseline:
        assert asyncio.get_running_loop().time() < deadline, asyncio.all_tasks()
        await asyncio.sleep(0.05)


async def test_two_api_processes_on_one_redis_each_serve_their_own_subscribers(
    redis_url: str, settings: Settings
) -> None:
    """Two app instances (own uvicorn, own hub) share Redis and the MongoDB engine; the
    worker runs in the first only. Each hub subscribes its own clients' channels only."""
    mongo = connect_mongo(settings)
    second_settings = settings.model_copy(update={"run_worker_in_process": False})
    async with serve_live(settings, mongo) as first, serve_live(second_settings, mongo) as second:
        api: Api = first.api
        author, near, far = await api.sign_up("author"), await api.sign_up("near"), await api.sign_up("far")
        await api.follow(near, author)
        await second.api.follow(far, author)
        async with (
            Listener(first.client(near.token), HOME_FEED) as near_feed,
            Listener(second.client(far.token, GRAPHQL_WS), HOME_FEED) as far_feed,
        ):
            await first.settled(1)
            await second.settled(1)
            keys = first.services.keys
            assert first.channels == {keys.feed_events(int(near.id))}
            assert second.channels == {keys.feed_events(int(far.id))}
            tweet = await second.api.post(author, "one post, two processes")
            assert (await near_feed.next())["homeFeed"]["id"] == tweet["id"]
            assert (await far_feed.next())["homeFeed"]["id"] == tweet["id"]
    await mongo.close()


async def test_a_refused_subscription_does_not_stop_the_others_on_its_socket(live: LiveApp) -> None:
    """A refusal ends that operation only; the connection and its other operations go on."""
    me = await live.api.sign_up("multi")
    client = live.client(me.token)
    async with client as session:
        feed = session.subscribe(GraphQLRequest(HOME_FEED))
        with pytest.raises(TransportQueryError) as refused:
            await anext(session.subscribe(GraphQLRequest(TWEET_ACTIVITY, variable_values={"id": "nope"})))
        assert codes(refused.value.errors or []) == ["BAD_USER_INPUT"]
        first = asyncio.ensure_future(anext(feed))
        await live.settled(1)
        tweet = await live.api.post(me, "still subscribed")
        assert (await asyncio.wait_for(first, 2))["homeFeed"]["id"] == tweet["id"]
        await feed.aclose()


def test_subscription_events_do_not_accumulate_executor_state() -> None:
    """graphql-core's own per-event executors share a memo that grows by every event (see
    ``starling.schema.execution``); Starling's give each event its own."""
    schema = build_schema("type Query { a: Int } type Subscription { tick: Tick } type Tick { n: Int }")
    document = parse("subscription { tick { n } }")
    compiled = executor_class(compiled=True)
    for kind, growth in ((Executor, 3), (GraphQLCoreExecutor, 0), (compiled, 0)):
        executor = kind.build(schema, document)
        for n in range(3):
            result = executor.build_per_event_executor({"tick": {"n": n}}).execute_operation(False)
            assert result.data == {"tick": {"n": n}}  # type: ignore[union-attr]
        assert len(executor._relevant_sub_fields) == growth
        if isinstance(executor, CompiledExecutor):
            assert executor._plan_memo == {}  # each event's plans are looked up by its own
