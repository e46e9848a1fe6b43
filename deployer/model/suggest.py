""""Did you mean": the closest of the names a mistyped one could have meant (difflib)."""

from __future__ import annotations

import difflib
from typing import Iterable


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices closest to `word`, compared case-insensitively, as written."""
    by_fold: dict[str, str] = {}
    for c in choices:
        by_fold.setdefault(str(c).casefold(), str(c))
    target = str(word).casefold()
    found = difflib.get_close_matches(target, list(by_fold), n=n, cutoff=0.6)
    if not found:
        return []
    # only those about as close as the closest: one good guess beats three loose ones
    best = difflib.SequenceMatcher(None, target, found[0]).ratio()
    return [by_fold[f] for f in found if difflib.SequenceMatcher(None, target, f).ratio() >= best - 0.1]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'X'?)`, or nothing when no choice is close."""
    found = close_matches(word, choices)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"


def listing(names: list[str], noun: str, limit: int = 12) -> str:
    """`sites: A, B, C`, or for a long list its first names and where to see all of them."""
    if len(names) <= limit:
        return f"{noun}s: {', '.join(names)}"
    return (f"{len(names)} {noun}s: {', '.join(names[:limit])}, ... (`deployer inventory show` lists them all)")

