"""Reservations: a uniqueness a sharded collection cannot enforce, held by a document keyed
by the unique value in a collection of its own (``handles``, ``retweet_keys``).

The reservation is written first and the document it names second, so a crash between the
two writes leaves a reservation naming nothing. Such a reservation is reclaimable: a new
claimant takes it over with a conditional update (only if it still names the same holder,
so of two claimants exactly one wins). A holder that is missing but was minted less than
``ORPHAN_AFTER_MS`` ago may be a writer between its two writes, not a crash: the claim is
refused for now (``None``) rather than stolen from it. A holder that exists but has let go
(a retracted retweet whose reservation was not deleted yet) is taken over at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from pymongo.errors import DuplicateKeyError

from starling.store.ids import id_timestamp_ms
from starling.store.mongo_api import MongoCollection

# Far longer than a writer takes between its reservation and its document (two inserts).
ORPHAN_AFTER_MS = 30_000
# Enough for a reservation freed between our insert and our read of it: claim it again.
_CLAIM_ATTEMPTS = 2


class Holder(Enum):
    """What became of the document a reservation names."""

    LIVE = "live"  # exists and holds the unique value
    RELEASED = "released"  # exists but let go of it (a retracted retweet)
    MISSING = "missing"  # does not exist: not written yet, or never will be (a crash)


HolderState = Callable[[int], Awaitable[Holder]]


async def reserve(
    reservations: MongoCollection[Any], key: str, field: str, claimant_id: int, holder_state: HolderState
) -> int | None:
    """Reserve ``key`` for ``claimant_id`` (stored in ``field``). Returns the ID now holding
    it: ``claimant_id`` when the claim succeeded (fresh, or taken over from a released or
    orphaned holder), the live holder's ID when another document holds it, None when its
    holder is missing but too recent to call orphaned (the caller says "try again")."""
    for _ in range(_CLAIM_ATTEMPTS):
        try:
            await reservations.insert_one({"_id": key, field: claimant_id})
            return claimant_id
        except DuplicateKeyError:
            pass
        current = await reservations.find_one({"_id": key})
        if current is None:
            continue  # freed meanwhile
        holder_id: int = current[field]
        state = await holder_state(holder_id)
        if state is Holder.LIVE:
            return holder_id
        if state is Holder.MISSING and id_timestamp_ms(holder_id) > time.time() * 1000 - ORPHAN_AFTER_MS:
            return None
        taken = await reservations.update_one({"_id": key, field: holder_id}, {"$set": {field: claimant_id}})
        if taken.modified_count:
            return claimant_id
    return None


async def release(reservations: MongoCollection[Any], key: str, field: str, holder_id: int) -> None:
    """Free ``key`` if ``holder_id`` still holds it (a claimant may have taken it over)."""
    await reservations.delete_one({"_id": key, field: holder_id})
