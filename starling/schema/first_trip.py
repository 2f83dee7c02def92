"""Plans, before an operation runs, the reads its root fields will make first, so they
travel with the token check and the budget charge (``resolvers.first_trip``).

``PLANNERS`` maps a root query field to the resolver's planner, called with the field's
argument values; other fields plan nothing and read for themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import FieldNode, GraphQLError, OperationType, get_operation_ast
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.types.execution import ExecutionContext

from starling.resolvers import feed
from starling.resolvers.context import RequestContext

Planner = Callable[[RequestContext, dict[str, Any]], None]

PLANNERS: dict[str, Planner] = {
    "homeFeed": lambda ctx, args: feed.plan_home_feed(ctx, args.get("first"), args.get("after")),
}


def plan_first_trip(context: ExecutionContext) -> None:
    """Call the planner of each root query field of the operation that has one."""
    ctx = context.context
    document = context.graphql_document
    if not isinstance(ctx, RequestContext) or document is None:
        return
    operation = get_operation_ast(document, context.operation_name)
    query_type = context.schema._schema.query_type
    if operation is None or operation.operation is not OperationType.QUERY or query_type is None:
        return
    planned = [
        selection
        for selection in operation.selection_set.selections
        if isinstance(selection, FieldNode) and selection.name.value in PLANNERS
    ]
    if not planned:  # most operations: no need to coerce their variables here
        return
    variables = get_variable_values(
        context.schema._schema, operation.variable_definitions or (), context.variables or {}
    )
    if isinstance(variables, list):  # bad variables: execution reports them
        return
    for selection in planned:
        definition = query_type.fields[selection.name.value]
        try:
            args = get_argument_values(definition, selection, variables)
        except GraphQLError:  # validation reports it
            continue
        PLANNERS[selection.name.value](ctx, args)
