"""Command monitoring: the event each embedded round trip hands to pymongo command listeners."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EmbeddedCommandEvent:
    """What listeners receive for one embedded round trip.

    ``command_name``, ``database_name`` and ``request_id`` have the same meaning as on
    :class:`pymongo.monitoring.CommandStartedEvent`, so a listener written for production can
    read them unchanged. The same object is passed to ``started`` and ``succeeded``/``failed``.
    """

    command_name: str
    database_name: str
    collection_name: str
    request_id: int
