"""Name ranges as Ansible writes them (`S[001:030]`, `[a:f]`, `[01:10:2]`), for inventories.

Plain functions, no models: shell completion expands site names with them and must start fast.
"""

from __future__ import annotations

import itertools
import re

MAX_EXPANDED = 10_000  # a fleet of sites, or servers in one site: a typo must not make millions

RANGE = re.compile(r"\[(?:([0-9]+):([0-9]+)(?::([0-9]+))?|([a-z]):([a-z])|([A-Z]):([A-Z]))\]")


def has_range(text: str) -> bool:
    return isinstance(text, str) and RANGE.search(text) is not None


def _items(m: re.Match) -> list[str]:
    if m.group(1) is not None:
        start, end, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        if start > end or step < 1:
            raise ValueError(f"range {m.group(0)} is empty: write [START:END] with START <= END (and a STEP of 1 "
                             "or more)")
        width = len(m.group(1))  # zero-padding as written: [001:030] gives 001 ... 030
        return [f"{n:0{width}d}" for n in range(start, end + 1, step)]
    lo, hi = (m.group(4), m.group(5)) if m.group(4) is not None else (m.group(6), m.group(7))
    if lo > hi:
        raise ValueError(f"range {m.group(0)} is empty: write [FIRST:LAST] with FIRST <= LAST")
    return [chr(c) for c in range(ord(lo), ord(hi) + 1)]


def expand(text: str) -> list[str]:
    """Every name a ranged text stands for, in order (the last range varies fastest)."""
    matches = list(RANGE.finditer(text))
    if not matches:
        return [text]
    literal = [text[:matches[0].start()]] + [text[a.end():b.start()] for a, b in zip(matches, matches[1:])] \
        + [text[matches[-1].end():]]
    choices = [_items(m) for m in matches]
    total = 1
    for c in choices:
        total *= len(c)
    if total > MAX_EXPANDED:
        raise ValueError(f"{text} stands for {total:,} names; at most {MAX_EXPANDED:,} are accepted")
    out = []
    for combo in itertools.product(*choices):
        out.append(literal[0] + "".join(c + lit for c, lit in zip(combo, literal[1:])))
    return out
