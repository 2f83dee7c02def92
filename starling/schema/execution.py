"""The executors the schema runs operations with: strawberry's, with one leak plugged
(``GraphQLCoreExecutor``), and the production one, which completes plain fields through
compiled plans (``CompiledExecutor``, ``schema.plans``) and the rest through graphql-core.

The leak: graphql-core 3.3 executes each subscription event with a shallow copy of the
subscription's executor, so the copies share its memo of collected sub-fields. That memo
is keyed by the identity of field lists which every event builds anew, and keeps them
alive: it grows by every event (about 1.5 KB each) for as long as the subscription lives.
Here each event gets a memo of its own, which still serves its purpose (a list of 20
tweets collects the fields of ``Tweet`` once) and goes away with the event.

The compiled executor takes over ``execute_fields``, where graphql-core completes the
fields of one object (the root's, and every object's below it, over HTTP and for each
subscription event alike): a field its plan completes fast is done in one closure; any
other field, and any field whose plan gives up (``plans.Bail``), goes through
graphql-core's ``execute_field``, so results and errors are graphql-core's own. Plans are
compiled once per selection and shared by every operation of the same cached document.

With the differential check on (``GRAPHQL_EXECUTION_DIFFERENTIAL_CHECK``; the test suite
turns it on), every field completed fast is completed again through graphql-core and the
two results compared, data and errors; a difference is recorded in ``CHECKS`` and raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from graphql import GraphQLObjectType, Undefined
from graphql.execution import Executor
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import CollectedErrors
from graphql.language import FieldNode
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from starling.lru import BoundedLRU
from starling.schema.plans import Compiler, Plan, PrefetchInfo, compile_plan, directive_variables, field_nodes

# Selections (one per object level of each cached document) whose plans a schema keeps,
# and plans per selection (one per value of the variables its directives read).
PLANS_MAX_SELECTIONS = 4096
PLANS_PER_SELECTION = 8


class GraphQLCoreExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution throughout (the executor before compiled plans)."""

    def build_per_event_executor(self, payload: Any) -> Executor:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


@dataclass
class _Selection:
    """A selection's plans, by the values of the variables its directives read."""

    nodes: tuple[FieldNode, ...]  # keeps the ids in the key from being reused
    variables: tuple[str, ...]
    plans: dict[tuple[Any, ...], Plan] = field(default_factory=dict)


PlanCache = BoundedLRU[tuple[GraphQLObjectType, tuple[int, ...]], _Selection]


def plan_cache() -> PlanCache:
    # Counted in selections: every entry weighs 1.
    return BoundedLRU(PLANS_MAX_SELECTIONS, PLANS_MAX_SELECTIONS, 1)


class ExecutionMismatch(AssertionError):
    """The differential check found a plan answering otherwise than graphql-core."""


@dataclass
class DifferentialChecks:
    """What the differential check compared in this process, and what differed."""

    operations: int = 0
    fields: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)


CHECKS = DifferentialChecks()


def same(left: Any, right: Any) -> bool:
    """Equal as JSON answers: same types, same values, same key order."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[key], right[key]) for key in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


class CompiledExecutor(GraphQLCoreExecutor):
    """Plain fields through compiled plans (module doc). Subclassed per schema by
    ``executor_class``, which gives each its own ``plans``."""

    plans: ClassVar[PlanCache]
    differential_check: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plan_memo: dict[int, tuple[GroupedFieldSet, Plan | None]] = {}
        self._prefetch_info = PrefetchInfo(self.context_value)
        # Field middleware (a schema extension's ``resolve``: per-field tracing spans) must
        # see every field: then graphql-core executes them all.
        self._planning = not (self.middleware_manager and self.middleware_manager.middlewares)
        self._checked = False

    def build_per_event_executor(self, payload: Any) -> Executor:
        executor = super().build_per_event_executor(payload)
        assert isinstance(executor, CompiledExecutor)
        executor._plan_memo = {}  # keyed by ids of the event's own grouped field sets
        executor._checked = False
        return executor

    def _plan(self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet) -> Plan | None:
        # graphql-core memoizes a grouped field set per field list (one for a list's every
        # item), and keeps it alive for the executor's lifetime: its id is a safe key here.
        memo = self._plan_memo.get(id(grouped))
        if memo is None:
            memo = (grouped, self._shared_plan(parent_type, grouped))
            self._plan_memo[id(grouped)] = memo
        return memo[1]

    def _shared_plan(self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet) -> Plan | None:
        nodes = field_nodes(grouped)
        key = (parent_type, tuple(map(id, nodes)))
        selection = self.plans.get(key)
        if selection is None:
            variables = tuple(sorted(directive_variables(nodes, self.fragment_definitions)))
            selection = _Selection(nodes, variables)
            self.plans.put(key, selection, 1)
        coerced = self.variable_values.coerced
        values = tuple(coerced.get(name) for name in selection.variables)
        try:
            plan = selection.plans.get(values)
        except TypeError:  # an unhashable variable value: no plan for it
            return None
        if plan is None:
            plan = compile_plan(Compiler(self._collect), parent_type, grouped)
            if len(selection.plans) < PLANS_PER_SELECTION:
                selection.plans[values] = plan
        return plan if plan.fast_steps else None

    def _collect(self, object_type: GraphQLObjectType, details: FieldDetailsList) -> GroupedFieldSet:
        return self.collect_subfields(object_type, details).grouped_field_set

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plan = self._plan(parent_type, grouped_field_set) if self._planning else None
        if plan is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        # graphql-core's execute_fields, but for the fields a plan completes.
        info = self._prefetch_info
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for step, details in zip(plan.steps, grouped_field_set.values(), strict=True):
                name = step.response_name
                if step.fast is not None:
                    try:
                        results[name] = step.fast(source_value, info)
                    except Exception:  # graphql-core does it again, exactly
                        pass
                    else:
                        if self.differential_check:
                            self._compare(parent_type, source_value, details, path, name, results[name])
                        continue
                field_path = Path(path, name, parent_type.name)
                result = self.execute_field(parent_type, source_value, details, field_path, position_context)
                if result is not Undefined:
                    results[name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                name = awaitable_fields[0]
                results[name] = await results[name]
            else:
                awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def _compare(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        details: FieldDetailsList,
        path: Path | None,
        name: str,
        fast: Any,
    ) -> None:
        """The differential check of one field completed fast (module doc)."""
        if not self._checked:
            self._checked = True
            CHECKS.operations += 1
        where = f"{parent_type.name}.{details[0].node.name.value}"
        CHECKS.fields[where] += 1
        field_path = Path(path, name, parent_type.name)
        saved_errors, self.collected_errors = self.collected_errors, CollectedErrors()
        self._planning = False  # graphql-core below this field too
        try:
            expected = self.execute_field(parent_type, source, details, field_path, None)
            raised: Exception | None = None
        except Exception as error:  # a difference to report
            expected, raised = None, error
        finally:
            errors = self.collected_errors.errors
            self.collected_errors, self._planning = saved_errors, True
        if isinstance(expected, Awaitable):
            close = getattr(expected, "close", None)
            if close is not None:
                close()
            problem = "graphql-core awaits it"
        elif raised is not None or errors:
            problem = f"graphql-core reports errors: {[*errors, *([raised] if raised else [])]}"
        elif not same(fast, expected):
            problem = f"graphql-core answers {expected!r}"
        else:
            return
        mismatch = f"{where} at {field_path.as_list()}: the plan answers {fast!r}, {problem}"
        CHECKS.mismatches.append(mismatch)
        raise ExecutionMismatch(mismatch)


def executor_class(compiled: bool, differential_check: bool = False) -> type[GraphQLCoreExecutor]:
    """The executor for one schema: with ``compiled``, a ``CompiledExecutor`` of its own
    (plans are the schema's: they hold its types)."""
    if not compiled:
        return GraphQLCoreExecutor
    attributes = {"plans": plan_cache(), "differential_check": differential_check}
    return type("SchemaExecutor", (CompiledExecutor,), attributes)
