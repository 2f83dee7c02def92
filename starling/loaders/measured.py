"""The DataLoader base of every Starling loader.

**Measured.** Its batch sizes are a metric (``starling_dataloader_batch_size{loader}``),
which shows whether batching works. A loader implements ``load_batch``; ``batch_load_fn``,
what aiodataloader calls, records the batch's size and hands over.

**Shared loads.** A DataLoader hands every caller of a key the same cached future. A task
awaiting a future directly cancels it when the task is cancelled, and graphql-core cancels
the sibling fields of one that fails in a non-null position: the shared future was
cancelled under every other field waiting for it, which then raised ``CancelledError`` out
of the whole request (HTTP 500; the fuzz test found it). Each load here is shielded, so a
cancelled caller only cancels its own wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

from aiodataloader import DataLoader

from starling.store.metrics import DATALOADER_BATCH_SIZE

K = TypeVar("K")
V = TypeVar("V")


class MeasuredLoader(DataLoader[K, V]):
    def load(self, key: K) -> asyncio.Future[V]:
        return asyncio.shield(super().load(key))

    async def batch_load_fn(self, keys: list[K]) -> list[V]:
        DATALOADER_BATCH_SIZE.labels(type(self).__name__).observe(len(keys))
        return await self.load_batch(keys)

    async def load_batch(self, keys: Sequence[K]) -> list[V]:
        """The values of ``keys``, in their order (one entry per key)."""
        raise NotImplementedError
