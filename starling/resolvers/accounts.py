"""Accounts: sign-up, log-in, log-out, profiles."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from typing import TypedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from starling.config import Settings
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import BadUserInput, Conflict, Unauthenticated
from starling.resolvers.text import (
    BIO_MAX,
    DISPLAY_NAME_MAX,
    check_password,
    clean_handle,
    clean_profile_field,
)
from starling.resolvers.tokens import issue_token, revoke
from starling.store.documents import Document, UserDoc, utcnow
from starling.store.services import Services


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user: UserDoc


@lru_cache
def _hasher(time_cost: int, memory_cost: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost)


def password_hasher(settings: Settings) -> PasswordHasher:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_cost_kib)


def _session(services: Services, user: UserDoc) -> Session:
    settings = services.settings
    assert settings.token_secret is not None
    token = issue_token(settings.token_secret, user["_id"], settings.token_ttl_seconds)
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
        **display_name_fields(display_name),
        "bio": "",
        "password_hash": password_hash,
        "created_at": utcnow(),
        "followers_count": 0,
        "following_count": 0,
        "tweets_count": 0,
    }


async def sign_up(ctx: RequestContext, handle: str, password: str, display_name: str | None) -> Session:
    services = ctx.services
    handle = clean_handle(handle)
    check_password(password)
    name = clean_profile_field(display_name or handle, DISPLAY_NAME_MAX, "Display name") or handle
    if await services.db.users.find_one({"handle_lower": handle.lower()}, {"_id": 1}):
        raise Conflict(f"The handle @{handle} is taken.")
    # argon2 is deliberately slow: keep it off the event loop.
    password_hash = await asyncio.to_thread(password_hasher(services.settings).hash, password)
    user = new_user_document(services, handle, password_hash, name)
    try:
        await services.db.users.insert_one(user)
    except DuplicateKeyError:
        raise Conflict(f"The handle @{handle} is taken.") from None
    return _session(services, user)


async def log_in(ctx: RequestContext, handle: str, password: str) -> Session:
    services = ctx.services
    user = await services.db.users.find_one({"handle_lower": handle.strip().lower()})
    hasher = password_hasher(services.settings)
    try:
        if user is None:
            raise VerificationError
        await asyncio.to_thread(hasher.verify, user["password_hash"], password)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated("Wrong handle or password.") from None
    if hasher.check_needs_rehash(user["password_hash"]):
        new_hash = await asyncio.to_thread(hasher.hash, password)
        await services.db.users.update_one({"_id": user["_id"]}, {"$set": {"password_hash": new_hash}})
    return _session(services, user)


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
