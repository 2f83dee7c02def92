"""`starling dev`: the whole system in one process on embedded defaults (what the README's
first command runs): a private redis-server, the embedded MongoDB engine, the arq worker
in-process, demo data; data kept in STARLING_DATA_DIR across restarts; and nothing left
running after it stops, even when it is killed."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
from redis.asyncio.cluster import RedisCluster

from tests.api import PASSWORD, Account, Api, eventually
from tests.dev_process import StarlingProcess, redis_servers

FEED = "{ homeFeed(first: 5) { nodes { text author { handle } } pageInfo { hasNextPage } } }"
STATE = """
query($handle: String!) {
  viewer { handle followingCount }
  user(handle: $handle) { handle followersCount }
  homeFeed(first: 10) { nodes { id text likeCount viewerHasLiked author { handle } } }
}
"""
SNAPSHOT_SECONDS = "0.3"


def test_dev_serves_a_seeded_network_and_cleans_up(tmp_path: Path) -> None:
    dev = StarlingProcess.start(["dev", "--seed"], data_dir=tmp_path)
    try:
        dev.wait_ready()
        body = httpx.post(
            f"{dev.base_url}/graphql",
            json={"query": 'mutation { logIn(handle: "demo", password: "starling-demo") { token } }'},
        ).json()
        token = body["data"]["logIn"]["token"]
        assert (
            "graphiql" in httpx.get(f"{dev.base_url}/graphql", headers={"accept": "text/html"}).text.lower()
        )
        feed = httpx.post(
            f"{dev.base_url}/graphql", json={"query": FEED}, headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert len(feed["data"]["homeFeed"]["nodes"]) == 5
        assert feed["data"]["homeFeed"]["pageInfo"]["hasNextPage"] is True
        private = redis_servers(parent=dev.process.pid)
        assert private, "no private redis-server was started"
    finally:
        output = dev.stop()
    assert dev.process.returncode == 0, output
    assert "embedded (mongomock" in output and "private redis-server" in output
    time.sleep(0.5)
    assert not (private & redis_servers()), "the private redis-server outlived starling dev"


async def _state(base_url: str, reader: Account, author: Account) -> dict:
    async with httpx.AsyncClient(base_url=base_url) as http:
        return await Api(http).gql(STATE, {"handle": author.handle}, reader.token)


async def test_dev_keeps_its_data_across_restarts_and_reset_forgets_it(tmp_path: Path) -> None:
    env = {"DEV_SNAPSHOT_SECONDS": SNAPSHOT_SECONDS}
    dev = StarlingProcess.start(["dev"], data_dir=tmp_path, env=env)
    try:
        dev.wait_ready()
        async with httpx.AsyncClient(base_url=dev.base_url) as http:
            api = Api(http)
            author, reader = await api.sign_up("keeper"), await api.sign_up("reader")
            await api.follow(reader, author)
            tweet = await api.post(author, "still here after a restart #dev")
            await api.gql(
                "mutation($t: ID!) { likeTweet(tweetId: $t) { id } }", {"t": tweet["id"]}, reader.token
            )

            async def delivered() -> bool:
                return tweet["id"] in await api.whole_feed(reader)

            await eventually(delivered, within=10)
            # A second session of the reader, logged out: it must stay revoked.
            log_in = 'mutation($p: String!) { logIn(handle: "reader", password: $p) { token } }'
            revoked = (await api.gql(log_in, {"p": PASSWORD}))["logIn"]["token"]
            assert (await api.gql("mutation { logOut }", token=revoked))["logOut"] is True
        before = await _state(dev.base_url, reader, author)
    finally:
        output = dev.stop()
    assert dev.process.returncode == 0, output
    assert int(tweet["id"]) > 2**53  # snowflakes: the snapshot must keep 64-bit integers exactly

    # A clean restart: same users, follows, tweets, likes, and the reader's token still works.
    dev = StarlingProcess.start(["dev"], data_dir=tmp_path, env=env)
    try:
        dev.wait_ready()
        after = await _state(dev.base_url, reader, author)
        assert after == before
        assert after["homeFeed"]["nodes"][0] == {
            "id": tweet["id"],
            "text": "still here after a restart #dev",
            "likeCount": 1,
            "viewerHasLiked": True,
            "author": {"handle": "keeper"},
        }
        async with httpx.AsyncClient(base_url=dev.base_url) as http:
            api = Api(http)
            assert "UNAUTHENTICATED" in await api.error_codes("{ homeFeed { nodes { id } } }", token=revoked)
            second = await api.post(author, "posted just before a crash")
        await asyncio.sleep(float(SNAPSHOT_SECONDS) * 5)  # a periodic save has run since
        private = redis_servers(parent=dev.process.pid)
    finally:
        # SIGKILL: no shutdown save, no chance to stop redis-server by hand.
        dev.stop(signal.SIGKILL)
    await asyncio.sleep(0.5)
    assert private, "no private redis-server was started"
    assert not (private & redis_servers()), "the private redis-server outlived a killed starling dev"

    dev = StarlingProcess.start(["dev"], data_dir=tmp_path, env=env)
    try:
        dev.wait_ready()
        crashed = await _state(dev.base_url, reader, author)
        assert [node["id"] for node in crashed["homeFeed"]["nodes"]] == [second["id"], tweet["id"]]
    finally:
        dev.stop()

    dev = StarlingProcess.start(["dev", "--reset"], data_dir=tmp_path, env=env)
    try:
        dev.wait_ready()
        async with httpx.AsyncClient(base_url=dev.base_url) as http:
            api = Api(http)
            assert "UNAUTHENTICATED" in await api.error_codes(
                "{ homeFeed { nodes { id } } }", token=reader.token
            )
            assert (await api.gql("{ viewer { id } }", token=None))["viewer"] is None
            await api.sign_up("keeper")  # the handle is free again
    finally:
        output = dev.stop()
    assert "reset" in output


async def test_dev_runs_on_a_redis_cluster_and_rebuilds_feeds_after_every_master_is_flushed(
    tmp_path: Path, cluster_redis_url: str, standalone_redis_url: str
) -> None:
    """`REDIS_URL=<cluster> QUEUE_REDIS_URL=<standalone> starling dev`: no SELECT (its keys go
    under a fresh prefix), fan-out through the cluster, and a feed rebuilt in the same order
    once every master has lost its data."""
    env = {"REDIS_URL": cluster_redis_url, "QUEUE_REDIS_URL": standalone_redis_url}
    dev = StarlingProcess.start(["dev"], data_dir=tmp_path, env=env)
    try:
        dev.wait_ready()
        async with httpx.AsyncClient(base_url=dev.base_url) as http:
            api = Api(http)
            author, reader = await api.sign_up("author"), await api.sign_up("reader")
            await api.follow(reader, author)
            posted = [(await api.post(author, f"through the cluster {n}"))["id"] for n in range(5)]

            async def delivered() -> bool:
                return await api.whole_feed(reader) == posted[::-1]

            await eventually(delivered, within=15)
            cluster = RedisCluster.from_url(cluster_redis_url)
            try:
                assert await cluster.flushall(target_nodes=RedisCluster.PRIMARIES)
            finally:
                await cluster.aclose()
            assert await api.whole_feed(reader) == posted[::-1]
    finally:
        output = dev.stop()
    assert dev.process.returncode == 0, output
