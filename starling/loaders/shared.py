"""The base of every loader: loads that one caller's cancellation cannot take from the others.

A DataLoader hands every caller of a key the same cached future. A task awaiting a future
directly cancels it when the task is cancelled, and graphql-core cancels the sibling fields
of one that fails in a non-null position: the shared future was cancelled under every other
field waiting for it, which then raised ``CancelledError`` out of the whole request (HTTP
500; the fuzz test found it). Each load here is shielded, so a cancelled caller only
cancels its own wait.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from aiodataloader import DataLoader

K = TypeVar("K")
V = TypeVar("V")


class SharedLoader(DataLoader[K, V]):
    def load(self, key: K) -> asyncio.Future[V]:
        return asyncio.shield(super().load(key))
