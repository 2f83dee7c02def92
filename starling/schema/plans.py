"""Execution plans: a selection's "plain" fields completed without graphql-core's per-field
machinery (``schema.execution``).

graphql-core completes every field of every object the same generic way: a
``GraphQLResolveInfo``, Strawberry's resolver wrapper (an ``Info``, argument parsing, the
extension chain), ``complete_value``'s dispatch on the type, the scalar's
``coerce_output_value``, an awaitable check. On a prefetched feed page (``schema.types``,
``tweet_connection``) nearly every field below ``homeFeed`` is an attribute read or a
resolver that answers from memory, and that machinery is most of what GraphQL costs.

A plan, compiled once per selection of a cached document, completes such a field in one
closure: read the value (``getattr``, or the marked resolver), check it and serialize it
by its type, recursing into lists and objects. A field is *plain*, and planned, when:

* it is ``__typename``, or a Strawberry field without resolver or extensions (an attribute
  read), or one whose resolver is marked ``@sync_when_prefetched`` (below);
* it takes no arguments and carries no directive besides ``@include``/``@skip``;
* its type is a scalar, an enum, an object type whose selected fields are all plain (the
  same rule, recursively, through fragments whose type condition applies), or a list or
  non-null of those. An interface or union is never plain.

Whatever the plan does not expect at run time (an exception, a coroutine, a null in a
non-null position, a value of another type, ``is_type_of`` refusing it) makes it give up
that field, ``Bail``, and the executor then runs the field through graphql-core (reading
it again: plain reads have no side effects), so every error comes out exactly as
graphql-core words and places it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from types import CoroutineType
from typing import Any, TypeVar

from graphql import (
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.language import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.type.definition import GraphQLLeafType
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

F = TypeVar("F", bound=Callable[..., Any])

SYNC_WHEN_PREFETCHED = "_starling_sync_when_prefetched"
GRAPHQL_INT_MIN, GRAPHQL_INT_MAX = -(2**31), 2**31 - 1  # the spec's 32-bit Int
CONDITIONAL_DIRECTIVES = frozenset({"include", "skip"})


def sync_when_prefetched(resolver: F) -> F:
    """Mark a resolver ``(self, info)`` a plan may call directly: when its data is in memory
    it returns the value without awaiting, reading nothing of ``info`` but ``info.context``;
    otherwise it returns an unstarted coroutine holding no other (a plan closes it, then
    gives the field up to graphql-core). It must have no side effects: a plan that gives up
    calls it twice."""
    setattr(resolver, SYNC_WHEN_PREFETCHED, True)
    return resolver


class Bail(Exception):  # a signal, not an error
    """A plan met what it does not handle: graphql-core completes the field instead."""


class PrefetchInfo:
    """What a ``@sync_when_prefetched`` resolver gets as ``info`` from a plan: the context
    only (anything else it reads raises, and the field goes to graphql-core)."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context


# A compiled completion: (value or source, PrefetchInfo) -> the completed value, or Bail.
Complete = Callable[[Any, PrefetchInfo], Any]


def _bail() -> Any:
    raise Bail


def _string(value: Any, _info: PrefetchInfo) -> Any:
    return value if type(value) is str else _bail()


def _boolean(value: Any, _info: PrefetchInfo) -> Any:
    return value if type(value) is bool else _bail()


def _int(value: Any, _info: PrefetchInfo) -> Any:
    return value if type(value) is int and GRAPHQL_INT_MIN <= value <= GRAPHQL_INT_MAX else _bail()


def _float(value: Any, _info: PrefetchInfo) -> Any:
    return value if type(value) is float and math.isfinite(value) else _bail()


# The built-in scalars whose coercion of a value of exactly this Python type is the value
# itself; any other value goes through graphql-core's own coercion.
BUILT_IN_LEAVES: dict[GraphQLLeafType, Complete] = {
    GraphQLString: _string,
    GraphQLID: _string,
    GraphQLBoolean: _boolean,
    GraphQLInt: _int,
    GraphQLFloat: _float,
}


def _leaf(leaf_type: GraphQLLeafType) -> Complete:
    built_in = BUILT_IN_LEAVES.get(leaf_type)
    if built_in is not None:
        return built_in
    coerce = leaf_type.coerce_output_value

    def complete(value: Any, _info: PrefetchInfo) -> Any:
        coerced = coerce(value)  # what graphql-core's complete_leaf_value does
        return _bail() if coerced is None or coerced is Undefined else coerced

    return complete


def _non_null(inner: Complete) -> Complete:
    def complete(value: Any, info: PrefetchInfo) -> Any:
        return _bail() if value is None else inner(value, info)

    return complete


def _nullable(inner: Complete) -> Complete:
    def complete(value: Any, info: PrefetchInfo) -> Any:
        return None if value is None else inner(value, info)

    return complete


def _list(item: Complete) -> Complete:
    def complete(value: Any, info: PrefetchInfo) -> Any:
        if type(value) is not list and type(value) is not tuple:
            raise Bail
        return [item(element, info) for element in value]

    return complete


def _is_strawberry_is_type_of(function: Callable[..., Any]) -> bool:
    """Strawberry's generated ``is_type_of`` (an ``isinstance`` check that ignores its
    ``info``), which a plan may call without one."""
    return function.__qualname__.endswith("_get_is_type_of.<locals>.is_type_of")


def _object(object_type: GraphQLObjectType, fields: list[tuple[str, Complete]]) -> Complete | None:
    is_type_of = object_type.is_type_of
    if is_type_of is not None and not _is_strawberry_is_type_of(is_type_of):
        return None
    if is_type_of is None:
        # graphql-core completes any value here; an exception or an awaitable it treats
        # otherwise, so only values of classes seen to be neither are read.
        seen: set[type] = set()

        def complete(value: Any, info: PrefetchInfo) -> Any:
            kind = type(value)
            if kind not in seen:
                if isinstance(value, Exception) or hasattr(value, "__await__"):
                    raise Bail
                seen.add(kind)
            return {name: field(value, info) for name, field in fields}

        return complete

    def complete_checked(value: Any, info: PrefetchInfo) -> Any:
        if not is_type_of(value, None):  # type: ignore[arg-type]  # it ignores its info
            raise Bail
        return {name: field(value, info) for name, field in fields}

    return complete_checked


def _typename(name: str) -> Complete:
    def complete(_source: Any, _info: PrefetchInfo) -> Any:
        return name

    return complete


def _read(field_def: GraphQLField) -> Complete | None:
    """How a plan reads a field's raw value from its parent object, if the field is plain."""
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or definition.extensions or field_def.args:
        return None
    resolver = definition.base_resolver
    if resolver is None:
        if definition.default_resolver is getattr:
            read = attrgetter(definition.python_name)
            return lambda source, _info: read(source)
        default, name = definition.default_resolver, definition.python_name
        return lambda source, _info: default(source, name)
    function: Callable[..., Any] = resolver.wrapped_func  # type: ignore[assignment]
    if (
        not getattr(function, SYNC_WHEN_PREFETCHED, False)
        or resolver.is_async
        or resolver.arguments
        or list(resolver.signature.parameters) != ["self", "info"]
    ):
        return None

    def call(source: Any, info: PrefetchInfo) -> Any:
        value = function(source, info)
        if type(value) is CoroutineType:  # not prefetched: graphql-core loads it
            value.close()
            raise Bail
        return value

    return call


class Compiler:
    """Compiles plans against one executor (its schema, fragments and variables)."""

    def __init__(self, collect: Callable[[GraphQLObjectType, FieldDetailsList], GroupedFieldSet]) -> None:
        self.collect = collect

    def field(self, parent_type: GraphQLObjectType, details: FieldDetailsList) -> Complete | None:
        """A field's completion from its parent object, or None when it is not plain."""
        node = details[0].node
        if any(
            detail.fragment_variable_values is not None
            or detail.defer_usage is not None
            or detail.node.arguments
            or any(
                directive.name.value not in CONDITIONAL_DIRECTIVES
                for directive in detail.node.directives or ()
            )
            for detail in details
        ):
            return None
        name = node.name.value
        if name == "__typename":
            return _typename(parent_type.name)
        field_def = parent_type.fields.get(name)
        if field_def is None:
            return None
        read = _read(field_def)
        complete = self.value(field_def.type, details)
        if read is None or complete is None:
            return None
        return lambda source, info: complete(read(source, info), info)

    def value(self, output_type: GraphQLOutputType, details: FieldDetailsList) -> Complete | None:
        if isinstance(output_type, GraphQLNonNull):
            inner = self.non_null_value(output_type.of_type, details)
            return None if inner is None else _non_null(inner)
        inner = self.non_null_value(output_type, details)
        return None if inner is None else _nullable(inner)

    def non_null_value(self, output_type: GraphQLOutputType, details: FieldDetailsList) -> Complete | None:
        if isinstance(output_type, GraphQLList):
            item = self.value(output_type.of_type, details)
            return None if item is None else _list(item)
        if is_leaf_type(output_type):
            return _leaf(output_type)
        if isinstance(output_type, GraphQLObjectType):
            fields = self.fields(output_type, self.collect(output_type, details))
            return None if fields is None else _object(output_type, fields)
        return None  # an interface or a union: its runtime type is graphql-core's to resolve

    def fields(
        self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet
    ) -> list[tuple[str, Complete]] | None:
        compiled = []
        for response_name, details in grouped.items():
            complete = self.field(parent_type, details)
            if complete is None:
                return None
            compiled.append((response_name, complete))
        return compiled


@dataclass(frozen=True)
class Step:
    """One field of a grouped field set: its fast completion, or None for graphql-core's."""

    response_name: str
    details: FieldDetailsList
    fast: Complete | None


@dataclass
class Plan:
    """How to execute one grouped field set: one step per field, in order. ``nodes`` holds
    the field nodes whose identities key the plan, so that no id is reused while it lives."""

    steps: list[Step]
    nodes: tuple[FieldNode, ...]
    fast_steps: int = field(init=False)

    def __post_init__(self) -> None:
        self.fast_steps = sum(step.fast is not None for step in self.steps)


def compile_plan(compiler: Compiler, parent_type: GraphQLObjectType, grouped: GroupedFieldSet) -> Plan:
    steps = [Step(name, details, compiler.field(parent_type, details)) for name, details in grouped.items()]
    return Plan(steps, field_nodes(grouped))


def field_nodes(grouped: GroupedFieldSet) -> tuple[FieldNode, ...]:
    return tuple(detail.node for details in grouped.values() for detail in details)


def directive_variables(
    nodes: Iterable[FieldNode], fragments: dict[str, FragmentDefinitionNode]
) -> frozenset[str]:
    """The variables that directives below ``nodes`` read: a plan compiled for one value of
    them (an ``@include(if: $x)`` decided) holds for that value only."""
    return frozenset(_directive_variables((node.selection_set for node in nodes), fragments, set()))


def _directive_variables(
    selection_sets: Iterable[SelectionSetNode | None],
    fragments: dict[str, FragmentDefinitionNode],
    visited: set[str],
) -> Iterator[str]:
    for selection_set in selection_sets:
        if selection_set is None:
            continue
        for selection in selection_set.selections:
            for directive in selection.directives or ():
                for argument in directive.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        yield argument.value.name.value
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in visited:
                    visited.add(name)
                    yield from _directive_variables([fragment.selection_set], fragments, visited)
            elif isinstance(selection, (FieldNode, InlineFragmentNode)):
                yield from _directive_variables([selection.selection_set], fragments, visited)
