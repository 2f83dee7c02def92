from __future__ import annotations

import pytest

from starling.resolvers.errors import BadUserInput
from starling.resolvers.text import clean_handle, clean_text, hashtags_in, mentioned_handles


def test_hashtags_and_mentions() -> None:
    text = "Hi @Ann, @bob_2! email a@b.com #Py #py #GraphQL x#no #ünïcode"
    assert hashtags_in(text) == ["py", "graphql", "ünïcode"]
    assert mentioned_handles(text) == ["ann", "bob_2"]


def test_clean_text_normalises_and_trims() -> None:
    assert clean_text("  Cafe\u0301 \n ok  ", 280) == "Café \n ok"


@pytest.mark.parametrize("text", ["", "  ", "a\x00b", "a\rb", "x" * 281])
def test_clean_text_rejects(text: str) -> None:
    with pytest.raises(BadUserInput):
        clean_text(text, 280)


@pytest.mark.parametrize("handle", ["a", "A_1", "x" * 15])
def test_handles_accepted(handle: str) -> None:
    assert clean_handle(handle) == handle


@pytest.mark.parametrize("handle", ["", "x" * 16, "a-b", "é", "a b"])
def test_handles_rejected(handle: str) -> None:
    with pytest.raises(BadUserInput):
        clean_handle(handle)
