"""Snowflake IDs: 63-bit integers that sort by creation time.

Layout (most significant first): 41 bits of milliseconds since ``EPOCH_MS``, 10 bits of
worker number, 12 bits of per-millisecond sequence. Ordering documents by ``_id`` is
therefore ordering them by time, and any process can mint IDs without coordination as
long as its worker number is unique.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
TIMESTAMP_SHIFT = WORKER_BITS + SEQUENCE_BITS
MAX_ID = (1 << 63) - 1
ID_DIGITS = 19  # len(str(MAX_ID)): the longest decimal ID a client may send


class SnowflakeGenerator:
    """Thread-safe generator; waits out the millisecond when its sequence runs out."""

    def __init__(self, worker_id: int, clock: Callable[[], float] = time.time) -> None:
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker_id must be 0..{MAX_WORKER}")
        self._worker_id = worker_id
        self._clock = clock
        self._last_ms = -1
        self._sequence = 0
        self._lock = threading.Lock()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000) - EPOCH_MS

    def next_id(self) -> int:
        with self._lock:
            now = self._now_ms()
            # A clock that steps back must not produce IDs that sort before earlier ones.
            now = max(now, self._last_ms)
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & MAX_SEQUENCE
                if self._sequence == 0:
                    while now <= self._last_ms:
                        now = max(self._now_ms(), self._last_ms)
                        if now == self._last_ms:
                            time.sleep(0.0001)
            else:
                self._sequence = 0
            self._last_ms = now
            return (now << TIMESTAMP_SHIFT) | (self._worker_id << SEQUENCE_BITS) | self._sequence


def id_timestamp_ms(snowflake: int) -> int:
    """Unix milliseconds at which ``snowflake`` was minted."""
    return (snowflake >> TIMESTAMP_SHIFT) + EPOCH_MS


def lowest_id_at(unix_ms: int) -> int:
    """The smallest ID minted at or after ``unix_ms``: a bound for time-range queries."""
    return max(unix_ms - EPOCH_MS, 0) << TIMESTAMP_SHIFT


def parse_id(value: str | int) -> int:
    """Turn a client-supplied ID into an int; ``ValueError`` when it is not one of ours."""
    if isinstance(value, int):
        number = value
    else:
        text = value.strip()
        if not text.isdigit() or len(text) > ID_DIGITS:
            raise ValueError(f"not an ID: {value!r}")
        number = int(text)
    if not 0 < number <= MAX_ID:
        raise ValueError(f"not an ID: {value!r}")
    return number


MEMBER_BYTES = 8
"""Width of a sorted-set member: an ID as 8 big-endian bytes."""
_MEMBER_MAX = (1 << (8 * MEMBER_BYTES)) - 1


def to_member(snowflake: int) -> bytes:
    """An ID as a Redis sorted-set member, newest first: the ID's complement as 8 big-endian
    bytes, so lexicographic order is descending numeric order (IDs are positive 63-bit), at
    8 bytes where a decimal takes 19. Newest first because a listpack insert scans from its
    head: a new tweet, the newest, is found a place after one comparison, not 800
    (``bench/results/encodings.md``)."""
    return (_MEMBER_MAX - snowflake).to_bytes(MEMBER_BYTES, "big")


def from_member(member: bytes) -> int:
    return _MEMBER_MAX - int.from_bytes(member, "big")
