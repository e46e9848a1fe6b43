""""Did you mean": the closest of the names a mistyped one could have meant (difflib)."""

from __future__ import annotations

import difflib
from typing import Iterable


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices closest to `word`, compared case-insensitively, as written."""
    by_fold: dict[str, str] = {}
    for c in choices:
        by_fold.setdefault(str(c).casefold(), str(c))
    found = difflib.get_close_matches(str(word).casefold(), list(by_fold), n=n, cutoff=0.6)
    return [by_fold[f] for f in found]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'X'?)`, or nothing when no choice is close."""
    found = close_matches(word, choices)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"
