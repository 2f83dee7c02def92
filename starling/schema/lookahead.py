"""Look-ahead: which fields a query selects below the field being resolved.

A connection resolver uses it to load, for a whole page at once, what the selected node
fields need (``schema.types.tweet_connection``). It only guides prefetching: a field it
misses (say, behind a ``@skip`` that turned out false) still loads on its own, and one it
reports in vain costs a batch, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import strawberry
from graphql.language import FieldNode
from strawberry.types.nodes import SelectedField, Selection

from starling.lru import BoundedLRU

LOOKAHEAD_MAX_SELECTIONS = 1024  # counted in connection fields of distinct documents


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection set, with those of its fragments spread in."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _fields(selection.selections)


def _children(fields: Iterable[SelectedField], name: str) -> list[SelectedField]:
    return [child for field in fields if field.name == name for child in _fields(field.selections)]


# Field nodes (of cached documents) -> the node field names below them. The names depend
# on the document only (directives are not evaluated, module doc), so an operation sent
# again finds them here instead of converting its selections anew.
_NODE_FIELDS: BoundedLRU[tuple[int, ...], tuple[tuple[FieldNode, ...], frozenset[str]]] = BoundedLRU(
    LOOKAHEAD_MAX_SELECTIONS, LOOKAHEAD_MAX_SELECTIONS, 1
)


def connection_node_fields(info: strawberry.Info) -> frozenset[str]:
    """Names of the fields selected on the nodes of the connection the current field returns,
    whether through ``edges { node }`` or ``nodes``."""
    field_nodes = tuple(info._raw_info.field_nodes)
    key = tuple(map(id, field_nodes))  # the nodes are kept with the names: no id is reused
    found = _NODE_FIELDS.get(key)
    if found is not None:
        return found[1]
    # selected_fields holds the current field itself (once per alias-merged node).
    parts = [part for field in _fields(info.selected_fields) for part in _fields(field.selections)]
    nodes = _children(_children(parts, "edges"), "node") + _children(parts, "nodes")
    names = frozenset(field.name for field in nodes)
    _NODE_FIELDS.put(key, (field_nodes, names), 1)
    return names
