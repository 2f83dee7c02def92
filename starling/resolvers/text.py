"""Input rules of DESIGN.md §5 and what Starling reads out of a tweet's text."""

from __future__ import annotations

import re
import unicodedata

from starling.resolvers.errors import BadUserInput

HANDLE_RE = re.compile(r"[A-Za-z0-9_]{1,15}")
PASSWORD_MIN = 8
DISPLAY_NAME_MAX = 50
BIO_MAX = 160

# A hashtag starts after a non-word character (so "a#b" is not one) and is word characters;
# a mention is an @ followed by a handle.
_HASHTAG_RE = re.compile(r"(?<![\w#])#(\w{1,100})")
_MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])")
# Search words (``words_in``): runs of word characters; longer ones are not indexed, and a
# tweet indexes at most WORDS_MAX distinct words (280 characters hold fewer in practice).
_WORD_RE = re.compile(r"\w+")
WORD_MAX = 100
WORDS_MAX = 140


def _check_storable(text: str, what: str) -> None:
    """Refuse text that has no UTF-8 form (a lone surrogate, half of a UTF-16 pair), which
    MongoDB, Redis and the password hash all need."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        code_point = ord(text[exc.start])
        raise BadUserInput(
            f"{what} contains U+{code_point:04X}, half of a UTF-16 surrogate pair, which is not a "
            "character on its own."
        ) from None


def _has_control_characters(text: str, allowed: str = "") -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text)


def clean_text(text: str, maximum: int, what: str = "Text") -> str:
    """Tweet and comment text: NFC, trimmed, 1..maximum characters, no control characters
    but newline."""
    _check_storable(text, what)
    cleaned = unicodedata.normalize("NFC", text).strip()
    if not cleaned:
        raise BadUserInput(f"{what} cannot be empty.")
    if len(cleaned) > maximum:
        raise BadUserInput(f"{what} is {len(cleaned)} characters; the limit is {maximum}.")
    if _has_control_characters(cleaned, allowed="\n"):
        raise BadUserInput(f"{what} cannot contain control characters (newlines are fine).")
    return cleaned


def clean_handle(handle: str) -> str:
    if not HANDLE_RE.fullmatch(handle):
        raise BadUserInput("A handle is 1 to 15 letters, digits or underscores.")
    return handle


def check_password(password: str, maximum: int) -> str:
    """A new password: PASSWORD_MIN to ``maximum`` characters."""
    if len(password) < PASSWORD_MIN:
        raise BadUserInput(f"A password needs at least {PASSWORD_MIN} characters.")
    return check_password_length(password, maximum)


def check_password_length(password: str, maximum: int) -> str:
    """Any password a client sends (a new one, or one to check): at most ``maximum``
    characters, refused before it is hashed, since hashing costs time in its length; and
    text that can be encoded (no lone surrogates)."""
    _check_storable(password, "A password")
    if len(password) > maximum:
        raise BadUserInput(f"A password is at most {maximum} characters.")
    return password


def clean_profile_field(value: str, maximum: int, what: str) -> str:
    _check_storable(value, what)
    cleaned = unicodedata.normalize("NFC", value).strip()
    if len(cleaned) > maximum:
        raise BadUserInput(f"{what} is {len(cleaned)} characters; the limit is {maximum}.")
    if _has_control_characters(cleaned, allowed="\n" if what == "Bio" else ""):
        raise BadUserInput(f"{what} cannot contain control characters.")
    return cleaned


def hashtags_in(text: str) -> list[str]:
    """Distinct hashtags, lower-cased, in order of appearance."""
    return list(dict.fromkeys(tag.lower() for tag in _HASHTAG_RE.findall(text)))


def mentioned_handles(text: str) -> list[str]:
    """Distinct mentioned handles, lower-cased, in order of appearance."""
    return list(dict.fromkeys(handle.lower() for handle in _MENTION_RE.findall(text)))


def words_in(text: str) -> list[str]:
    """Distinct search words, NFC and lower-cased, in order of appearance: every run of word
    characters, so the bodies of hashtags and mentions count as words too."""
    normalized = unicodedata.normalize("NFC", text).lower()
    words = (word for word in _WORD_RE.findall(normalized) if len(word) <= WORD_MAX)
    return list(dict.fromkeys(words))[:WORDS_MAX]


def search_terms(query: str) -> tuple[list[str], list[str]]:
    """``(hashtags, words)`` a search query asks for: ``#tag`` terms by the hashtag rule of
    tweets, every other run of word characters as a word."""
    normalized = unicodedata.normalize("NFC", query)
    return hashtags_in(normalized), words_in(_HASHTAG_RE.sub(" ", normalized))
