"""Read markers: how far a user has read a timeline (``markers``, ``updateMarker``).

A marker only moves forward: an update names a position, and it is written only when it is
past the stored one, so several devices reporting in any order converge on the furthest.
One document per (user, timeline); the conditional upsert is one round trip, and when the
stored marker is already further on (the filter misses and the upsert collides on ``_id``)
it is read back instead.
"""

from __future__ import annotations

from enum import StrEnum

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from starling.store.documents import MarkerDoc, utcnow
from starling.store.services import Services


class MarkerTimeline(StrEnum):
    HOME_FEED = "HOME_FEED"
    NOTIFICATIONS = "NOTIFICATIONS"


def marker_id(user_id: int, timeline: MarkerTimeline) -> str:
    return f"{user_id}:{timeline.value}"


async def read_markers(services: Services, user_id: int) -> dict[MarkerTimeline, MarkerDoc]:
    """The user's markers that exist, by timeline (one query)."""
    ids = [marker_id(user_id, timeline) for timeline in MarkerTimeline]
    docs = await services.db.markers.find({"_id": {"$in": ids}}).to_list()
    return {MarkerTimeline(doc["timeline"]): doc for doc in docs}


async def advance_marker(
    services: Services, user_id: int, timeline: MarkerTimeline, last_read_id: int
) -> MarkerDoc:
    """Move the marker to ``last_read_id`` unless it is there or further already; returns
    the marker as it now is."""
    key = marker_id(user_id, timeline)
    markers = services.db.markers
    try:
        doc = await markers.find_one_and_update(
            {"_id": key, "last_read_id": {"$lt": last_read_id}},
            {
                "$set": {"last_read_id": last_read_id, "updated_at": utcnow()},
                "$setOnInsert": {"user_id": user_id, "timeline": timeline.value},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        doc = None  # it exists, at or past last_read_id
    if doc is None:
        doc = await markers.find_one({"_id": key})
    assert doc is not None  # written above, or there already
    return doc
