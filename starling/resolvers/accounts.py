"""Accounts: sign-up, log-in, log-out, password changes, profiles.

Passwords are checked against their maximum length before anything is hashed, and every
attempt to prove one (log-in, password change) is counted against the handle's log-in
budget first (``resolvers.limits``). A log-in for a handle nobody has verifies the password
against a dummy hash made with the same parameters, so it takes as long as a wrong password
for a real handle: the time of an answer does not tell which handles exist.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import TypedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from starling.config import Settings
from starling.resolvers import limits
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import BadUserInput, Conflict, Unauthenticated
from starling.resolvers.text import (
    BIO_MAX,
    DISPLAY_NAME_MAX,
    HANDLE_RE,
    check_password,
    check_password_length,
    clean_handle,
    clean_profile_field,
)
from starling.resolvers.tokens import issue_token, revoke, void_older_generations
from starling.store import reservations, user_cache
from starling.store.documents import Document, UserDoc, utcnow
from starling.store.services import Services

WRONG_CREDENTIALS = "Wrong handle or password."


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user: UserDoc


@lru_cache
def _hasher(time_cost: int, memory_cost: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost)


def password_hasher(settings: Settings) -> PasswordHasher:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_cost_kib)


@lru_cache
def _dummy_hash(time_cost: int, memory_cost: int) -> str:
    return _hasher(time_cost, memory_cost).hash(secrets.token_urlsafe(32))


def dummy_password_hash(settings: Settings) -> str:
    """The hash of a random secret nobody knows, made once with the hasher's parameters: what
    a log-in for an unknown handle verifies against."""
    return _dummy_hash(settings.argon2_time_cost, settings.argon2_memory_cost_kib)


async def _password_matches(settings: Settings, password_hash: str | None, password: str) -> bool:
    """Verify off the event loop (argon2 is deliberately slow). ``None`` (no such user) is
    verified against the dummy hash, which takes the same time, and never matches."""
    hasher = password_hasher(settings)

    def verify() -> bool:
        try:
            return hasher.verify(password_hash or dummy_password_hash(settings), password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify) and password_hash is not None


def _session(services: Services, user: UserDoc) -> Session:
    settings = services.settings
    assert settings.token_secret is not None
    token = issue_token(
        settings.token_secret, user["_id"], settings.token_ttl_seconds, user.get("token_generation", 0)
    )
    return Session(token=token, user=user)


class DisplayNameFields(TypedDict):
    display_name: str
    display_name_lower: str


def display_name_fields(display_name: str) -> DisplayNameFields:
    """The display name and its lower-cased copy, which ``searchUsers`` prefix-matches."""
    return {"display_name": display_name, "display_name_lower": display_name.lower()}


def new_user_document(services: Services, handle: str, password_hash: str, display_name: str) -> UserDoc:
    return {
        "_id": services.ids.next_id(),
        "handle": handle,
        "handle_lower": handle.lower(),
        "display_name": display_name,
        "display_name_lower": display_name.lower(),  # as display_name_fields writes it
        "bio": "",
        "password_hash": password_hash,
        "created_at": utcnow(),
        "followers_count": 0,
        "following_count": 0,
        "tweets_count": 0,
    }


async def sign_up(ctx: RequestContext, handle: str, password: str, display_name: str | None) -> Session:
    services = ctx.services
    await limits.sign_up_attempt(ctx)
    handle = clean_handle(handle)
    check_password(password, services.settings.password_max_length)
    name = clean_profile_field(display_name or handle, DISPLAY_NAME_MAX, "Display name") or handle
    # Before the slow hash; also covers users from before the ``handles`` reservations.
    if await services.db.users.find_one({"handle_lower": handle.lower()}, {"_id": 1}):
        raise Conflict(f"The handle @{handle} is taken.")
    # argon2 is deliberately slow: keep it off the event loop.
    password_hash = await asyncio.to_thread(password_hasher(services.settings).hash, password)
    user = new_user_document(services, handle, password_hash, name)
    holder = await reservations.reserve(
        services.db.handles, user["handle_lower"], "user_id", user["_id"], _user_state(services)
    )
    if holder is None:
        raise Conflict(f"The handle @{handle} is being signed up for; try again in a moment.")
    if holder != user["_id"]:
        raise Conflict(f"The handle @{handle} is taken.")
    try:
        await services.db.users.insert_one(user)
    except DuplicateKeyError:  # a database from before the reservations (its unique index)
        raise Conflict(f"The handle @{handle} is taken.") from None
    return _session(services, user)


def _user_state(services: Services) -> reservations.HolderState:
    """A handle's holder is live while the user exists (users are never deleted)."""

    async def state(user_id: int) -> reservations.Holder:
        found = await services.db.users.find_one({"_id": user_id}, {"_id": 1})
        return reservations.Holder.LIVE if found else reservations.Holder.MISSING

    return state


async def log_in(ctx: RequestContext, handle: str, password: str) -> Session:
    services = ctx.services
    settings = services.settings
    handle = handle.strip()
    check_password_length(password, settings.password_max_length)
    # No handle has another shape: refused without a guess counted (and the key it would
    # need) or a hash verified, which tells nothing about which handles exist.
    if not HANDLE_RE.fullmatch(handle):
        raise Unauthenticated(WRONG_CREDENTIALS)
    await limits.login_attempt(ctx, handle)
    user = await services.db.users.find_one({"handle_lower": handle.lower()})
    if not await _password_matches(settings, user["password_hash"] if user else None, password):
        raise Unauthenticated(WRONG_CREDENTIALS)
    assert user is not None
    hasher = password_hasher(settings)
    if hasher.check_needs_rehash(user["password_hash"]):
        new_hash = await asyncio.to_thread(hasher.hash, password)
        await services.db.users.update_one({"_id": user["_id"]}, {"$set": {"password_hash": new_hash}})
    return _session(services, user)


async def change_password(ctx: RequestContext, old_password: str, new_password: str) -> Session:
    """Check the old password, store the new one's hash and void every token of the user
    (the token generation moves up: this request's token too, and sockets holding any of
    them close); returns a fresh token."""
    viewer = await ctx.require_viewer()
    services = ctx.services
    settings = services.settings
    check_password_length(old_password, settings.password_max_length)
    check_password(new_password, settings.password_max_length)
    users = services.db.users
    user = await users.find_one({"_id": viewer.user_id}, {"handle_lower": 1, "password_hash": 1})
    if user is None:
        raise Unauthenticated("Your account no longer exists.")
    await limits.login_attempt(ctx, user["handle_lower"])
    if not await _password_matches(settings, user["password_hash"], old_password):
        raise BadUserInput("The current password is not right.")
    new_hash = await asyncio.to_thread(password_hasher(settings).hash, new_password)
    updated = await users.find_one_and_update(
        {"_id": viewer.user_id},
        {
            "$set": {"password_hash": new_hash, "tokens_revoked_at": utcnow()},
            "$inc": {"token_generation": 1},
        },
        projection={"password_hash": 0},
        return_document=ReturnDocument.AFTER,
    )
    if updated is None:
        raise Unauthenticated("Your account no longer exists.")
    await user_cache.forget(services, viewer.user_id)
    await void_older_generations(services, viewer.user_id, updated["token_generation"])
    return _session(services, updated)


async def log_out(ctx: RequestContext) -> bool:
    viewer = await ctx.require_viewer()
    await revoke(ctx.services, viewer)
    return True


async def update_profile(ctx: RequestContext, display_name: str | None, bio: str | None) -> UserDoc:
    viewer = await ctx.require_viewer()
    changes: Document = {}
    if display_name is not None:
        name = clean_profile_field(display_name, DISPLAY_NAME_MAX, "Display name")
        if not name:
            raise BadUserInput("Display name cannot be empty.")
        changes.update(display_name_fields(name))
    if bio is not None:
        changes["bio"] = clean_profile_field(bio, BIO_MAX, "Bio")
    users = ctx.services.db.users
    public = {"password_hash": 0}
    if changes:
        user = await users.find_one_and_update(
            {"_id": viewer.user_id},
            {"$set": changes},
            projection=public,
            return_document=ReturnDocument.AFTER,
        )
        await user_cache.forget(ctx.services, viewer.user_id)
    else:
        user = await users.find_one({"_id": viewer.user_id}, public)
    if user is None:
        raise Unauthenticated("Your account no longer exists.")
    return user


async def user_by_handle(ctx: RequestContext, handle: str) -> UserDoc | None:
    return await ctx.services.db.users.find_one(
        {"handle_lower": handle.strip().lower()}, {"password_hash": 0}
    )


async def viewer_user(ctx: RequestContext) -> UserDoc | None:
    viewer_id = await ctx.viewer_id()
    if viewer_id is None:
        return None
    return await (await ctx.loaders()).users.load(viewer_id)
