"""Authentication edges over HTTP: log-in time that does not depend on the handle existing,
the longest password, changePassword voiding every token, and revocations surviving the
loss of Redis."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import redis as sync_redis
from argon2 import PasswordHasher
from starlette.applications import Starlette

from starling.resolvers.accounts import dummy_password_hash, password_hasher
from starling.store.services import Services
from starling.workers.repair import repair_revocations
from tests.api import PASSWORD, Account, Api
from tests.test_redis_down import RedisOutage

VIEWER = "{ viewer { handle } }"
LOG_IN = "mutation($h: String!, $p: String!) { logIn(handle: $h, password: $p) { token } }"
CHANGE = (
    "mutation($old: String!, $new: String!) { changePassword(oldPassword: $old, newPassword: $new) "
    "{ token user { handle } } }"
)
NEW_PASSWORD = "a new and longer secret"


class HasherCalls:
    """What argon2 was asked to verify and to hash (the calls still go through)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.verified: list[str] = []
        self.hashed = 0
        verify, hash_ = PasswordHasher.verify, PasswordHasher.hash

        def counting_verify(hasher: PasswordHasher, password_hash: str, password: str | bytes) -> bool:
            self.verified.append(password_hash)
            return verify(hasher, password_hash, password)

        def counting_hash(hasher: PasswordHasher, password: str | bytes, **kwargs: object) -> str:
            self.hashed += 1
            return hash_(hasher, password, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
        monkeypatch.setattr(PasswordHasher, "hash", counting_hash)


@pytest.fixture
def hasher_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[HasherCalls]:
    yield HasherCalls(monkeypatch)


def services_of(app: Starlette) -> Services:
    return app.state.services


async def log_in(api: Api, handle: str, password: str = PASSWORD) -> str:
    return (await api.gql(LOG_IN, {"h": handle, "p": password}))["logIn"]["token"]


async def signed_in(api: Api, token: str) -> bool:
    return (await api.gql(VIEWER, token=token))["viewer"] is not None


async def test_an_unknown_handle_is_verified_against_the_dummy_hash(
    app: Starlette, api: Api, hasher_calls: HasherCalls
) -> None:
    settings = services_of(app).settings
    await api.sign_up("someone")
    user = await services_of(app).db.users.find_one({"handle_lower": "someone"})
    hasher_calls.verified.clear()

    assert await api.error_codes(LOG_IN, {"h": "nobody", "p": PASSWORD}) == ["UNAUTHENTICATED"]
    assert await api.error_codes(LOG_IN, {"h": "someone", "p": "wrong password"}) == ["UNAUTHENTICATED"]
    # The same work either way: one argon2 verification, with the same parameters.
    assert hasher_calls.verified == [dummy_password_hash(settings), user["password_hash"]]
    assert not password_hasher(settings).check_needs_rehash(dummy_password_hash(settings))
    # The dummy hash is made once.
    await api.error_codes(LOG_IN, {"h": "nobody2", "p": PASSWORD})
    assert hasher_calls.verified[-1] == hasher_calls.verified[0]


async def test_a_too_long_password_is_refused_before_any_hashing(
    app: Starlette, api: Api, hasher_calls: HasherCalls
) -> None:
    maximum = services_of(app).settings.password_max_length
    assert maximum == 1024
    account = await api.sign_up("careful")
    hasher_calls.verified.clear()
    hasher_calls.hashed = 0
    too_long = "x" * (maximum + 1)
    sign_up = 'mutation($p: String!) { signUp(handle: "longpass", password: $p) { token } }'
    assert await api.error_codes(sign_up, {"p": too_long}) == ["BAD_USER_INPUT"]
    assert await api.error_codes(LOG_IN, {"h": "careful", "p": too_long}) == ["BAD_USER_INPUT"]
    for old, new in ((too_long, NEW_PASSWORD), (PASSWORD, too_long)):
        assert await api.error_codes(CHANGE, {"old": old, "new": new}, account.token) == ["BAD_USER_INPUT"]
    assert (hasher_calls.verified, hasher_calls.hashed) == ([], 0)
    # The maximum itself is fine.
    longest = "y" * maximum
    await api.gql(sign_up, {"p": longest})
    assert await log_in(api, "longpass", longest)


async def test_changing_the_password_voids_every_token_and_returns_a_fresh_one(api: Api) -> None:
    account = await api.sign_up("changer")
    other = await log_in(api, "changer")
    data = await api.gql(CHANGE, {"old": PASSWORD, "new": NEW_PASSWORD}, account.token)
    fresh = data["changePassword"]["token"]
    assert data["changePassword"]["user"] == {"handle": "changer"}

    for old_token in (account.token, other):
        assert not await signed_in(api, old_token)
        assert await api.error_codes('mutation { postTweet(text: "x") { id } }', token=old_token) == [
            "UNAUTHENTICATED"
        ]
    assert await signed_in(api, fresh)
    assert await api.error_codes(LOG_IN, {"h": "changer", "p": PASSWORD}) == ["UNAUTHENTICATED"]
    assert await signed_in(api, await log_in(api, "changer", NEW_PASSWORD))


async def test_a_wrong_current_password_changes_nothing(api: Api) -> None:
    account = await api.sign_up("forgetful")
    codes = await api.error_codes(CHANGE, {"old": "not my password", "new": NEW_PASSWORD}, account.token)
    assert codes == ["BAD_USER_INPUT"]
    assert await signed_in(api, account.token)
    assert await log_in(api, "forgetful")
    assert await api.error_codes(CHANGE, {"old": PASSWORD, "new": NEW_PASSWORD}) == ["UNAUTHENTICATED"]


def flush(app: Starlette) -> None:
    """FLUSHDB the test's Redis database, as a Redis that lost its data."""
    settings = services_of(app).settings
    assert settings.redis_url is not None
    sync_redis.Redis.from_url(settings.redis_url).flushdb()


async def test_a_revoked_token_stays_revoked_when_redis_loses_its_data(app: Starlette, api: Api) -> None:
    account = await api.sign_up("leaver")
    changed = await api.sign_up("changer")
    assert await api.gql("mutation { logOut }", token=account.token) == {"logOut": True}
    fresh = (await api.gql(CHANGE, {"old": PASSWORD, "new": NEW_PASSWORD}, changed.token))["changePassword"]
    flush(app)
    # Refused from the first request on, not once a repair job has run...
    assert not await signed_in(api, account.token)
    assert not await signed_in(api, changed.token)
    assert await signed_in(api, fresh["token"])
    # ... which copied the user's state back into Redis.
    services = services_of(app)
    state = await services.redis.hgetall(services.keys.auth_state(int(account.id)))
    assert state[b"loaded"] == b"1" and any(field.startswith(b"r:") for field in state)
    assert not await signed_in(api, account.token)


async def test_a_password_change_while_redis_is_down_voids_the_old_tokens(
    app: Starlette, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await api.sign_up("outage")
    assert await signed_in(api, account.token)  # Redis now holds the user's state
    services = services_of(app)
    with RedisOutage(services, monkeypatch):
        fresh = (await api.gql(CHANGE, {"old": PASSWORD, "new": NEW_PASSWORD}, account.token))[
            "changePassword"
        ]
        assert not await signed_in(api, account.token)  # MongoDB answers meanwhile
    # Redis is back with the old generation; the worker's re-sync copies the new one over.
    assert await repair_revocations({"services": services}) >= 1
    assert not await signed_in(api, account.token)
    assert await signed_in(api, fresh["token"])


async def test_tokens_issued_before_generations_existed_still_work(app: Starlette, api: Api) -> None:
    account: Account = await api.sign_up("veteran")
    secret = services_of(app).settings.token_secret
    assert secret is not None
    now = datetime.now(UTC)
    claims = {
        "sub": account.id,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    old_style = jwt.encode(claims, secret, algorithm="HS256")
    assert await signed_in(api, old_style)
