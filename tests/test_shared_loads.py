"""A field cancelled by graphql-core (a sibling failed in a non-null position) must not
cancel the loads other fields share with it: the fuzz test found requests that answered
HTTP 500 with a ``CancelledError`` when it did (``loaders.measured``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starling.loaders.measured import MeasuredLoader


class Slow(MeasuredLoader[int, int]):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    async def load_batch(self, keys: Sequence[int]) -> list[int]:
        self.batches.append(list(keys))
        await asyncio.sleep(0.01)
        return [key * 10 for key in keys]


async def test_cancelling_one_caller_leaves_the_shared_load_to_the_others() -> None:
    loader = Slow()
    cancelled = asyncio.ensure_future(loader.load_many([1, 2]))
    survivor = asyncio.ensure_future(loader.load(2))
    await asyncio.sleep(0)  # both waiting on the same batch
    cancelled.cancel()
    assert await survivor == 20
    assert await loader.load(1) == 10  # the cached load is intact, not cancelled
    assert loader.batches == [[1, 2]]  # and it was still one batch
