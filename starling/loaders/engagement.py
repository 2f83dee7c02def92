"""Loaders for the engagement fields of a tweet: its counts, and what the viewer did to it."""

from __future__ import annotations

from collections.abc import Sequence

from redis.exceptions import RedisError

from starling.loaders.documents import EdgeExistsLoader
from starling.loaders.measured import MeasuredLoader
from starling.store import viewer_engagement
from starling.store.counters import Counters, Counts
from starling.store.degrade import best_effort
from starling.store.documents import TweetDoc
from starling.store.ids import id_timestamp_ms
from starling.store.mongo_api import MongoCollection
from starling.store.services import Services
from starling.store.viewer_engagement import Answers, Engagement


def retweet_key(author_id: int, original_id: int) -> str:
    """The ``retweet_key`` of a live retweet, and the ``_id`` of its reservation in
    ``retweet_keys`` (``store.reservations``): one per (author, original)."""
    return f"{author_id}:{original_id}"


class CountsLoader(MeasuredLoader[int, Counts]):
    """Like, comment and retweet counts of tweets: one Redis round trip for a whole page,
    and a recount from MongoDB for those whose counters are gone (``store.counters``)."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._counters = Counters(services)

    async def load_batch(self, keys: Sequence[int]) -> list[Counts]:
        return await self._counters.read(keys)


class ViewerRetweetLoader(EdgeExistsLoader):
    """Original tweet ID -> has the viewer a live retweet of it: one lookup of the
    (author_id, retweet_key) index for the page (only live retweets hold a key)."""

    def __init__(self, tweets: MongoCollection[TweetDoc], viewer_id: int) -> None:
        super().__init__(tweets, "author_id", viewer_id, "retweet_key")
        self._viewer_id = viewer_id

    async def load_batch(self, keys: Sequence[int]) -> list[bool]:
        return await self._exist([retweet_key(self._viewer_id, key) for key in keys])


def _in_mongo(services: Services, viewer_id: int, kind: Engagement) -> EdgeExistsLoader:
    """MongoDB's answer for ``kind``: the fallback of ``ViewerEngagementLoader``."""
    if kind is Engagement.LIKED:
        return EdgeExistsLoader(services.db.likes, "user_id", viewer_id, "tweet_id")
    return ViewerRetweetLoader(services.db.tweets, viewer_id)


async def answer_engagement(
    services: Services, viewer_id: int, tweet_ids: Sequence[int], answers: Answers
) -> dict[Engagement, list[bool]]:
    """Both kinds of the viewer's engagement with ``tweet_ids`` from what their set answered
    (``store.viewer_engagement``); a lost set is rebuilt from MongoDB (one query per kind),
    and tweets older than the window are asked of MongoDB (one query per kind)."""
    known = answers.known
    if not answers.built:
        since = viewer_engagement.window_start_ms(services)
        found = await viewer_engagement.from_mongo(services, viewer_id, since)
        await best_effort(
            "viewer engagement build", viewer_engagement.build(services, viewer_id, since, found)
        )
        known = {
            kind: {tid: tid in set(found[kind]) for tid in tweet_ids if id_timestamp_ms(tid) >= since}
            for kind in Engagement
        }
    result: dict[Engagement, list[bool]] = {}
    for kind in Engagement:
        older = [tid for tid in tweet_ids if tid not in known[kind]]
        from_mongo: dict[int, bool] = {}
        if older:
            answered = await _in_mongo(services, viewer_id, kind).load_batch(older)
            from_mongo = dict(zip(older, answered, strict=True))
        result[kind] = [known[kind].get(tid, from_mongo.get(tid, False)) for tid in tweet_ids]
    return result


class ViewerEngagementLoader(MeasuredLoader[int, bool]):
    """Tweet ID -> did the viewer like it (or retweet it, by ``kind``): one Redis
    ``ZMSCORE`` for the page, MongoDB only for tweets older than the window or a lost set.
    Redis unreachable: MongoDB answers for the whole page (one query), as for a lost set."""

    def __init__(self, services: Services, viewer_id: int, kind: Engagement) -> None:
        super().__init__()
        self._services = services
        self._viewer_id = viewer_id
        self._kind = kind

    async def load_batch(self, keys: Sequence[int]) -> list[bool]:
        services = self._services
        try:
            async with services.redis.pipeline(transaction=False) as pipe:
                viewer_engagement.queue_read(services, pipe, self._viewer_id, keys)
                (reply,) = await pipe.execute()
        except (RedisError, OSError):
            return await _in_mongo(services, self._viewer_id, self._kind).load_batch(keys)
        answers = viewer_engagement.parse_read(keys, reply)
        return (await answer_engagement(services, self._viewer_id, keys, answers))[self._kind]
