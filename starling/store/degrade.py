"""Degrading gracefully when Redis is unreachable.

MongoDB is the source of truth; Redis holds derived state. A write therefore succeeds once
MongoDB has it, and the Redis side-effects that follow are best effort: when they fail the
write is still durable and, where one exists, a repair path catches up (the outbox for
fan-out, a rebuild for timelines, a recount for counters); what has none (a live event, a
notification) is lost, which each caller's docstring says.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable
from typing import Final, Literal, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Skipped(enum.Enum):
    """What ``best_effort`` returns when the call failed: distinct from any value the call
    itself may return, ``None`` included."""

    SKIPPED = enum.auto()


SKIPPED: Final = Skipped.SKIPPED


async def best_effort(what: str, awaitable: Awaitable[T]) -> T | Literal[Skipped.SKIPPED]:
    """The call's result, or ``SKIPPED`` (logged) when Redis could not be reached."""
    try:
        return await awaitable
    except (RedisError, OSError) as exc:
        log.warning("%s skipped: Redis unavailable (%s)", what, exc)
        return SKIPPED
