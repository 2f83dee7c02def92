"""The DataLoader base of every Starling loader: its batch sizes are a metric
(``starling_dataloader_batch_size{loader}``), which shows whether batching works.

A loader implements ``load_batch``; ``batch_load_fn``, what aiodataloader calls, records
the batch's size and hands over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from aiodataloader import DataLoader

from starling.store.metrics import DATALOADER_BATCH_SIZE

K = TypeVar("K")
V = TypeVar("V")


class MeasuredLoader(DataLoader[K, V]):
    async def batch_load_fn(self, keys: list[K]) -> list[V]:
        DATALOADER_BATCH_SIZE.labels(type(self).__name__).observe(len(keys))
        return await self.load_batch(keys)

    async def load_batch(self, keys: Sequence[K]) -> list[V]:
        """The values of ``keys``, in their order (one entry per key)."""
        raise NotImplementedError
