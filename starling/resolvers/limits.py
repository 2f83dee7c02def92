"""Rate limits: which budget each action spends, and what a request's checks found.

Budgets (``store.ratelimit``, GCRA in Redis; each an amount per window, all settings):

- ``logIn`` attempts per handle and per client address. Each attempt is counted before any
  password is hashed, so aliased ``logIn`` fields in one request count one by one.
  ``changePassword`` attempts count against the handle's budget too: both guess a password.
- ``signUp`` per client address.
- writes per viewer: ``postTweet``, ``retweet``, ``undoRetweet``, ``likeTweet``,
  ``unlikeTweet``, ``addComment``, ``follow``, ``unfollow``.
- query cost per viewer, or per client address when anonymous (``charge_cost``).

A refusal is ``RATE_LIMITED`` with ``extensions.retryAfter`` (whole seconds, at least 1);
``RateLimits.headline`` is what the HTTP response reports in its ``RateLimit-*`` headers.

Redis unreachable: the check is skipped (fails open) and logged. A limit that fails closed
would turn a Redis outage into a total one, while MongoDB can still take the writes
(``resolvers.degrade``); argon2 still bounds what a log-in flood costs.

Only requests are limited: the app puts a ``RateLimits`` on each request's context (none
when ``RATE_LIMITS_ENABLED`` is false), and in-process callers of the domain operations
(seeding, the benchmark's loader) build contexts without one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from starling.resolvers.errors import RateLimited
from starling.store import ratelimit
from starling.store.metrics import RATE_LIMITED
from starling.store.ratelimit import Decision, Limit
from starling.store.redis import DataPipeline
from starling.store.services import Services

if TYPE_CHECKING:
    from starling.resolvers.context import RequestContext

log = logging.getLogger(__name__)


class Bucket(StrEnum):
    LOGIN_PER_HANDLE = "login-handle"
    LOGIN_PER_ADDRESS = "login-address"
    SIGN_UP_PER_ADDRESS = "signup-address"
    WRITES = "writes"
    QUERY_COST = "cost"


REFUSALS = {
    Bucket.LOGIN_PER_HANDLE: "Too many log-in attempts for this handle",
    Bucket.LOGIN_PER_ADDRESS: "Too many log-in attempts from your address",
    Bucket.SIGN_UP_PER_ADDRESS: "Too many sign-ups from your address",
    Bucket.WRITES: "You are writing too fast",
    Bucket.QUERY_COST: "This client has spent its query budget",
}


def viewer_subject(user_id: int) -> str:
    return f"u:{user_id}"


def address_subject(address: str) -> str:
    return f"a:{address}"


def handle_subject(handle: str) -> str:
    return f"h:{handle.lower()}"


class RateLimits:
    """The rate limits of one request (or one WebSocket connection) from ``address`` (None
    when unknown: address budgets are then not checked), and what its checks found."""

    def __init__(self, services: Services, address: str | None) -> None:
        self._services = services
        self.address = address
        self._headline: Decision | None = None

    def limit(self, bucket: Bucket) -> Limit:
        s = self._services.settings
        match bucket:
            case Bucket.LOGIN_PER_HANDLE:
                return Limit(s.rate_limit_login_per_handle, s.rate_limit_login_window_seconds)
            case Bucket.LOGIN_PER_ADDRESS:
                return Limit(s.rate_limit_login_per_address, s.rate_limit_login_window_seconds)
            case Bucket.SIGN_UP_PER_ADDRESS:
                return Limit(s.rate_limit_sign_up_per_address, s.rate_limit_sign_up_window_seconds)
            case Bucket.WRITES:
                return Limit(s.rate_limit_writes_per_viewer, s.rate_limit_writes_window_seconds)
            case Bucket.QUERY_COST:
                return Limit(s.rate_limit_query_cost, s.rate_limit_query_cost_window_seconds)

    async def spend(self, charges: Sequence[tuple[Bucket, str]], cost: int = 1) -> list[Decision]:
        """Take ``cost`` from each (bucket, subject), one script call each, all in one round
        trip; RATE_LIMITED, saying when to retry, when any of them is spent. The decisions
        (none when Redis could not be asked)."""
        try:
            decisions = await ratelimit.charge_all(self._services.redis, self._keyed(charges, cost))
        except (RedisError, OSError) as exc:
            skipped(charges, exc)
            return []
        return self._settle(charges, decisions)

    def queue_spend(self, pipe: DataPipeline, charges: Sequence[tuple[Bucket, str]], cost: int) -> None:
        """Queue ``spend``'s scripts on a caller's pipeline (one reply per charge); the
        replies go to ``settle_replies``."""
        ratelimit.queue_charges(pipe, self._keyed(charges, cost))

    def settle_replies(
        self, charges: Sequence[tuple[Bucket, str]], cost: int, replies: Sequence[Any]
    ) -> list[Decision]:
        """What ``spend`` does with its answers, for replies to ``queue_spend``."""
        return self._settle(charges, ratelimit.decisions(self._keyed(charges, cost), replies))

    def _keyed(self, charges: Sequence[tuple[Bucket, str]], cost: int) -> list[tuple[str, Limit, int]]:
        keys = self._services.keys
        return [(keys.rate_limit(bucket, subject), self.limit(bucket), cost) for bucket, subject in charges]

    def _settle(self, charges: Sequence[tuple[Bucket, str]], decisions: Sequence[Decision]) -> list[Decision]:
        for decision in decisions:
            self._report(decision)
        refused = [(bucket, d) for (bucket, _), d in zip(charges, decisions, strict=True) if not d.allowed]
        if refused:
            for bucket, _ in refused:
                RATE_LIMITED.labels(bucket.value).inc()  # store.metrics
            bucket, decision = max(refused, key=lambda pair: pair[1].retry_after)
            wait = retry_after_seconds(decision)
            raise RateLimited(f"{REFUSALS[bucket]}; try again in {wait} s.", retry_after=wait)
        return list(decisions)

    def headline(self) -> Decision | None:
        """The decision the ``RateLimit-*`` headers report: a refusal (the longest wait) if
        any, else the budget closest to running out; None when nothing was checked."""
        return self._headline

    def _report(self, decision: Decision) -> None:
        current = self._headline
        if current is None or _tighter(decision, current):
            self._headline = decision


def _tighter(decision: Decision, than: Decision) -> bool:
    if decision.allowed != than.allowed:
        return not decision.allowed
    if not decision.allowed:
        return decision.retry_after > than.retry_after
    return decision.remaining / decision.limit.amount < than.remaining / than.limit.amount


def skipped(charges: Sequence[tuple[Bucket, str]], exc: BaseException) -> None:
    """Log a check skipped (failed open, module doc) because Redis could not be reached."""
    log.warning("rate limits %s skipped: Redis unavailable (%s)", [bucket for bucket, _ in charges], exc)


def retry_after_seconds(decision: Decision) -> int:
    return max(1, math.ceil(decision.retry_after))


# -- what the domain operations call -------------------------------------------------------


async def login_attempt(ctx: RequestContext, handle: str) -> None:
    """Count a password guess for ``handle`` (and from the client's address)."""
    if ctx.limits is None:
        return
    charges = [(Bucket.LOGIN_PER_HANDLE, handle_subject(handle))]
    if ctx.limits.address is not None:
        charges.append((Bucket.LOGIN_PER_ADDRESS, address_subject(ctx.limits.address)))
    await ctx.limits.spend(charges)


async def sign_up_attempt(ctx: RequestContext) -> None:
    if ctx.limits is None or ctx.limits.address is None:
        return
    await ctx.limits.spend([(Bucket.SIGN_UP_PER_ADDRESS, address_subject(ctx.limits.address))])


async def write_attempt(ctx: RequestContext, user_id: int) -> None:
    """Count one write by the viewer ``user_id``."""
    if ctx.limits is None:
        return
    await ctx.limits.spend([(Bucket.WRITES, viewer_subject(user_id))])


def cost_charges(limits: RateLimits | None, viewer_id: int | None) -> list[tuple[Bucket, str]]:
    """The query-cost charge of a request by ``viewer_id`` (None: anonymous, charged to
    the client's address): none when no budget applies (limits off, no subject)."""
    if limits is None:
        return []
    if viewer_id is not None:
        return [(Bucket.QUERY_COST, viewer_subject(viewer_id))]
    if limits.address is not None:
        return [(Bucket.QUERY_COST, address_subject(limits.address))]
    return []


async def charge_cost(ctx: RequestContext, cost: int) -> int | None:
    """Spend ``cost`` of the query budget of the viewer, or of the client's address when
    anonymous; RATE_LIMITED once it is spent. A cost above the whole budget spends all of it
    (it runs when the budget is full). Returns what is left of the budget, None when no
    budget applies (limits off, no subject, Redis unreachable).

    ``schema.budget.QueryBudget`` calls this before each operation executes, with the
    cost ``schema.limits`` computed for it. It is sent in the request's first round trip,
    with the token check and the reads planned for it (``RequestContext.first_round_trip``)."""
    return await ctx.first_round_trip(cost)


async def charge_cost_anonymously(ctx: RequestContext, cost: int) -> int | None:
    """Charge ``cost`` to the client's address (a request whose token turned out revoked)."""
    charges = cost_charges(ctx.limits, None)
    if ctx.limits is None or not charges:
        return None
    decisions = await ctx.limits.spend(charges, cost)
    return decisions[0].remaining if decisions else None
