"""The GraphQL schema: ``build_schema`` makes the one an API process serves; ``schema`` is
the same without the operation limits, for ``starling export-schema`` and tooling."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from starling.schema.budget import QueryBudget
from starling.schema.errors import ErrorCodes
from starling.schema.execution import executor_class
from starling.schema.limits import Documents, OperationLimits
from starling.schema.live_extensions import LiveEventExtensions
from starling.schema.mutation import Mutation
from starling.schema.observability import OperationMetrics
from starling.schema.query import Query
from starling.schema.subscription import Subscription


class StarlingSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry logs every error with a traceback; here client mistakes and domain
        refusals are not server errors, and ``ErrorCodes`` logs the unexpected ones."""

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Queries and mutations over HTTP (WebSockets stream through ``subscribe``): a
        subscription sent over HTTP is refused (400), as it needs a socket to deliver on."""
        allowed = set(allowed_operation_types or (OperationType.QUERY, OperationType.MUTATION))
        return await super().execute(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            allowed_operation_types=allowed - {OperationType.SUBSCRIPTION},
            operation_extensions=operation_extensions,
        )


def build_schema(
    documents: Documents | None = None,
    extra_extensions: Sequence[type] = (),
    *,
    compiled_execution: bool = True,
    differential_check: bool = False,
) -> StarlingSchema:
    """The schema; with ``documents`` (one API process's parse cache and limits), every
    operation is parsed, held to the limits and validated through them (``schema.limits``),
    then charged to its viewer's query budget (``schema.budget``). ``compiled_execution``:
    plain fields through compiled plans, checked against graphql-core with
    ``differential_check`` (``schema.execution``)."""
    # OperationMetrics first: it sees the errors once ErrorCodes has coded them.
    extensions: list[Any] = [OperationMetrics, ErrorCodes]
    if documents is not None:
        extensions.append(lambda: OperationLimits(documents))
    extensions.append(QueryBudget)
    extensions.append(LiveEventExtensions)
    extensions.extend(extra_extensions)  # tracing
    return StarlingSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        execution_context_class=executor_class(compiled_execution, differential_check),
        extensions=extensions,
    )


schema = build_schema()


def export_sdl() -> str:
    return schema.as_str() + "\n"
