"""The executor the schema runs operations with: strawberry's, with one leak plugged.

graphql-core 3.3 executes each subscription event with a shallow copy of the
subscription's executor, so the copies share its memo of collected sub-fields. That memo
is keyed by the identity of field lists which every event builds anew, and keeps them
alive: it grows by every event (about 1.5 KB each) for as long as the subscription lives.
Here each event gets a memo of its own, which still serves its purpose (a list of 20
tweets collects the fields of ``Tweet`` once) and goes away with the event.
"""

from __future__ import annotations

from typing import Any

from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class StarlingExecutor(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> Executor:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor
