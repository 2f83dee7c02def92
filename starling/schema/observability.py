"""Per-operation metrics and what the request log line says about each operation.

``OperationMetrics`` wraps every operation (parse, validate, execute): it counts it by
operation name and outcome, times it (queries and mutations; a subscription's lifetime
is no latency), counts its errors by ``extensions.code``, and leaves an
``OperationRecord`` in the HTTP request's ASGI scope for ``starling.request_log``.

It runs outside ``ErrorCodes`` (listed before it), so the errors it sees are coded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from starling.store.metrics import GRAPHQL_DURATION, GRAPHQL_ERRORS, GRAPHQL_REQUESTS, operation_label

OPERATIONS_SCOPE_KEY = "starling.operations"
"""ASGI scope key of the list of ``OperationRecord`` an HTTP request ran."""
UNCODED = "BAD_USER_INPUT"  # what an error GraphQL raised before execution is (schema.errors)


@dataclass(frozen=True, slots=True)
class OperationRecord:
    name: str
    outcome: str
    codes: tuple[str, ...]

    def describe(self) -> str:
        codes = f" {','.join(self.codes)}" if self.codes else ""
        return f"{self.name} {self.outcome}{codes}"


def error_codes(errors: Sequence[GraphQLError]) -> tuple[str, ...]:
    return tuple(sorted({(error.extensions or {}).get("code", UNCODED) for error in errors}))


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        result = context.result
        errors: Sequence[GraphQLError] = (
            (result.errors if result else None) or context.pre_execution_errors or []
        )
        name = operation_label(_operation_name(context))
        outcome = "error" if errors else "ok"
        codes = error_codes(errors)
        GRAPHQL_REQUESTS.labels(name, outcome).inc()
        if not _is_subscription(context):
            GRAPHQL_DURATION.labels(name, outcome).observe(time.perf_counter() - started)
        for code in codes:
            GRAPHQL_ERRORS.labels(code).inc(
                sum(1 for e in errors if (e.extensions or {}).get("code", UNCODED) == code)
            )
        request = getattr(context.context, "request", None)
        scope = getattr(request, "scope", None)
        if scope is not None and scope.get("type") == "http":
            records = scope.get(OPERATIONS_SCOPE_KEY)
            if records is not None:
                records.append(OperationRecord(name, outcome, codes))


def _operation_name(context: Any) -> str | None:
    try:
        return context.operation_name
    except Exception:  # an unparsable document has no operations to name
        return None


def _is_subscription(context: Any) -> bool:
    try:
        return context.operation_type is OperationType.SUBSCRIPTION
    except Exception:  # not parsed, or no such operation: not a subscription that ran
        return False
