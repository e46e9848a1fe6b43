"""KB articles of ../shared/kb and ../shared/kb-train against their expected rows
(tests/data/kb-expected/, checked row by row against the article text; see its README)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ROOT
from deployer.kb import ImportResult, import_article

EXPECTED = ROOT / "tests" / "data" / "kb-expected"
SHARED = ROOT.parent / "shared"
CASES = sorted(EXPECTED.glob("Q*.txt"))


def _article(q: str) -> Path:
    for folder in ("kb", "kb-train"):
        path = SHARED / folder / f"{q}.md"
        if path.exists():
            return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{q}.md is not under {SHARED}/kb or {SHARED}/kb-train")
    pytest.skip(f"{q}.md: ../shared is not beside this checkout")


def _size(s) -> str:
    if s is None:
        return "-"
    if s.unit == "range":
        return "~" + s.text.replace(" ", "")
    return f"{s.value}{'KB' if s.unit == 'KB' else 'B'}"


def describe(result: ImportResult) -> list[str]:
    """The import in the expected files' notation."""
    m = result.manifest
    out = [f"rule {m.rule if m else '?'}"]
    entries = {f.line: (i, f) for i, f in enumerate(m.files)} if m else {}
    flagged = {f.line for f in result.flagged if f.line not in entries}
    group = None
    for line in sorted(set(entries) | flagged):
        if line not in entries:
            out.append(f"{line} flagged")
            continue
        i, f = entries[line]
        g = m.group_of(i)
        if g is not None and g is not group:
            out.append(f"group {g.line}: {g.title if g.title is not None else '-'}")
            group = g
        t = f.time.strftime("%H:%M:%S" if f.time.second else "%H:%M") if f.time else "-"
        version = (f.version or "-").replace("(build ", "(build_")
        out.append(f"{line} {'review' if f.review else 'ok'} {f.date.isoformat()} {t} {_size(f.size)} {f.name} "
                   f"{f.platform.key} {version}")
    return out


def test_enough_articles_in_every_style():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_article_reads_as_expected(case: Path):
    want = [line for line in case.read_text().splitlines() if line and not line.startswith("#")]
    assert describe(import_article(_article(case.stem))) == want
