"""The DataLoader base of every Starling loader: its batch sizes are a metric
(``starling_dataloader_batch_size{loader}``), which shows whether batching works."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader

from starling.store.metrics import DATALOADER_BATCH_SIZE

K = TypeVar("K")
V = TypeVar("V")


class MeasuredLoader(DataLoader[K, V]):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        sizes = DATALOADER_BATCH_SIZE.labels(type(self).__name__)
        load = self.batch_load_fn

        async def measured(keys: Sequence[K]) -> Any:
            sizes.observe(len(keys))
            return await load(keys)

        self.batch_load_fn = measured
