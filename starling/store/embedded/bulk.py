"""Bulk-write translation: how pymongo batches write requests into insert/update/delete
commands, and how a write error names the request it refers to (mongomock's own
``bulk_write`` is broken with pymongo >= 4.11)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pymongo.operations import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne

WriteRequest = InsertOne[Any] | UpdateOne | UpdateMany | ReplaceOne[Any] | DeleteOne | DeleteMany


def operation_kind(request: object) -> str:
    """The write command ("insert"/"update"/"delete") pymongo sends a bulk request with."""
    if isinstance(request, InsertOne):
        return "insert"
    if isinstance(request, UpdateOne | UpdateMany | ReplaceOne):
        return "update"
    if isinstance(request, DeleteOne | DeleteMany):
        return "delete"
    raise TypeError(f"{request!r} is not a valid request")


def batches(requests: Sequence[WriteRequest], ordered: bool) -> list[list[tuple[int, Any]]]:
    """Split requests into write commands exactly as pymongo's bulk API does.

    Ordered: one command per contiguous run of the same kind. Unordered: one command per kind,
    in insert, update, delete order. Each entry keeps the request's original index.
    """
    kinds = [operation_kind(request) for request in requests]
    if ordered:
        return [list(group) for _, group in itertools.groupby(enumerate(requests), key=lambda p: kinds[p[0]])]
    grouped = [
        [(i, r) for i, r in enumerate(requests) if kinds[i] == kind]
        for kind in ("insert", "update", "delete")
    ]
    return [batch for batch in grouped if batch]


def op_document(request: WriteRequest) -> Any:
    """The ``op`` a server write error refers to, shaped like the write command's entry."""
    if isinstance(request, InsertOne):
        return request._doc
    if isinstance(request, DeleteOne | DeleteMany):
        return {"q": request._filter, "limit": 1 if isinstance(request, DeleteOne) else 0}
    return {
        "q": request._filter,
        "u": request._doc,
        "multi": isinstance(request, UpdateMany),
        "upsert": bool(request._upsert),
    }
