"""What an article says about its place among others: the products it applies to, and the
hotfixes it says it replaces. Read for the catalogue (deployer/kb/catalog.py)."""

from __future__ import annotations

import re

_APPLIES = re.compile(r"information in this article applies to", re.IGNORECASE)
_ITEM = re.compile(r"^\s*[-*]\s+(?P<text>\S.*?)\s*$")
_RULE = re.compile(r"^\s*-{5,}\s*$")
# "This hotfix supersedes the fix in Q225056", "This fix replaces the hotfix described in
# article Q225056": the sentence must say that this fix does the replacing ("is superseded by"
# says the opposite and is not taken).
_SUPERSEDES = re.compile(r"\bthis\s+(?:hot\s*)?fix\s+(?:supersedes|replaces)\b(?P<rest>[^.]{0,200})",
                         re.IGNORECASE)
_KB = re.compile(r"\b([QK]B?\d{5,7})\b", re.IGNORECASE)


def applies_to(lines: list[str]) -> list[str]:
    """The list under "The information in this article applies to:", as the article writes it."""
    for i, line in enumerate(lines[:80]):
        if not _APPLIES.search(line):
            continue
        out = []
        for nxt in lines[i + 1:i + 30]:
            if _RULE.match(nxt) or (out and not nxt.strip()):
                break
            m = _ITEM.match(nxt)
            if m:
                out.append(" ".join(m.group("text").split()))
        return list(dict.fromkeys(out))
    return []


def supersedes(lines: list[str], own: str) -> list[tuple[str, int]]:
    """(KB, article line) for each hotfix the article says this one replaces."""
    found: dict[str, int] = {}
    for i in range(len(lines)):
        text = " ".join(ln.strip() for ln in lines[i:i + 3])  # a sentence may wrap over lines
        m = _SUPERSEDES.search(" ".join(lines[i].split()))
        if not m:
            continue
        m = _SUPERSEDES.search(text)
        for kb in _KB.findall(m.group("rest") if m else ""):
            kb = kb.upper()
            if kb != own.upper():
                found.setdefault(kb, i + 1)
    return sorted(found.items(), key=lambda kv: kv[1])


def meta_lines(lines: list[str], own: str) -> list[str]:
    """The manifest's `products:` and `supersedes:` lines, when the article gives them."""
    import json

    out = []
    products = applies_to(lines)
    if products:
        out.append(f"products: {json.dumps(products)}")
    replaced = supersedes(lines, own)
    if replaced:
        where = ", ".join(f"{kb} at line {line}" for kb, line in replaced)
        out.append(f"supersedes: [{', '.join(kb for kb, _ in replaced)}]   # the article says so ({where})")
    return out
