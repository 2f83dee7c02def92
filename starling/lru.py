"""A least-recently-used map bounded in entries and in bytes.

Caches keyed by what clients send (query texts, persisted-query hashes) must not grow with
what an attacker sends: an entry count alone lets a hundred 5 MiB queries take a gigabyte.
Each entry here has a weight in bytes given by its caller; the map drops the least recently
used entries while it holds more than ``max_entries`` or weighs more than ``max_bytes``, and
refuses an entry heavier than ``entry_max_bytes`` outright (it would evict many others for
one client's sake).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    def __init__(self, max_entries: int, max_bytes: int, entry_max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.entry_max_bytes = min(entry_max_bytes, max_bytes)
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """What the entries weigh together, by their callers' estimates."""
        return self._bytes

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, weight: int) -> bool:
        """Remember ``value`` under ``key``; False when it weighs too much to be kept."""
        if weight > self.entry_max_bytes or self.max_entries <= 0:
            return False
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._bytes -= previous[1]
        self._entries[key] = (value, weight)
        self._bytes += weight
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped
        return True
