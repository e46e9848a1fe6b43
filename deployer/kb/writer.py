"""Writing the manifest of an article: every row of every table, imported or flagged.

Each imported row is a flow mapping lined up like the article's table, ending with the
article `line:` it came from, and a comment where a value was normalised. A row that
cannot be read exactly is written as a commented-out line with its article line and the
reason: the manifest loads without it, and the reviewer sees it where it belongs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..report.escape import visible

_PLAIN = re.compile(r"[A-Za-z0-9(<\[][A-Za-z0-9_./()<>\[\]+: -]*")
_YAML_SPECIAL = re.compile(
    r"[-+]?([0-9][0-9_]*|[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?|[0-9]+\.[0-9]*|0x[0-9a-fA-F]+|0o[0-7]+|\.inf|\.nan)|true|false|null|yes|no|on|off|~",
    re.IGNORECASE,
)


def scalar(text: str, allow_int: bool = False) -> str:
    """`text` as a plain YAML scalar when it reads back as the same string, else quoted.

    A plain `254,400` would split the flow mapping at its comma and a plain `1.2` would
    load as a number. Byte sizes may stay plain: `800528` loads as 800528, the same size."""
    if allow_int and re.fullmatch(r"[1-9][0-9]{0,14}|0", text):
        return text
    if _PLAIN.fullmatch(text) and not _YAML_SPECIAL.fullmatch(text) and not text.endswith(" ") \
            and ": " not in text and " #" not in text:
        return text
    return quoted(text)


def quoted(text: str) -> str:
    """A YAML double-quoted scalar. JSON's escapes are YAML's, but JSON leaves DEL raw and YAML
    allows no control character in a stream, so an article's DEL would make the manifest
    unloadable."""
    return json.dumps(text).replace("\x7f", "\\u007f")


@dataclass
class OutRow:
    """One line of the manifest: an entry (items) or a flagged row (problem)."""

    line: int
    items: list[str] | None = None  # "key: value" pairs, in column order
    comment: str = ""
    problem: str | None = None
    text: str = ""  # the article's line, for a flagged row


@dataclass
class OutGroup:
    title: str | None
    line: int | None
    rows: list[OutRow]
    intro: str | None = None  # a comment above the group (the table's sentence)
    header: str | None = None  # the table's header as written


def render(head: list[str], meta: list[str], groups: list[OutGroup], flat: bool) -> str:
    out = [*head, *meta]
    if flat:
        g = groups[0]
        out.append("files:")
        out.extend(_rows(g, "  "))
    else:
        out.append("groups:")
        for g in groups:
            if g.intro:
                out.append(f"  # {visible(g.intro)}")
            if not any(r.items for r in g.rows):
                out.append(f"  # {quoted(g.title or 'untitled')} (line {g.line}): no row could be read exactly")
                out.extend(_rows(g, "  "))
                continue
            out.append(f"  - title: {quoted(g.title) if g.title is not None else 'null'}")
            if g.line is not None:
                out.append(f"    line: {g.line}")
            out.append("    files:")
            out.extend(_rows(g, "      "))
    return "\n".join(out) + "\n"


def _rows(g: OutGroup, indent: str) -> list[str]:
    lines = []
    if g.header:
        lines.append(f"{indent}# {visible(g.header)}")
    width: dict[int, int] = {}
    for r in g.rows:
        for k, item in enumerate((r.items or [])[:-1]):
            width[k] = max(width.get(k, 0), len(item) + 1)
    for r in g.rows:
        if r.items is None:
            # the article's own text in a comment: its control characters shown, never raw
            # (YAML refuses them anywhere, comments included)
            lines.append(f"{indent}# REVIEW line {r.line}: {visible(r.problem or '')}")
            lines.append(f"{indent}#   {visible(r.text)}")
            continue
        parts = [(item + ",").ljust(width[k]) for k, item in enumerate(r.items[:-1])] + [r.items[-1]]
        text = f"{indent}- {{" + " ".join(parts) + "}"
        lines.append(f"{text}  # {visible(r.comment)}" if r.comment else text)
    return lines
