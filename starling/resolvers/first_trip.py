"""The reads a request sends with its first Redis round trip.

Every request opens with one pipeline (``RequestContext.first_round_trip``): the token
check and the query-budget charge. A resolver that knows before execution what it will
read first (the home feed's timeline page) plans those reads here, keyed by what they
depend on, so they travel in that same pipeline; the resolver then takes the replies
instead of making a round trip of its own. A plan whose replies never arrive (Redis was
unreachable, the token was not valid) costs nothing: the resolver reads for itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starling.store.redis import DataPipeline

QueueReads = Callable[[DataPipeline, int], int]
"""Queue reads for the signed-in user (the int) on a pipeline; returns how many replies."""


class FirstTrip:
    def __init__(self) -> None:
        self._planned: dict[str, QueueReads] = {}
        self._queued: list[tuple[str, int]] = []
        self._replies: dict[str, list[Any]] = {}
        self._notes: dict[str, Any] = {}
        self._viewer_id: int | None = None

    def plan(self, name: str, queue: QueueReads) -> None:
        """Have ``queue`` sent with the first round trip; ``name`` says what it reads."""
        self._planned[name] = queue

    def queue(self, pipe: DataPipeline, viewer_id: int) -> None:
        self._viewer_id = viewer_id
        self._queued = [(name, queue(pipe, viewer_id)) for name, queue in self._planned.items()]
        self._planned.clear()

    def receive(self, replies: list[Any]) -> None:
        """The replies to what ``queue`` queued, in order."""
        start = 0
        for name, count in self._queued:
            self._replies[name] = replies[start : start + count]
            start += count
        self._queued = []

    def note(self, name: str, value: Any) -> None:
        """What the planner of ``name`` chose while queuing (a guess the replies answer),
        for the resolver that takes them (``noted``)."""
        self._notes[name] = value

    def noted(self, name: str, default: Any = None) -> Any:
        return self._notes.pop(name, default)

    def take(self, name: str, viewer_id: int) -> list[Any] | None:
        """The replies to the reads planned as ``name`` for ``viewer_id``, once; None when
        they were not read."""
        if viewer_id != self._viewer_id:
            return None
        return self._replies.pop(name, None)
