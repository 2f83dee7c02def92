"""What an operation may cost, worked out from its document before anything runs.

**Shape** (``operation_shape``): the operation's depth (fields nested in fields;
introspection subtrees aside, as Strawberry's ``QueryDepthLimiter`` counts) and its number
of aliased fields, fragments expanded.

**Cost** (``operation_cost``): the number of objects the operation can return at most,
counted the way GitHub's GraphQL API bounds a call (its node limit): every field that
returns an object (a user, a tweet, a connection, an edge, page info) counts once per
parent it can appear under, and a connection's ``first`` multiplies everything below its
``edges`` and ``nodes``. So ``user { followers(first: 100) { nodes { following(first: 100)
{ nodes { handle } } } } }`` costs 1 + 1 + 100 + 100 + 100 x 100 = 10,202.

- Page sizes come from the argument (a literal, or a variable: its value, else the
  variable's default), else from the schema's default (``first: Int = 20``); a size is
  clamped to ``page_size_max``, the most any resolver returns. A field sized by ``first`` or
  ``limit`` that returns a list (``searchUsers``, ``trends``) multiplies by it too.
- Other lists (``mentions``) count ``UNSIZED_LIST_ESTIMATE`` items.
- Scalars are free; ``@skip``/``@include`` are ignored (worst case).
- Introspection (``__schema``, ``__type``, ``__typename``) is free, as on GitHub: it reads
  the schema, not the datastores, and graphql-core's own ``MaxIntrospectionDepthRule``
  refuses the nesting that would make it large.

Both walks are linear in the document: each fragment is worked out once (per page size it
sits under) and reused at every spread, so fragments spread inside fragments cost their
expansion in arithmetic, not in work. Figures saturate at ``CEILING``. They run on
unvalidated documents (the limits come first, so refusing a hostile document costs no
validation): unknown fields and types count nothing, a fragment cycle counts once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    value_from_ast_untyped,
)

SIZE_ARGUMENTS = ("first", "limit")
UNSIZED_LIST_ESTIMATE = 10
CEILING = 10**15
INTROSPECTION_PREFIX = "__"

Variables = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Shape:
    depth: int
    aliases: int


def fragments_of(definitions: Sequence[Any]) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}


def sized_variables(definitions: Sequence[Any]) -> tuple[str, ...]:
    """Names of the variables any ``first``/``limit`` argument of the document reads: the
    only variables a cost depends on (so a cost can be cached under their values)."""
    names: dict[str, None] = {}
    pending = [d.selection_set for d in definitions if getattr(d, "selection_set", None)]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    if argument.name.value in SIZE_ARGUMENTS and isinstance(argument.value, VariableNode):
                        names[argument.value.name.value] = None
            if getattr(selection, "selection_set", None) is not None:
                pending.append(selection.selection_set)
    return tuple(names)


class _ShapeWalk:
    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self._fragments = fragments
        self._memo: dict[str, Shape] = {}
        self._open: set[str] = set()

    def selections(self, selections: Sequence[SelectionNode]) -> Shape:
        depth = aliases = 0
        for selection in selections:
            if isinstance(selection, FieldNode):
                inner = Shape(0, 0)
                if selection.selection_set is not None:
                    inner = self.selections(selection.selection_set.selections)
                    if not selection.name.value.startswith(INTROSPECTION_PREFIX):
                        depth = max(depth, 1 + inner.depth)
                aliases += inner.aliases + (selection.alias is not None)
            elif isinstance(selection, InlineFragmentNode):
                inner = self.selections(selection.selection_set.selections)
                depth, aliases = max(depth, inner.depth), aliases + inner.aliases
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
                depth, aliases = max(depth, inner.depth), aliases + inner.aliases
        return Shape(depth, min(aliases, CEILING))

    def fragment(self, name: str) -> Shape:
        if name in self._memo:
            return self._memo[name]
        definition = self._fragments.get(name)
        if definition is None or name in self._open:  # unknown, or a cycle: validation says so
            return Shape(0, 0)
        self._open.add(name)
        shape = self.selections(definition.selection_set.selections)
        self._open.discard(name)
        self._memo[name] = shape
        return shape


def operation_shape(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Shape:
    return _ShapeWalk(fragments).selections(operation.selection_set.selections)


class _CostWalk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        variables: Variables,
        page_size_max: int,
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables
        self._defaults = {
            definition.variable.name.value: value_from_ast_untyped(definition.default_value)
            for definition in operation.variable_definitions or ()
            if definition.default_value is not None
        }
        self._page_size_max = page_size_max
        self._memo: dict[tuple[str, int | None], int] = {}
        self._open: set[str] = set()

    def selections(
        self, selections: Sequence[SelectionNode], parent: GraphQLNamedType, page: int | None
    ) -> int:
        """Cost of a selection set on ``parent``, run once; ``page``: the page size of the
        connection whose fields these are (its lists hold that many items)."""
        total = 0
        for selection in selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                if inner is not None:
                    total += self.selections(selection.selection_set.selections, inner, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, page)
        return min(total, CEILING)

    def field(self, node: FieldNode, parent: GraphQLNamedType, page: int | None) -> int:
        if node.name.value.startswith(INTROSPECTION_PREFIX):
            return 0
        fields = getattr(parent, "fields", None)  # unions have none
        definition = fields.get(node.name.value) if fields is not None else None
        if definition is None:  # unknown: validation says so
            return 0
        named = get_named_type(definition.type)
        if not is_composite_type(named):
            return 0
        size = self._size(node, definition)
        if isinstance(get_nullable_type(definition.type), GraphQLList):
            count = size if size is not None else page if page is not None else UNSIZED_LIST_ESTIMATE
            inner_page = None
        else:
            count, inner_page = 1, size  # a connection: its lists hold `size` items
        below = 0
        if node.selection_set is not None:
            below = self.selections(node.selection_set.selections, named, inner_page)
        return min(count * (1 + below), CEILING)

    def fragment(self, name: str, page: int | None) -> int:
        key = (name, page)
        if key in self._memo:
            return self._memo[key]
        definition = self._fragments.get(name)
        if definition is None or name in self._open:
            return 0
        on = self._schema.get_type(definition.type_condition.name.value)
        if on is None:
            return 0
        self._open.add(name)
        cost = self.selections(definition.selection_set.selections, on, page)
        self._open.discard(name)
        self._memo[key] = cost
        return cost

    def _size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The field's page size, or None when it takes no ``first``/``limit``."""
        for name in SIZE_ARGUMENTS:
            argument = definition.args.get(name)
            if argument is None:
                continue
            value = self._argument_value(node, name)
            if not is_int(value):
                value = argument.default_value
            if not is_int(value):
                value = self._page_size_max  # no default: assume the largest page
            return max(0, min(value, self._page_size_max))
        return None

    def _argument_value(self, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                variable = value.name.value
                return self._variables.get(variable, self._defaults.get(variable))
            return None
        return None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Variables,
    page_size_max: int,
) -> int:
    root: GraphQLObjectType | None = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    walk = _CostWalk(schema, fragments, operation, variables, page_size_max)
    return walk.selections(operation.selection_set.selections, root, None)
