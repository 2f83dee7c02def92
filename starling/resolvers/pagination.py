"""Opaque cursors and pages.

Every connection in Starling is ordered by a snowflake ``_id`` (of a tweet, a follow, a
like, a comment...), so a cursor is that ID, versioned and base64-encoded: opaque to
clients, stable while new items arrive (the next page starts strictly after it, whatever
was inserted before it), and cheap to turn into an index range.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starling.resolvers.errors import BadUserInput
from starling.store.documents import Document
from starling.store.ids import parse_id
from starling.store.mongo_api import MongoCollection, Projection

# Covariant: a page of tweet documents is a page of what any reader of tweets accepts
# (``CachedTweetDoc``, the fields every tweet has).
T = TypeVar("T", covariant=True)
U = TypeVar("U")
D = TypeVar("D", bound=Mapping[str, Any])

_PREFIX = "v1:"


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{position}".encode()).decode().rstrip("=")


def after_position(after: str | None) -> int | None:
    """The position a page starts after; anything but a string (null, unset) means the start."""
    return decode_cursor(after) if isinstance(after, str) else None


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        return parse_id(text[len(_PREFIX) :])
    except (ValueError, UnicodeError, binascii.Error):
        raise BadUserInput(f"`after` is not a cursor this API issued: {cursor!r}.") from None


DEFAULT_FIRST = 20


def check_first(first: int | None, maximum: int) -> int:
    """``first`` of a connection; an explicit null means the default."""
    if first is None:
        return DEFAULT_FIRST
    if not 1 <= first <= maximum:
        raise BadUserInput(f"`first` must be between 1 and {maximum}, got {first}.")
    return first


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a connection: items with their cursor positions."""

    items: Sequence[T]
    positions: list[int]
    has_next_page: bool

    def hydrated(self, documents: Sequence[U | None]) -> Page[U]:
        """This page with each item replaced by its document (same order); items whose
        document is gone (``None``) drop out, ``has_next_page`` is kept."""
        rows = [(pos, doc) for pos, doc in zip(self.positions, documents, strict=True) if doc is not None]
        return Page(
            items=[doc for _, doc in rows],
            positions=[pos for pos, _ in rows],
            has_next_page=self.has_next_page,
        )

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, U]], first: int) -> Page[U]:
        """Build from ``first + 1`` rows fetched newest/oldest-first: the extra row only
        tells whether another page exists."""
        kept = rows[:first]
        return Page(
            items=[item for _, item in kept],
            positions=[position for position, _ in kept],
            has_next_page=len(rows) > first,
        )


async def find_page(
    collection: MongoCollection[D],
    query: Document,
    first: int,
    after: str | None,
    *,
    newest_first: bool = True,
    projection: Projection | None = None,
    order: str = "_id",
) -> Page[D]:
    """A page of ``collection`` ordered by ``order`` (a field unique among the documents
    ``query`` selects), continuing strictly after ``after``.

    Uses one index range scan; ``first + 1`` documents are read to learn whether more
    follow."""
    query = dict(query)
    position = after_position(after)
    if position is not None:
        query[order] = {"$lt" if newest_first else "$gt": position}
    docs = (
        await collection.find(query, projection)
        .sort(order, -1 if newest_first else 1)
        .limit(first + 1)
        .to_list()
    )
    return Page.from_rows([(doc[order], doc) for doc in docs], first)
