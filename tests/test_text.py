from __future__ import annotations

from collections.abc import Callable

import pytest

from starling.resolvers.errors import BadUserInput
from starling.resolvers.text import (
    check_password,
    clean_handle,
    clean_profile_field,
    clean_text,
    hashtags_in,
    mentioned_handles,
)


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


@pytest.mark.parametrize(
    "check",
    [
        lambda text: clean_text(text, 280, "Tweet text"),
        lambda text: clean_profile_field(text, 160, "Bio"),
        lambda text: check_password(text, 1024),
    ],
    ids=["tweet-or-comment", "profile", "password"],
)
@pytest.mark.parametrize("text", ["lone \ud800 high", "lone \udc00 low", "reversed \udc00\ud800 pair"])
def test_lone_surrogates_are_refused_with_a_clear_message(check: Callable[[str], str], text: str) -> None:
    """Half of a UTF-16 pair has no UTF-8 form, so MongoDB could not store it (issue 10: it
    answered INTERNAL_SERVER_ERROR with a traceback in the log)."""
    with pytest.raises(BadUserInput, match="surrogate"):
        check(text)


def test_a_whole_surrogate_pair_is_a_character() -> None:
    assert clean_text("emoji \U0001f600", 280) == "emoji \U0001f600"
