"""Loaders for the engagement fields of a tweet: its counts, and what the viewer did to it."""

from __future__ import annotations

from collections.abc import Sequence

from starling.loaders.documents import EdgeExistsLoader
from starling.loaders.measured import MeasuredLoader
from starling.store.counters import Counters, Counts
from starling.store.documents import TweetDoc
from starling.store.mongo_api import MongoCollection
from starling.store.services import Services


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
