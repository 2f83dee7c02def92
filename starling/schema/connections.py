"""Relay-style connections: ``XConnection { edges { cursor node } nodes pageInfo }``.

Strawberry names a generic type after its argument, so ``Connection[Tweet]`` is the
``TweetConnection`` of the contract, ``Edge[User]`` is ``UserEdge``, and so on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry

from starling.resolvers.pagination import DEFAULT_FIRST as DEFAULT_PAGE_SIZE
from starling.resolvers.pagination import Page, encode_cursor

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo


__all__ = ["DEFAULT_PAGE_SIZE", "Connection", "Edge", "PageInfo", "connection_of"]


def connection_of(page: Page[Any], wrap: Callable[[Any], T]) -> Connection[T]:
    nodes = [wrap(item) for item in page.items]
    cursors = [encode_cursor(position) for position in page.positions]
    return Connection(
        edges=[Edge(cursor=cursor, node=node) for cursor, node in zip(cursors, nodes, strict=True)],
        nodes=nodes,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=cursors[-1] if cursors else None),
    )
