"""Cursors are opaque, round-trip exactly, and reject anything the API did not issue."""

from __future__ import annotations

import pytest

from starling.resolvers.errors import BadUserInput
from starling.resolvers.pagination import Page, check_first, decode_cursor, encode_cursor
from starling.store.ids import MAX_ID


@pytest.mark.parametrize("position", [1, 42, 2**53 + 1, MAX_ID])
def test_round_trip(position: int) -> None:
    cursor = encode_cursor(position)
    assert str(position) not in cursor  # opaque, not the raw ID
    assert decode_cursor(cursor) == position


@pytest.mark.parametrize(
    "cursor", ["", "nope", "djE6", "djE6YWJj", "djI6MTIz", "djE6LTE", "\u00e9\u00e9", "djE6MA"]
)
def test_rejects_foreign_cursors(cursor: str) -> None:
    with pytest.raises(BadUserInput):
        decode_cursor(cursor)


def test_first_bounds() -> None:
    assert check_first(None, 100) == 20
    assert check_first(1, 100) == 1 and check_first(100, 100) == 100
    for bad in (0, -3, 101):
        with pytest.raises(BadUserInput):
            check_first(bad, 100)


def test_page_uses_extra_row_only_for_has_next() -> None:
    rows = [(n, f"item{n}") for n in (9, 8, 7)]
    page = Page.from_rows(rows, first=2)
    assert page.items == ["item9", "item8"] and page.positions == [9, 8] and page.has_next_page
    assert not Page.from_rows(rows, first=3).has_next_page
