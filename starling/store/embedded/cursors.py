"""Cursors: the results of ``find`` and ``aggregate``, and the document and sort-spec
shapes queries use."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

from pymongo.errors import InvalidOperation

if TYPE_CHECKING:
    from starling.store.embedded.client import EmbeddedCollection

Document = dict[str, Any]
SortSpec = str | Sequence[str | tuple[str, Any]] | Mapping[str, Any]


def key_list(key_or_list: SortSpec, direction: Any = None) -> list[tuple[str, Any]]:
    """Normalise a sort/index spec the way pymongo does (str, mapping or list of pairs)."""
    if direction is not None:
        if not isinstance(key_or_list, str):
            raise TypeError(f"Expected a string and a direction, not {type(key_or_list)}")
        return [(key_or_list, direction)]
    if isinstance(key_or_list, str):
        return [(key_or_list, 1)]
    if isinstance(key_or_list, Mapping):
        return list(key_or_list.items())
    if not isinstance(key_or_list, list | tuple):
        raise TypeError(f"key_or_list must be a list, not {type(key_or_list)}")
    return [(item, 1) if isinstance(item, str) else (item[0], item[1]) for item in key_or_list]


class EmbeddedCursor:
    """Stand-in for :class:`pymongo.asynchronous.cursor.AsyncCursor`.

    The query runs (one "find" event) on the first ``to_list``/iteration; results are then
    served from memory, so a cursor is exactly one round trip however it is consumed.
    """

    def __init__(
        self,
        collection: EmbeddedCollection,
        filter: Mapping[str, Any],
        projection: Mapping[str, Any] | Iterable[str] | None,
    ) -> None:
        self._collection = collection
        self._filter = filter
        self._projection = projection
        self._sort: list[tuple[str, Any]] | None = None
        self._limit = 0
        self._skip = 0
        self._buffer: deque[Document] | None = None

    def _check_okay_to_chain(self) -> None:
        if self._buffer is not None:
            raise InvalidOperation("cannot set options after executing query")

    def sort(self, key_or_list: SortSpec, direction: Any = None) -> Self:
        self._check_okay_to_chain()
        self._sort = key_list(key_or_list, direction)
        return self

    def limit(self, limit: int) -> Self:
        if not isinstance(limit, int):
            raise TypeError("limit must be an integer")
        self._check_okay_to_chain()
        self._limit = limit
        return self

    def skip(self, skip: int) -> Self:
        if not isinstance(skip, int):
            raise TypeError("skip must be an integer")
        if skip < 0:
            raise ValueError("skip must be >= 0")
        self._check_okay_to_chain()
        self._skip = skip
        return self

    def batch_size(self, batch_size: int) -> Self:
        """Accepted for compatibility; everything arrives in one batch in-process."""
        if not isinstance(batch_size, int):
            raise TypeError("batch_size must be an integer")
        if batch_size < 0:
            raise ValueError("batch_size must be >= 0")
        self._check_okay_to_chain()
        return self

    async def _results(self) -> deque[Document]:
        if self._buffer is None:
            async with self._collection._round_trip("find"):
                docs = self._collection._mongomock.find(
                    self._filter,
                    self._projection,
                    sort=self._sort,
                    skip=self._skip,
                    limit=self._limit,
                )
                self._buffer = deque(docs)
        return self._buffer

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        results = await self._results()
        if not results:
            raise StopAsyncIteration
        return results.popleft()

    async def next(self) -> Document:
        return await self.__anext__()

    async def to_list(self, length: int | None = None) -> list[Document]:
        """Up to ``length`` remaining documents (all when None), like AsyncCursor.to_list."""
        if length is not None and length < 1:
            raise ValueError("to_list() length must be greater than 0")
        results = await self._results()
        count = len(results) if length is None else min(length, len(results))
        return [results.popleft() for _ in range(count)]

    async def close(self) -> None:
        """Discard remaining results; a cursor closed before use never queries."""
        self._buffer = deque()


class EmbeddedCommandCursor:
    """Stand-in for :class:`pymongo.asynchronous.command_cursor.AsyncCommandCursor`.

    Holds the already-computed aggregation results (its round trip was ``aggregate()``).
    """

    def __init__(self, documents: Iterable[Document]) -> None:
        self._buffer: deque[Document] = deque(documents)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        if not self._buffer:
            raise StopAsyncIteration
        return self._buffer.popleft()

    async def next(self) -> Document:
        return await self.__anext__()

    async def to_list(self, length: int | None = None) -> list[Document]:
        if length is not None and length < 1:
            raise ValueError("to_list() length must be greater than 0")
        count = len(self._buffer) if length is None else min(length, len(self._buffer))
        return [self._buffer.popleft() for _ in range(count)]

    async def close(self) -> None:
        self._buffer.clear()
