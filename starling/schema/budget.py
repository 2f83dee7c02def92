"""Every operation pays for itself from the query cost budget before it executes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from starling.resolvers.errors import RateLimited
from starling.resolvers.limits import charge_cost
from starling.schema.first_trip import plan_first_trip
from starling.schema.limits import report_remaining, requested_cost

# What an operation the limits did not cost (the schema without ``OperationLimits``) pays.
UNCOSTED_OPERATION = 1


class QueryBudget(SchemaExtension):
    """Charges the operation's computed cost (``schema.limits``) to the viewer's budget
    (``resolvers.limits.charge_cost``) once the operation is valid and before it runs; a
    spent budget is RATE_LIMITED and nothing runs. ``extensions.cost.remaining`` then says
    what is left. A subscription pays once, when it starts."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        plan_first_trip(context)  # sent with the charge: one round trip
        cost = requested_cost(context)
        try:
            remaining = await charge_cost(context.context, UNCOSTED_OPERATION if cost is None else cost)
        except RateLimited as refusal:
            if context.operation_type is OperationType.SUBSCRIPTION:
                raise  # strawberry subscribes whatever the result: the refusal ends it
            # The operation's result, so that nothing runs and the extensions that wrap the
            # operation (error codes, metrics, the request log) see the refusal.
            context.result = ExecutionResult(
                data=None, errors=[GraphQLError(refusal.message, original_error=refusal)]
            )
            report_remaining(context, 0)
            yield
            return
        if remaining is not None:
            report_remaining(context, remaining)
        yield
