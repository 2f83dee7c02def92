"""Execution plans: a selection's "plain" fields completed without graphql-core's per-field
machinery (``schema.execution``).

graphql-core completes every field of every object the same generic way: a
``GraphQLResolveInfo``, Strawberry's resolver wrapper (an ``Info``, argument parsing, the
extension chain), ``complete_value``'s dispatch on the type, the scalar's
``coerce_output_value``, an awaitable check. On a prefetched feed page (``schema.types``,
``tweet_connection``) nearly every field below ``homeFeed`` is an attribute read or a
resolver that answers from memory, and that machinery is most of what GraphQL costs.

A plan, generated once per selection of a cached document (``_Code``), completes such a
field in one Python function per object: read the value (an attribute, or the marked
resolver), check it and serialize it by its type, recursing into lists and objects. A
field is *plain*, and planned, when:

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

import keyword
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
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


# A compiled completion: (source object, PrefetchInfo) -> the completed value, or Bail.
Complete = Callable[[Any, PrefetchInfo], Any]

# The built-in scalars whose coercion of a value of exactly this Python type is the value
# itself, as a check of the value ``{x}``; any other value (an int for an ID, a numeric
# string for an Int) goes through graphql-core's own coercion.
BUILT_IN_CHECKS: dict[GraphQLLeafType, str] = {
    GraphQLString: "type({x}) is str",
    GraphQLID: "type({x}) is str",
    GraphQLBoolean: "type({x}) is bool",
    GraphQLInt: "type({x}) is int and INT_MIN <= {x} <= INT_MAX",
    GraphQLFloat: "type({x}) is float and isfinite({x})",
}


def _is_strawberry_is_type_of(function: Callable[..., Any]) -> bool:
    """Strawberry's generated ``is_type_of`` (an ``isinstance`` check that ignores its
    ``info``), which a plan may call without one."""
    return function.__qualname__.endswith("_get_is_type_of.<locals>.is_type_of")


def _check_plain_object(value: Any, seen: set[type]) -> None:
    """graphql-core completes any value as an object without ``is_type_of``, but an
    exception or an awaitable otherwise: a plan reads only values of classes seen to be
    neither."""
    if isinstance(value, Exception) or hasattr(value, "__await__"):
        raise Bail
    seen.add(type(value))


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


class _Code:
    """The Python source of one plan being generated, and the values it refers to by name.

    Plans are generated Python (compiled once per selection, like graphql-jit's JavaScript):
    one function per object completed, the field reads, checks and serialization inlined.
    The source holds only names of the schema (Python attribute names, checked to be
    identifiers) and response names (GraphQL names, which the parser allows only as
    ``[_A-Za-z][_0-9A-Za-z]*``, written as string literals); every other value is passed in
    by name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "Bail": Bail,
            "Undefined": Undefined,
            "Coroutine": CoroutineType,
            "isfinite": math.isfinite,
            "INT_MIN": GRAPHQL_INT_MIN,
            "INT_MAX": GRAPHQL_INT_MAX,
            "check_plain_object": _check_plain_object,
        }

    def name(self, prefix: str, value: Any = None) -> str:
        """A fresh name, bound to ``value`` when given."""
        name = f"{prefix}_{len(self.names)}"
        self.names[name] = value
        return name

    def define(self, name: str, body: list[str]) -> None:
        self.lines += [f"def {name}(v, info):", *_indent(body), ""]

    def build(self, name: str, title: str) -> Complete:
        namespace = dict(self.names)
        exec(
            compile("\n".join(self.lines), f"<plan {title}>", "exec"), namespace
        )  # generated from schema names only
        function: Complete = namespace[name]
        return function


class Compiler:
    """Generates plans against one executor (its schema, fragments and variables)."""

    def __init__(self, collect: Callable[[GraphQLObjectType, FieldDetailsList], GroupedFieldSet]) -> None:
        self.collect = collect

    def field(self, parent_type: GraphQLObjectType, details: FieldDetailsList) -> Complete | None:
        """A field's completion from its parent object, or None when it is not plain."""
        code = _Code()
        body = self._field(code, parent_type, details, "x")
        if body is None:
            return None
        code.define("plan", [*body, "return x"])
        return code.build("plan", f"{parent_type.name}.{details[0].node.name.value}")

    def _field(
        self, code: _Code, parent_type: GraphQLObjectType, details: FieldDetailsList, x: str
    ) -> list[str] | None:
        """Lines setting ``x`` to the field of the object ``v``, completed."""
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
        name = details[0].node.name.value
        if name == "__typename":
            return [f"{x} = {parent_type.name!r}"]
        field_def = parent_type.fields.get(name)
        if field_def is None:
            return None
        read = _read(code, field_def, x)
        complete = self._value(code, field_def.type, details, x)
        if read is None or complete is None:
            return None
        return [*read, *complete]

    def _value(
        self, code: _Code, output_type: GraphQLOutputType, details: FieldDetailsList, x: str
    ) -> list[str] | None:
        """Lines completing ``x`` as a value of ``output_type``."""
        if isinstance(output_type, GraphQLNonNull):
            inner = self._non_null_value(code, output_type.of_type, details, x)
            if inner is None or output_type.of_type in BUILT_IN_CHECKS:  # their check refuses None
                return inner
            return [f"if {x} is None: raise Bail", *inner]
        inner = self._non_null_value(code, output_type, details, x)
        return None if inner is None else [f"if {x} is not None:", *_indent(inner)]

    def _non_null_value(
        self, code: _Code, output_type: GraphQLOutputType, details: FieldDetailsList, x: str
    ) -> list[str] | None:
        if isinstance(output_type, GraphQLList):
            item = self._value(code, output_type.of_type, details, "e")
            if item is None:
                return None
            function = code.name("complete_list")
            code.define(
                function,
                [
                    "if type(v) is not list and type(v) is not tuple: raise Bail",
                    "out = []",
                    "for e in v:",
                    *_indent([*item, "out.append(e)"]),
                    "return out",
                ],
            )
            return [f"{x} = {function}({x}, info)"]
        if is_leaf_type(output_type):
            check = BUILT_IN_CHECKS.get(output_type)
            if check is not None:
                return [f"if not ({check.format(x=x)}): raise Bail"]
            coerce = code.name("coerce", output_type.coerce_output_value)
            # What graphql-core's complete_leaf_value does, a refusal left to it.
            return [f"{x} = {coerce}({x})", f"if {x} is None or {x} is Undefined: raise Bail"]
        if isinstance(output_type, GraphQLObjectType):
            complete = self._object(code, output_type, self.collect(output_type, details))
            return None if complete is None else [f"{x} = {complete}({x}, info)"]
        return None  # an interface or a union: its runtime type is graphql-core's to resolve

    def _object(self, code: _Code, object_type: GraphQLObjectType, grouped: GroupedFieldSet) -> str | None:
        """The name of a generated function completing an object of ``object_type``."""
        is_type_of = object_type.is_type_of
        if is_type_of is None:
            seen = code.name("seen", set())
            body = [f"if type(v) not in {seen}: check_plain_object(v, {seen})"]
        elif _is_strawberry_is_type_of(is_type_of):
            body = [f"if not {code.name('is_type_of', is_type_of)}(v, None): raise Bail"]
        else:
            return None  # one of its own may read its info
        results = []
        for index, (response_name, details) in enumerate(grouped.items()):
            lines = self._field(code, object_type, details, f"f{index}")
            if lines is None:
                return None
            body += lines
            results.append(f"{response_name!r}: f{index}")
        function = code.name(f"complete_{object_type.name}")
        code.define(function, [*body, f"return {{{', '.join(results)}}}"])
        return function


def _read(code: _Code, field_def: GraphQLField, x: str) -> list[str] | None:
    """Lines setting ``x`` to the field's raw value on the object ``v``, if it is plain."""
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or definition.extensions or field_def.args:
        return None
    resolver = definition.base_resolver
    name = definition.python_name
    if resolver is None:
        if definition.default_resolver is not getattr:
            return [f"{x} = {code.name('resolve', definition.default_resolver)}(v, {name!r})"]
        if name.isidentifier() and not keyword.iskeyword(name):
            return [f"{x} = v.{name}"]
        return [f"{x} = getattr(v, {name!r})"]
    function = resolver.wrapped_func
    if (
        not getattr(function, SYNC_WHEN_PREFETCHED, False)
        or resolver.is_async
        or resolver.arguments
        or list(resolver.signature.parameters) != ["self", "info"]
    ):
        return None
    # Not prefetched, it returns a coroutine: closed unstarted, graphql-core loads it.
    return [
        f"{x} = {code.name('resolve', function)}(v, info)",
        f"if type({x}) is Coroutine: {x}.close(); raise Bail",
    ]


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
