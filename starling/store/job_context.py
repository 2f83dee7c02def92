"""What follows a request into the background jobs it enqueues: its request ID (for logs)
and, when tracing is on, its trace context.

``Job.enqueue`` (``store.jobs``) adds ``carrier()`` to the job's arguments under
``CARRIER_ARG``; ``Job.function``'s wrapper takes it out again before the job function
runs (so job functions keep exactly their ``Job``'s parameters) and runs the job inside
``restored(carrier)``. arq has no job metadata of its own, and the job ID cannot carry it:
it is the deduplication key.

The request ID lives in a context variable, set by the API per request (``starling.logs``)
and here per job; other layers (tracing) plug in through ``register`` without ``store/``
knowing them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass

CARRIER_ARG = "starling_context"
"""The job keyword argument that carries the context (not a parameter of any job function)."""

Carrier = dict[str, str]

REQUEST_ID: ContextVar[str | None] = ContextVar("starling_request_id", default=None)


@dataclass(frozen=True, slots=True)
class Propagator:
    """One kind of context a job inherits: ``inject`` writes the current one into a
    carrier, ``extract(carrier, job_name)`` makes the carrier's current around the job."""

    inject: Callable[[Carrier], None]
    extract: Callable[[Carrier, str], AbstractContextManager[None]]


_propagators: list[Propagator] = []


def register(propagator: Propagator) -> None:
    if propagator not in _propagators:
        _propagators.append(propagator)


def unregister(propagator: Propagator) -> None:
    if propagator in _propagators:
        _propagators.remove(propagator)


def carrier() -> Carrier:
    """The current context, to travel with a job being enqueued."""
    values: Carrier = {}
    request_id = REQUEST_ID.get()
    if request_id is not None:
        values["request_id"] = request_id
    for propagator in _propagators:
        propagator.inject(values)
    return values


@contextlib.contextmanager
def restored(values: Carrier | None, job_name: str) -> Iterator[None]:
    """Run a job in the context its enqueuer had (a job enqueued by a job keeps the
    request ID of the request that started the chain)."""
    values = values or {}
    token = REQUEST_ID.set(values.get("request_id"))
    try:
        with contextlib.ExitStack() as stack:
            for propagator in _propagators:
                stack.enter_context(propagator.extract(values, job_name))
            yield
    finally:
        REQUEST_ID.reset(token)
