"""Access tokens: HMAC-signed JWTs with an expiry, an ID and a generation, revocable one by
one (log-out) or all at once (a password change raises the user's generation).

MongoDB holds every revocation (``revoked_tokens``, expiring with the token) and each user's
``token_generation``; Redis mirrors them per user (``store.auth_state``), so a check is one
``HMGET``, the round trip the old per-token ``EXISTS`` cost. When Redis does not have a
user's state (lost with a ``FLUSHDB``, expired, evicted), the check asks MongoDB and copies
the answer back: a revoked token is refused from the first request after a loss. When Redis
is unreachable MongoDB answers, so signed-in users can still write.

A revocation is also announced on ``Keys.revocation_events``: every API process closes its
WebSockets that hold the token (``resolvers.sessions``).

Why a generation rather than a "tokens issued before T" time: it needs no clock (a token
issued in the same millisecond as the change is no puzzle), and a log-in that checked the
old password just before the change gets a token of the old generation, void at once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from redis.exceptions import RedisError

from starling.store import auth_state
from starling.store.degrade import best_effort
from starling.store.documents import RevokedTokenDoc, as_utc, utcnow
from starling.store.pubsub import publish
from starling.store.services import Services

log = logging.getLogger(__name__)

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int
    token_id: str
    expires_at: datetime
    generation: int = 0


def issue_token(secret: str, user_id: int, ttl_seconds: int, generation: int = 0) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "jti": secrets.token_urlsafe(16),
        "gen": generation,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> Viewer | None:
    """The viewer a token names, or None when it is malformed, forged or expired. Tokens
    issued before generations existed are of generation 0."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "jti", "exp"]})
        return Viewer(
            user_id=int(claims["sub"]),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
            generation=int(claims.get("gen", 0)),
        )
    except (jwt.InvalidTokenError, ValueError, TypeError):
        return None


async def is_revoked(services: Services, viewer: Viewer) -> bool:
    return (await revoked(services, [viewer]))[0]


async def revoked(services: Services, viewers: Sequence[Viewer]) -> list[bool]:
    """Whether each token is revoked: one pipelined ``HMGET`` per token, all in one round trip
    (a WebSocket sweep checks many); MongoDB for users Redis has no state for, or for all of
    them while Redis is unreachable."""
    try:
        async with services.redis.pipeline(transaction=False) as pipe:
            for viewer in viewers:
                auth_state.queue_read(pipe, services.keys, viewer.user_id, viewer.token_id)
            replies = await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("token check reads MongoDB: Redis unavailable (%s)", exc)
        return list(await asyncio.gather(*(_revoked_in_mongo(services, viewer) for viewer in viewers)))
    states = [auth_state.parse_read(reply) for reply in replies]
    unknown = [viewer for viewer, state in zip(viewers, states, strict=True) if state is None]
    from_mongo = iter(await asyncio.gather(*(_revoked_in_mongo(services, v, restore=True) for v in unknown)))
    return [
        next(from_mongo) if state is None else state.revoked or viewer.generation < state.generation
        for viewer, state in zip(viewers, states, strict=True)
    ]


async def revoked_by_reply(services: Services, viewer: Viewer, reply: Sequence[bytes | None]) -> bool:
    """``is_revoked``'s answer from the reply of ``auth_state.queue_read`` sent in a caller's
    pipeline; MongoDB answers (and restores the state) when the user's state is not loaded."""
    state = auth_state.parse_read(reply)
    if state is None:
        return await _revoked_in_mongo(services, viewer, restore=True)
    return state.revoked or viewer.generation < state.generation


async def _revoked_in_mongo(services: Services, viewer: Viewer, *, restore: bool = False) -> bool:
    """MongoDB's answer; with ``restore``, the user's state is copied into Redis (best effort)."""
    now = datetime.now(UTC)
    db = services.db
    user, revocations = await asyncio.gather(
        db.users.find_one({"_id": viewer.user_id}, {"token_generation": 1}),
        db.revoked_tokens.find(
            {"user_id": viewer.user_id, "expires_at": {"$gt": now}}, {"expires_at": 1}
        ).to_list(),
    )
    generation = user.get("token_generation", 0) if user else 0
    if restore:
        await best_effort(
            "token state restore",
            _mirror(services, viewer.user_id, generation, [_entry(doc) for doc in revocations], loaded=True),
        )
    return viewer.generation < generation or any(doc["_id"] == viewer.token_id for doc in revocations)


def _revocation(token_id: str, expires_at: datetime) -> tuple[str, int]:
    """A revocation as the Redis state holds it: the token ID and when it stops mattering
    (unix seconds, rounded up)."""
    return token_id, int(as_utc(expires_at).timestamp()) + 1


def _entry(doc: RevokedTokenDoc) -> tuple[str, int]:
    return _revocation(doc["_id"], doc["expires_at"])


async def _mirror(
    services: Services,
    user_id: int,
    generation: int | None,
    revocations: Sequence[tuple[str, int]],
    *,
    loaded: bool = False,
) -> None:
    await auth_state.write(
        services.redis,
        services.keys,
        user_id,
        ttl_seconds=services.settings.token_ttl_seconds,
        generation=generation,
        revoked=revocations,
        loaded=loaded,
    )


async def revoke(services: Services, viewer: Viewer) -> None:
    """Record the revocation in MongoDB, then mirror it in Redis and announce it. With Redis
    down those are skipped: checks read MongoDB meanwhile, and ``resync_revocations`` copies
    the recent revocations over once Redis answers."""
    await services.db.revoked_tokens.update_one(
        {"_id": viewer.token_id},
        {"$set": {"user_id": viewer.user_id, "expires_at": viewer.expires_at, "revoked_at": utcnow()}},
        upsert=True,
    )
    revocation = _revocation(viewer.token_id, viewer.expires_at)
    await best_effort("revocation mirror", _mirror(services, viewer.user_id, None, [revocation]))
    await _announce(services, {"user_id": viewer.user_id, "token_id": viewer.token_id})


async def void_older_generations(services: Services, user_id: int, generation: int) -> None:
    """The user's ``token_generation`` was raised to ``generation`` in MongoDB (a password
    change): mirror it in Redis and announce it, best effort as ``revoke``."""
    await best_effort("token generation mirror", _mirror(services, user_id, generation, []))
    await _announce(services, {"user_id": user_id, "generation": generation})


async def _announce(services: Services, event: dict[str, Any]) -> None:
    await best_effort(
        "revocation event", publish(services.queue_redis, services.keys.revocation_events(), event)
    )


async def resync_revocations(services: Services) -> int:
    """Copy the revocations and generation changes of the last ``revocation_resync_seconds``
    into Redis again: covers a log-out or password change whose Redis write failed while
    Redis was briefly unreachable (a Redis that lost its data needs nothing: checks restore
    each user from MongoDB). Run by the worker's repair cron; returns how many users."""
    now = datetime.now(UTC)
    since = now - timedelta(seconds=services.settings.revocation_resync_seconds)
    db = services.db
    tokens = await db.revoked_tokens.find(
        {"revoked_at": {"$gt": since}, "expires_at": {"$gt": now}}, {"user_id": 1, "expires_at": 1}
    ).to_list()
    users = await db.users.find({"tokens_revoked_at": {"$gt": since}}, {"token_generation": 1}).to_list()
    by_user: dict[int, list[tuple[str, int]]] = {}
    for doc in tokens:
        by_user.setdefault(doc["user_id"], []).append(_entry(doc))
    generations = {doc["_id"]: int(doc.get("token_generation", 0)) for doc in users}
    for user_id in by_user.keys() | generations.keys():
        await _mirror(services, user_id, generations.get(user_id), by_user.get(user_id, []))
    return len(by_user.keys() | generations.keys())
