"""Every operation pays for itself from the query cost budget before it executes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from starling.resolvers.limits import charge_cost

DEFAULT_OPERATION_COST = 1


def operation_cost(execution_context: ExecutionContext) -> int:
    """What the operation costs the viewer's (or the address's) query budget.

    The hook for the query cost estimator: it computes the operation's cost during
    validation; returning that figure here is all the budget needs. Until then every
    operation costs ``DEFAULT_OPERATION_COST``."""
    return DEFAULT_OPERATION_COST


class QueryBudget(SchemaExtension):
    """Charges ``operation_cost`` to the budget (``resolvers.limits.charge_cost``) once the
    operation is valid and before it runs; a spent budget is RATE_LIMITED and nothing runs.
    A subscription pays once, when it starts."""

    async def on_execute(self) -> AsyncIterator[None]:
        await charge_cost(self.execution_context.context, operation_cost(self.execution_context))
        yield
