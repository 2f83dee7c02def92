"""Access tokens: HMAC-signed JWTs with an expiry and an ID, revocable by ID.

A revocation is written to MongoDB (the record, expiring with the token) and to Redis (what
requests check, one ``EXISTS``). If Redis loses its data, the worker's repair job copies
the unexpired revocations back before anything else trusts it (``revocations_loaded``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from redis.exceptions import RedisError

from starling.store.degrade import best_effort
from starling.store.documents import as_utc, utcnow
from starling.store.services import Services

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int
    token_id: str
    expires_at: datetime


def issue_token(secret: str, user_id: int, ttl_seconds: int) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> Viewer | None:
    """The viewer a token names, or None when it is malformed, forged or expired."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "jti", "exp"]})
        return Viewer(
            user_id=int(claims["sub"]),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
        )
    except (jwt.InvalidTokenError, ValueError):
        return None


async def is_revoked(services: Services, viewer: Viewer) -> bool:
    """Redis answers (one ``EXISTS``); while Redis is unreachable MongoDB's record does, so
    signed-in users can still write when only Redis is down."""
    try:
        return bool(await services.redis.exists(services.keys.revoked_token(viewer.token_id)))
    except (RedisError, OSError):
        return await services.db.revoked_tokens.find_one({"_id": viewer.token_id}, {"_id": 1}) is not None


async def revoke(services: Services, viewer: Viewer) -> None:
    """Record the revocation in MongoDB, then cache it in Redis. With Redis down the cache
    write is skipped: `is_revoked` reads MongoDB meanwhile, and `restore_revocations` copies
    the recent revocations back once Redis answers."""
    await services.db.revoked_tokens.update_one(
        {"_id": viewer.token_id},
        {"$set": {"user_id": viewer.user_id, "expires_at": viewer.expires_at, "revoked_at": utcnow()}},
        upsert=True,
    )
    await best_effort(
        "revocation cache", _cache_revocations(services, [(viewer.token_id, viewer.expires_at)])
    )


async def _cache_revocations(services: Services, revocations: list[tuple[str, datetime]]) -> None:
    now = datetime.now(UTC)
    async with services.redis.pipeline(transaction=False) as pipe:
        for token_id, expires_at in revocations:
            remaining = int((as_utc(expires_at) - now).total_seconds()) + 1
            pipe.set(services.keys.revoked_token(token_id), 1, ex=max(remaining, 1))
        await pipe.execute()


async def restore_revocations(services: Services) -> int:
    """Copy revocations from MongoDB into Redis; run at start-up and by the worker's repair
    cron. A Redis that lost its data (no marker) gets every unexpired one; otherwise those
    of the last ``revocation_resync_seconds`` are copied again, which covers a log-out whose
    cache write failed while Redis was briefly down. Returns how many were copied."""
    marker = services.keys.revocations_loaded()
    now = datetime.now(UTC)
    query: dict[str, Any] = {"expires_at": {"$gt": now}}
    if await services.redis.exists(marker):
        query["revoked_at"] = {"$gt": now - timedelta(seconds=services.settings.revocation_resync_seconds)}
    docs = await services.db.revoked_tokens.find(query, {"expires_at": 1}).to_list()
    await _cache_revocations(services, [(doc["_id"], doc["expires_at"]) for doc in docs])
    await services.redis.set(marker, 1)
    return len(docs)
