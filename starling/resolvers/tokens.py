"""Access tokens: HMAC-signed JWTs with an expiry and an ID, revocable by ID.

A revocation is written to MongoDB (the record, expiring with the token) and to Redis (what
requests check, one ``EXISTS``). If Redis loses its data, the worker's repair job copies
the unexpired revocations back before anything else trusts it (``revocations_loaded``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from starling.store.documents import as_utc
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
    return bool(await services.redis.exists(services.keys.revoked_token(viewer.token_id)))


async def revoke(services: Services, viewer: Viewer) -> None:
    await services.db.revoked_tokens.update_one(
        {"_id": viewer.token_id},
        {"$set": {"user_id": viewer.user_id, "expires_at": viewer.expires_at}},
        upsert=True,
    )
    remaining = int((viewer.expires_at - datetime.now(UTC)).total_seconds()) + 1
    if remaining > 0:
        await services.redis.set(services.keys.revoked_token(viewer.token_id), 1, ex=remaining)


async def restore_revocations(services: Services) -> int:
    """Copy unexpired revocations from MongoDB into a Redis that lost them; run at start-up
    and by the worker's repair cron. Returns how many were restored (0 when not needed)."""
    marker = services.keys.revocations_loaded()
    if await services.redis.exists(marker):
        return 0
    now = datetime.now(UTC)
    docs = await services.db.revoked_tokens.find({"expires_at": {"$gt": now}}).to_list()
    async with services.redis.pipeline(transaction=False) as pipe:
        for doc in docs:
            expires_at = as_utc(doc["expires_at"])
            remaining = int((expires_at - now).total_seconds()) + 1
            pipe.set(services.keys.revoked_token(doc["_id"]), 1, ex=max(remaining, 1))
        pipe.set(marker, 1)
        await pipe.execute()
    return len(docs)
