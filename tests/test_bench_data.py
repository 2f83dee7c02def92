"""The benchmark's generated network is what the API would have made (``bench/data.py``)."""

from __future__ import annotations

from starlette.applications import Starlette

from bench import data
from starling.resolvers.feed import timeline_from_mongo
from starling.store.documents import encode_tweet
from starling.store.keys import TIMELINE_SENTINEL
from starling.store.timelines import decode_members
from starling.store.tweets import LIVE
from tests.api import Api, eventually

SPEC = data.Spec(users=12, follows_per_user=4, tweets=80, retweets=3, likes=15, comments=4, seed=5)


async def test_the_fast_path_leaves_what_the_single_operations_leave(app: Starlette, api: Api) -> None:
    services = app.state.services
    db, redis, keys = services.db, services.redis, services.keys
    network = await data.load(services, SPEC, log=lambda line: None)

    # Documents have the shape the API's own writes give them.
    fan, star = await api.sign_up("fan"), await api.sign_up("star")
    await api.follow(fan, star)
    posted = await api.post(star, "posted through the API #bench")

    async def delivered() -> bool:
        doc = await db.tweets.find_one({"_id": int(posted["id"])})
        return doc is not None and "fanout_pending" not in doc

    await eventually(delivered)
    api_follow = await db.follows.find_one({"follower_id": int(fan.id)})
    api_tweet = await db.tweets.find_one({"_id": int(posted["id"])})
    bulk_follow = await db.follows.find_one({"follower_id": network.user_ids[0]})
    bulk_tweet = await db.tweets.find_one({"author_id": {"$in": network.user_ids}, "retweet_of": None})
    assert set(bulk_follow) == set(api_follow)
    # The counter flush marks the tweets it updated (``counts_batch``), whichever way they came.
    assert set(bulk_tweet) - {"counts_batch"} == set(api_tweet) - {"counts_batch"}

    for user_id in network.user_ids:
        user = await db.users.find_one({"_id": user_id})
        assert user["followers_count"] == await db.follows.count_documents({"followee_id": user_id})
        assert user["following_count"] == await db.follows.count_documents({"follower_id": user_id})
        assert user["tweets_count"] == await db.tweets.count_documents({"author_id": user_id, **LIVE})
        # The home timeline is the one the API rebuilds from MongoDB.
        members = await redis.zrange(keys.home_timeline(user_id), 0, -1)
        assert members[-1] == TIMELINE_SENTINEL
        ids, _ = decode_members(members)
        assert sorted(ids) == sorted(await timeline_from_mongo(services, user_id))

    for tweet_id in network.tweet_ids[:20]:
        doc = await db.tweets.find_one({"_id": tweet_id})
        assert await redis.get(keys.tweet(tweet_id)) == encode_tweet(doc)
