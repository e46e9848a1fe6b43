"""Finding the file-attribute tables of an article.

A table is found by its header row (Date, Time, [Version,] Size, File name, [Platform]),
not by the sentence before it: articles introduce tables many ways ("should have the
following file attributes or later", "has the file attributes (or later) that are listed
in the following table", "should have the following timestamps", "the following updated
files"), and some put a NOTE between the sentence and the header. The sentence is still
read, for the table's heading and for "or later".

Inside a table, blank lines, rules and short sub-headings ("French files (0000040C):",
"Pan-Chinese") do not end it; each sub-heading starts a part of the table. Anything else
(prose, a NOTE, the next section) does. A line that looks like a row anywhere else in the
article is kept too, as a row outside any table: nothing that looks like a row is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import values

# Header labels -> fields
LABELS = {
    "date": "date", "time": "time", "size": "size", "file name": "name", "filename": "name", "file": "name",
    "name": "name", "platform": "platform", "version": "version", "operating system": "platform",
    "os": "platform", "cpu": "platform", "processor": "platform", "language": "platform",
    "file version": "version", "file size": "size", "filesize": "size", "ver": "version",
}
_UNITS = {"bytes", "kb", "k", "b"}  # "Size (bytes)": part of the size label
_MAX_OTHER = 2  # columns deployer does not use ("Path", "Description"): kept out of the values, in a note
_LABEL = re.compile(r"file\s?name|file\s+version|file\s+size|operating\s+system|[A-Za-z]+", re.IGNORECASE)
_RULE = re.compile(r"\s*\|?\s*[-=_|+: ]{3,}\s*")
_OR_LATER = re.compile(r"or\s+(?:a\s+)?(?:later|newer)|\(or\s+later\)|later\s+(?:versions?|dates?)", re.IGNORECASE)
_HEADING_MAX_WORDS = 9


@dataclass(frozen=True)
class Column:
    field: str
    label: str
    start: int  # display column (tabs expanded)
    end: int


@dataclass
class RawRow:
    lineno: int  # 1-based
    text: str
    block: int = 0  # rows between blank lines share a block (a blank Platform cell takes the block's)


@dataclass
class Part:
    """Rows under one heading: the table's own, or a sub-heading's."""

    title: str | None
    title_line: int | None
    rows: list[RawRow] = field(default_factory=list)


@dataclass
class Table:
    header_line: int | None  # 1-based; None for rows found outside any table
    columns: list[Column]
    intro: str | None  # the sentence (paragraph) that introduces the table, as written
    intro_line: int | None
    or_later: bool | None  # None: the article does not say
    parts: list[Part]
    heading: str | None = None  # the section heading above the table ("IIS 5.0", "Windows 2000")
    heading_line: int | None = None

    @property
    def rows(self) -> list[RawRow]:
        return [r for p in self.parts for r in p.rows]


def clean(line: str) -> str:
    """Tabs expanded and markdown table pipes blanked, columns kept in place."""
    return line.expandtabs(8).replace("|", " ")


def header_columns(line: str) -> list[Column] | None:
    """The columns of a header row, or None when the line is not one."""
    text = clean(line)
    if not re.match(r"\s*date\b", text, re.IGNORECASE):
        return None
    columns: list[Column] = []
    other = 0
    for m in _LABEL.finditer(text):
        label = " ".join(m.group(0).split())
        fld = LABELS.get(label.casefold())
        if fld is None and label.casefold() in _UNITS and columns and columns[-1].field == "size":
            continue
        if fld is None:
            other += 1
            if other > _MAX_OTHER:
                return None
            columns.append(Column(f"other:{label}", label, m.start(), m.end()))
            continue
        if any(c.field == fld for c in columns):
            if fld == "platform":
                continue  # "Platform Language": one text column for both
            return None
        columns.append(Column(fld, label, m.start(), m.end()))
    got = {c.field for c in columns}
    if not {"date", "name"} <= got or not got & {"size", "time"} or (other and len(got - {c.field for c in columns
                                                                                     if c.field.startswith("other:")}) < 4):
        return None
    return columns


def is_rule(line: str) -> bool:
    return bool(_RULE.fullmatch(line)) and bool(re.search(r"[-=_]{3,}", line))


def looks_like_row(line: str) -> bool:
    """A line that starts with a date and holds a file name: a table row, read or not."""
    text = clean(line).strip()
    m = values.DATE_LIKE.match(text)
    if not m:
        return False
    rest = text[m.end():]
    if rest and not rest[0].isspace() and not rest[0] == ",":
        return False
    return any(values.is_name(t.strip("()<>[],;")) for t in rest.split())


def starts_with_date(line: str) -> bool:
    """Inside a table, a line that starts with a date is a row, even without a file name."""
    m = values.DATE_LIKE.match(clean(line).strip())
    return bool(m) and len(clean(line).split()) >= 3


def looks_like_cells(line: str) -> bool:
    """Inside a table: a line that starts like a row and holds a file name, even without a
    date that can be read (`12/20/199`, an empty Date cell). It is read, and flagged if need be."""
    text = clean(line).strip()
    words = text.split()
    if not words or not values.CELLS_START.match(text) or re.fullmatch(r"[0-9]+[.)]", words[0]):
        return False  # "1. Rename the file": a numbered step, not a row
    if sum(1 for w in words if re.fullmatch(r"[A-Za-z]{3,}", w)) > 3:
        return False  # prose
    return any(values.is_name(t.strip("()<>[],;")) for t in words[1:])


def _is_heading(line: str) -> bool:
    text = line.strip()
    words = text.split()
    return (0 < len(words) <= _HEADING_MAX_WORDS and len(text) <= 80 and not text.endswith(".")
            and not re.match(r"notes?\b|warning\b|important\b", text, re.IGNORECASE)
            and not values.DATE_LIKE.match(text))


def _next_content(lines: list[str], i: int, limit: int = 4) -> int | None:
    """The index of the next line that is neither blank nor a rule, within `limit` lines."""
    j = i
    while j < len(lines) and j - i <= limit:
        if lines[j].strip() and not is_rule(lines[j]):
            return j
        j += 1
    return None


def find_tables(lines: list[str]) -> list[Table]:
    """Every table, in article order; rows outside any table come last, as a table without header."""
    tables: list[Table] = []
    used: set[int] = set()
    i = 0
    while i < len(lines):
        columns = header_columns(lines[i]) if lines[i].strip() else None
        if columns is None:
            i += 1
            continue
        intro, intro_line, or_later = _intro(lines, i)
        heading, heading_line = _heading(lines, i, intro_line)
        table = Table(i + 1, columns, intro, intro_line, or_later, [Part(None, None)], heading, heading_line)
        j = i + 1
        block = 0
        while j < len(lines):
            line = lines[j]
            if not line.strip() or is_rule(line):
                block += 1
                j += 1
                continue
            if header_columns(line) is not None:
                break
            if looks_like_row(line) or looks_like_cells(line) or starts_with_date(line):
                table.parts[-1].rows.append(RawRow(j + 1, line, block))
                used.add(j)
                j += 1
                continue
            nxt = _next_content(lines, j + 1)
            if _is_heading(line) and nxt is not None and looks_like_row(lines[nxt]):
                table.parts.append(Part(" ".join(line.split()), j + 1))
                j += 1
                continue
            break
        table.parts = [p for p in table.parts if p.rows or p.title]
        tables.append(table)
        i = j
    orphans = [RawRow(k + 1, line) for k, line in enumerate(lines) if k not in used and looks_like_row(line)]
    if orphans:
        tables.append(Table(None, [], None, None, None, [Part(None, None, orphans)]))
    return tables


def _intro(lines: list[str], header: int) -> tuple[str | None, int | None, bool | None]:
    """The paragraph that introduces the table at `header` (0-based): the nearest one before
    it that mentions what follows, looking past a NOTE or a heading; its text, its first
    line (1-based), and whether it says "or later"."""
    paragraphs = []
    k = header - 1
    while k >= 0 and len(paragraphs) < 3:
        while k >= 0 and (not lines[k].strip() or is_rule(lines[k])):
            k -= 1
        end = k
        while k >= 0 and lines[k].strip() and not is_rule(lines[k]) and end - k < 8:
            k -= 1
        if end < 0:
            break
        paragraphs.append((k + 1, " ".join(" ".join(lines[k + 1:end + 1]).split())))
        if header_columns(lines[end]) is not None or looks_like_row(lines[end]):
            break  # the previous table: this one has no sentence of its own
    for start, text in paragraphs:
        if header_columns(lines[start]) is not None or looks_like_row(lines[start]):
            break
        if _is_heading(text) and len(text) < 40:
            continue  # "For Windows 2000:": the table's heading; its sentence is further up
        if re.match(r"(notes?|warning|important|caution)\b", text, re.IGNORECASE):
            continue  # a NOTE between the sentence and the header
        if re.search(r"follow|attributes|timestamps|listed below|below:|:$", text, re.IGNORECASE):
            return text, start + 1, bool(_OR_LATER.search(text))
    return None, None, None


def _heading(lines: list[str], header: int, intro_line: int | None) -> tuple[str | None, int | None]:
    """The heading a table sits under: a one-line paragraph right above its header ("IIS
    5.0" over a rule), else the nearest underlined section title above its sentence."""
    k = header - 1
    while k >= 0 and (not lines[k].strip() or is_rule(lines[k])):
        k -= 1
    if k >= 0 and (k == 0 or not lines[k - 1].strip() or is_rule(lines[k - 1])) and _is_heading(lines[k]) \
            and header_columns(lines[k]) is None and not looks_like_row(lines[k]) and intro_line != k + 1:
        return " ".join(lines[k].split()), k + 1
    start = (intro_line - 1 if intro_line else header) - 1
    for k in range(start, max(start - 40, 0), -1):
        title = lines[k - 1].strip()
        if re.fullmatch(r"\s*-{3,}\s*", lines[k]) and title and not is_rule(lines[k - 1]) \
                and abs(len(lines[k].strip()) - len(title)) <= 3 and _is_heading(title) \
                and not title.startswith("-"):
            return " ".join(title.split()), k
        if header_columns(lines[k]) is not None or looks_like_row(lines[k]):
            break  # the table before: its heading is not ours
    return None, None
