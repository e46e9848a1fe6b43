"""Properties of the KB importer.

1. On every article of ../shared/kb and ../shared/kb-train: every line that looks like a
   table row (by a test of its own, not the importer's) ends up in the manifest, imported
   (`line: N`) or flagged (`# REVIEW line N`), and nothing else does.
2. On generated articles (hypothesis): tables in the styles real articles use (date, time
   and size spellings, a Version column anywhere or not at all, platforms in many
   spellings, blank lines and sub-headings inside, prose around) read back exactly.
"""

from __future__ import annotations

import os
import re
from datetime import date, time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from deployer.kb import import_article, parse_article
from deployer.sms import attrs

SHARED = ROOT.parent / "shared"
ARTICLES = sorted((SHARED / "kb").glob("Q*.md")) + sorted((SHARED / "kb-train").glob("Q*.md"))

_DATE = re.compile(r"^(\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d{1,2}-[A-Za-z]{3,9}-\d{2,4}|[A-Za-z]{3,9}-\d{1,2}-\d{2,4}"
                   r"|[A-Za-z]{3,9}\.? \d{1,2},)")
_NAME = re.compile(r"\b[\w~$-]+\.[A-Za-z][A-Za-z0-9_]{0,7}\b")
_NUMBER = re.compile(r"\b\d[\d,.]*\d\b")


def looks_like_a_row(line: str) -> bool:
    """Starts with something date-shaped, names a file, and has at least two more numbers."""
    text = line.replace("|", " ").strip()
    return bool(_DATE.match(text)) and bool(_NAME.search(text)) and len(_NUMBER.findall(text)) >= 2


def test_the_articles_are_there():
    if not ARTICLES and os.environ.get("CI") != "true":
        pytest.skip("../shared/kb and ../shared/kb-train are not beside this checkout")
    assert len(ARTICLES) >= 200


@pytest.mark.parametrize("path", ARTICLES, ids=lambda p: p.stem)
def test_no_row_is_lost(path: Path):
    result = import_article(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    want = {i + 1 for i, line in enumerate(lines) if looks_like_a_row(line)}
    imported = {int(n) for n in re.findall(r"line: (\d+)\}", result.yaml)}
    flagged = {int(n) for n in re.findall(r"# REVIEW line (\d+):", result.yaml)}
    assert not imported & flagged
    assert imported | flagged == want
    assert result.rows == len(want) and result.imported + result.review == len(want)
    if result.manifest is not None:  # every entry's line is the article line that names its file
        for f in result.manifest.files:
            assert f.name in lines[f.line - 1]


# --- generated articles ---------------------------------------------------------------

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
LONG = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December"]


def spell_date(d: date, style: int) -> str:
    return [f"{d.month}/{d.day}/{d.year % 100:02d}", f"{d.month:02d}/{d.day:02d}/{d.year}",
            f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year}", f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year % 100:02d}",
            f"{LONG[d.month - 1]} {d.day}, {d.year}", f"{d.month:02d}-{d.day:02d}-{d.year % 100:02d}",
            f"{MONTHS[d.month - 1]}-{d.day:02d}-{d.year}"][style]


def spell_time(t: time, style: int) -> str:
    h12 = t.hour % 12 or 12
    ap = "p" if t.hour >= 12 else "a"
    return [f"{h12}:{t.minute:02d}{ap}", f"{h12:02d}:{t.minute:02d}{ap}m", f"{h12}:{t.minute:02d} {ap.upper()}M",
            f"{t.hour:02d}:{t.minute:02d}", f"{h12:02d}:{t.minute:02d}:{t.second:02d}{ap}"][style]


def spell_size(n: int, style: int) -> tuple[str, attrs.SizeSpec]:
    kb = -(-n // 1024)
    text = [f"{n:,}", str(n), f"{kb} KB", f"{kb}K", f"{n:,} bytes", f"{n:,}b", f"{n / 1024:.1f} KB"][style]
    return text, attrs.parse_size(text)


PLATFORMS = {"x86": ["x86", "I386", "Intel", "(x86)", "i386", "<x86>", "(Intel)"],
             "alpha": ["Alpha", "ALPHA", "(Alpha)", "alpha"]}
LAYOUTS = [("date", "time", "size", "name", "platform"), ("date", "time", "version", "size", "name", "platform"),
           ("date", "time", "version", "size", "name"), ("date", "time", "size", "name", "platform", "version"),
           ("date", "time", "size", "name")]
LABEL = {"date": "Date", "time": "Time", "size": "Size", "name": "File name", "platform": "Platform",
         "version": "Version"}


@st.composite
def tables(draw):
    layout = draw(st.sampled_from(LAYOUTS))
    d_style, t_style, s_style = (draw(st.integers(0, 6)), draw(st.integers(0, 4)), draw(st.integers(0, 6)))
    n = draw(st.integers(1, 12))
    rows = []
    for i in range(n):
        d = draw(st.dates(date(1995, 1, 1), date(2003, 12, 31)))
        t = draw(st.times()).replace(microsecond=0)
        if t_style != 4:
            t = t.replace(second=0)
        size = draw(st.integers(2048, 3_000_000))
        plat = draw(st.sampled_from(["x86", "alpha"]))
        version = draw(st.one_of(st.none(), st.tuples(*[st.integers(0, 9999)] * 4).map(
            lambda v: ".".join(map(str, v)))))
        stem = draw(st.from_regex(r"[A-Z][a-z]{1,6}", fullmatch=True))
        name = f"{stem}{i}.{draw(st.sampled_from(['dll', 'exe', 'sys', 'vxd']))}"
        size_text, spec = spell_size(size, s_style)
        rows.append({"date": (spell_date(d, d_style), d), "time": (spell_time(t, t_style), t),
                     "size": (size_text, spec), "name": (name, name),
                     "platform": (draw(st.sampled_from(PLATFORMS[plat])), plat),
                     "version": (version or "", version if "version" in layout else None)})
    breaks = draw(st.lists(st.sampled_from(["", "blank", "heading"]), min_size=n, max_size=n))
    return layout, rows, breaks


def render(layout, rows, breaks, indent: str) -> tuple[str, list[int]]:
    width = {c: max([len(LABEL[c])] + [len(r[c][0]) for r in rows]) + 2 for c in layout}
    head = ["Article: Q999999", "", "SYMPTOMS", "========", "", "Something fails.", "",
            "The English version of this fix should have the following file attributes or",
            "later:", "", indent + "".join(LABEL[c].ljust(width[c]) for c in layout).rstrip(),
            indent + "-" * sum(width.values())]
    lines, where = list(head), []
    for k, (r, brk) in enumerate(zip(rows, breaks)):
        if k and brk == "blank":
            lines.append("")
        if k and brk == "heading":
            lines += ["", indent + f"French files (0000040C) part {k}:"]
        cells = []
        for c in layout:
            text = r[c][0]
            cells.append(text.rjust(width[c] - 2) + "  " if c == "size" else text.ljust(width[c]))
        lines.append(indent + "".join(cells).rstrip())
        where.append(len(lines))
    lines += ["", "NOTE: Due to file dependencies, the most recent hotfix may also contain additional files.", "",
              "STATUS", "======", "", "Microsoft has confirmed this to be a problem."]
    return "\n".join(lines) + "\n", where


@pytest.mark.slow  # started first (tests/conftest.py)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from(["  ", "\t  ", "    "]))
def test_generated_tables_read_back_exactly(table, indent):
    layout, rows, breaks = table
    text, where = render(layout, rows, breaks, indent)
    result = parse_article(text, "Q999999.txt")
    assert (result.rows, result.review) == (len(rows), 0), result.yaml
    got = result.manifest.files
    for r, line, f in zip(rows, where, got):
        assert f.line == line
        assert f.date == r["date"][1] and f.time == r["time"][1]
        assert f.size == r["size"][1] and f.name == r["name"][1]
        assert f.platform.key == (r["platform"][1] if "platform" in layout else "unknown")
        assert f.version == r["version"][1]
    assert result.manifest.rule == "or-later"
