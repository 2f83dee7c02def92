"""Blocks and mutes: MongoDB holds them (``blocks``, ``mutes``: one document per (user,
target)), Redis mirrors each user's side as sets read with every feed page.

**Sets** (``store.keys``, all in the user's ``{u<shard>}`` slot, so they share the feed's
first pipeline): ``blocked(U)`` whom U blocked, ``blocked_by(U)`` who blocked U (a block
hides both ways, and the blocked user's reads must know it without a MongoDB query), and
``muted(U)`` whom U muted. Each carries the member ``BUILT``: a set without it (expired,
flushed, never built) is rebuilt from MongoDB whole, with a TTL
(``RELATION_SET_TTL_SECONDS``). A block or mute edits the sets in place only when they
exist, as follows edit a reader's celebrity set: creating one here would make a set that
claims to be whole while missing older members.

**Consistency.** MongoDB is written first; the Redis edit follows, best effort. Redis down
at that moment (or a rebuild that read MongoDB just before the write and stores just
after the edit) leaves a set without the change until it expires and is rebuilt: reads
hide by the sets, so a new block can show the other's tweets for at most the TTL. Writes
that a block forbids check MongoDB (``blocked_between``) and are never wrong.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starling.store.documents import RelationDoc
from starling.store.mongo_api import MongoCollection
from starling.store.redis import DataPipeline, queue_replace_set, queue_script
from starling.store.services import Services

BUILT = "built"
"""The member every cached relation set carries once it is whole."""


class RelationKind(enum.Enum):
    BLOCK = "blocks"  # the collection's name
    MUTE = "mutes"


@dataclass(frozen=True, slots=True)
class Relations:
    """A user's blocks and mutes, both ways for blocks."""

    blocked: frozenset[int] = frozenset()
    blocked_by: frozenset[int] = frozenset()
    muted: frozenset[int] = frozenset()

    def blocks_between(self, user_id: int) -> bool:
        """Whether a block stands between this user and ``user_id``, either way."""
        return user_id in self.blocked or user_id in self.blocked_by

    def hides_in_feed(self, user_id: int) -> bool:
        """Whether the user's home feed (and notifications) leave out ``user_id``."""
        return self.blocks_between(user_id) or user_id in self.muted

    @property
    def hidden_everywhere(self) -> frozenset[int]:
        return self.blocked | self.blocked_by


NONE = Relations()


def _set_keys(services: Services, user_id: int) -> list[str]:
    keys = services.keys
    return [keys.blocked(user_id), keys.blocked_by(user_id), keys.muted(user_id)]


def queue_read(services: Services, pipe: DataPipeline, user_id: int) -> None:
    """Queue the reads of the user's three sets (three replies for ``relations_from``)."""
    for key in _set_keys(services, user_id):
        pipe.smembers(key)


async def relations_from(services: Services, user_id: int, replies: Sequence[set[bytes]]) -> Relations:
    """The user's relations from the replies of ``queue_read``; a set that is not built is
    rebuilt from MongoDB (one query each) and stored."""
    decoded: list[frozenset[int] | None] = [_decode(members) for members in replies]
    lost = [index for index, members in enumerate(decoded) if members is None]
    if lost:
        rebuilt = await _from_mongo(services, user_id, lost)
        keys = _set_keys(services, user_id)
        ttl = services.settings.relation_set_ttl_seconds
        async with services.redis.pipeline(transaction=False) as pipe:
            for index, members in rebuilt.items():
                queue_replace_set(pipe, keys[index], ttl, [BUILT, *members])
                decoded[index] = members
            await pipe.execute()
    blocked, blocked_by, muted = (members or frozenset() for members in decoded)
    return Relations(blocked=blocked, blocked_by=blocked_by, muted=muted)


async def read_relations(services: Services, user_id: int) -> Relations:
    """The user's relations: one pipeline, plus a rebuild of what was lost."""
    async with services.redis.pipeline(transaction=False) as pipe:
        queue_read(services, pipe, user_id)
        replies = await pipe.execute()
    return await relations_from(services, user_id, replies)


async def relations_from_mongo(services: Services, user_id: int) -> Relations:
    """The user's relations straight from MongoDB (Redis unreachable)."""
    blocked, blocked_by, muted = (await _from_mongo(services, user_id, [0, 1, 2])).values()
    return Relations(blocked=blocked, blocked_by=blocked_by, muted=muted)


def _decode(members: set[bytes]) -> frozenset[int] | None:
    texts = {member.decode() for member in members}
    if BUILT not in texts:
        return None
    return frozenset(int(text) for text in texts if text != BUILT)


# Which query rebuilds each set of ``_set_keys``: collection, the user's field, the other's.
def _target_of(doc: RelationDoc) -> int:
    return doc["target_id"]


def _user_of(doc: RelationDoc) -> int:
    return doc["user_id"]


_SOURCES: tuple[tuple[RelationKind, str, Callable[[RelationDoc], int]], ...] = (
    (RelationKind.BLOCK, "user_id", _target_of),
    (RelationKind.BLOCK, "target_id", _user_of),
    (RelationKind.MUTE, "user_id", _target_of),
)


async def _from_mongo(services: Services, user_id: int, indexes: Sequence[int]) -> dict[int, frozenset[int]]:
    found: dict[int, frozenset[int]] = {}
    for index in indexes:
        kind, mine, other_of = _SOURCES[index]
        docs = await relation_collection(services, kind).find({mine: user_id}).to_list()
        found[index] = frozenset(other_of(doc) for doc in docs)
    return found


def relation_collection(services: Services, kind: RelationKind) -> MongoCollection[RelationDoc]:
    return services.db.blocks if kind is RelationKind.BLOCK else services.db.mutes


# KEYS[1] a cached set; ARGV[1] the member; ARGV[2] "1" add / "0" remove. Only a built set
# is edited (module doc).
_EDIT_BUILT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[3]) == 0 then return 0 end
if ARGV[2] == '1' then return redis.call('SADD', KEYS[1], ARGV[1]) end
return redis.call('SREM', KEYS[1], ARGV[1])
"""


async def mirror_change(
    services: Services, kind: RelationKind, user_id: int, target_id: int, *, add: bool
) -> None:
    """Edit the cached sets after a block or mute (or its undoing) was stored in MongoDB."""
    keys = services.keys
    edits = [(keys.blocked(user_id), target_id), (keys.blocked_by(target_id), user_id)]
    if kind is RelationKind.MUTE:
        edits = [(keys.muted(user_id), target_id)]
    async with services.redis.pipeline(transaction=False) as pipe:
        for key, member in edits:
            queue_script(pipe, _EDIT_BUILT, [key], [member, 1 if add else 0, BUILT])
        await pipe.execute()


async def blocked_between(services: Services, user_id: int, *other_ids: int) -> bool:
    """Whether a block stands between the user and any of ``other_ids``, either way, from
    MongoDB (one query however many others)."""
    others = list(set(other_ids) - {user_id})
    if not others:
        return False
    doc = await services.db.blocks.find_one(
        {
            "$or": [
                {"user_id": user_id, "target_id": {"$in": others}},
                {"user_id": {"$in": others}, "target_id": user_id},
            ]
        },
        {"_id": 1},
    )
    return doc is not None


async def silenced_for(services: Services, actor_id: int, recipient_ids: Sequence[int]) -> set[int]:
    """Which of ``recipient_ids`` must not hear of ``actor_id``: a block either way, or the
    recipient muted the actor (MongoDB, two queries)."""
    if not recipient_ids:
        return set()
    recipients = list(recipient_ids)
    blocks = await services.db.blocks.find(
        {
            "$or": [
                {"user_id": {"$in": recipients}, "target_id": actor_id},
                {"user_id": actor_id, "target_id": {"$in": recipients}},
            ]
        },
        {"user_id": 1, "target_id": 1},
    ).to_list()
    mutes = await services.db.mutes.find(
        {"user_id": {"$in": recipients}, "target_id": actor_id}, {"user_id": 1}
    ).to_list()
    silenced = {doc["user_id"] if doc["user_id"] != actor_id else doc["target_id"] for doc in blocks}
    return silenced | {doc["user_id"] for doc in mutes}
