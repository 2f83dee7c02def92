"""Every operation pays for itself from the query cost budget before it executes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension

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
        remaining = await charge_cost(context.context, UNCOSTED_OPERATION if cost is None else cost)
        if remaining is not None:
            report_remaining(context, remaining)
        yield
