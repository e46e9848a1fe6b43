"""Import a KB hotfix article's file-attribute table as a manifest.

Articles print the table as fixed-width text after a sentence such as "The English
version of this fix should have the following file attributes or later:". The tables
were typed by hand, article by article, so they differ: column order (a Version column
or not), `7:00PM` / `1:35pm` / `11:01a`, sizes in rounded KB or exact bytes with or
without thousands separators, right-aligned numbers that start left of their header,
empty cells, a blank line between the rule and the rows, trailing blanks, tab indents.
The header row is therefore what tells us the columns, and each value is kept exactly as
the article spells it, so that the manifest reads like the article and a reviewer can
compare the two line by line.
"""

from __future__ import annotations

import bisect
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath

import yaml
from pydantic import ValidationError

from .errors import InputError, Location
from .model.common import validate
from .model.manifest import FileEntry, Manifest
from .yamlsrc import parse_yaml, read_input


class ArticleError(InputError):
    """A KB article could not be imported; the location names the article and line."""

    @property
    def path(self) -> str | None:
        return self.location.file if self.location else None

    @property
    def line(self) -> int | None:
        return self.location.line if self.location else None


class NoTableError(ArticleError):
    """The article has no file-attribute table we can find (or more than one)."""


class TableRowError(ArticleError):
    """A header or row of the table cannot be read."""


@dataclass(frozen=True)
class ImportedManifest:
    manifest: Manifest
    yaml: str
    table_line: int  # 1-based line of the table's header row in the article


# Header labels as articles spell them -> FileEntry fields.
_LABELS = {
    "date": "date",
    "time": "time",
    "size": "size",
    "file name": "name",
    "filename": "name",
    "file": "name",
    "name": "name",
    "platform": "platform",
    "version": "version",
}
_REQUIRED = ("date", "time", "size", "name", "platform")
_FIELD_ORDER = ("date", "time", "size", "name", "platform", "version")
_EXPECTED = {
    "date": "a date such as 9/10/99 or 04/22/2000",
    "time": "a time such as 7:00PM, 1:35pm or 11:01a",
    "size": "a size such as 524KB, 254,400 or 800528",
    "name": "a file name such as Base.dll",
    "platform": "a platform such as I386, Intel, x86 or Alpha",
    "version": "a version such as 1.2.0.0, or nothing",
}

_SENTENCE = re.compile(
    r"(?:should\s+have\s+)?the\s+following\s+file\s+attributes(?P<later>\s*,?\s*\(?\s*or\s+later\)?)?",
    re.IGNORECASE,
)
_RULE = re.compile(r"\s*[-=_]{5,}\s*")
_HEADING_RULE = re.compile(r"\s*={3,}\s*")
_NOTE = re.compile(r"\s*notes?\s*:", re.IGNORECASE)
_HEADER_LABEL = re.compile(r"file[ ]?name|\S+", re.IGNORECASE)
_TIME_TOKEN = re.compile(r"\d{1,2}:\d{2}(:\d{2})?")
_MERIDIEM = re.compile(r"[ap]\.?(m\.?)?", re.IGNORECASE)
_NUMBER_TOKEN = re.compile(r"\d[\d,]*")
_UNIT = re.compile(r"kb|k|bytes|b", re.IGNORECASE)
_ARTICLE_LINE = re.compile(r"\s*Article:\s*(?P<kb>[QK]B?\d{5,7})\b", re.IGNORECASE)
_TITLE_PREFIX = re.compile(r"\s*(?P<kb>[QK]B?\d{5,7})\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class _Column:
    field: str
    label: str
    start: int  # display columns (tabs expanded), 0-based
    end: int


@dataclass(frozen=True)
class _Cell:
    text: str  # as the article spells it
    start: int  # display columns, for aligning with the header
    end: int
    column: int  # 1-based character column in the article's line, for error messages


@dataclass(frozen=True)
class _Row:
    line: int
    text: str
    cells: dict[str, _Cell]


@dataclass(frozen=True)
class _Table:
    sentence: str
    or_later: bool
    header_line: int
    columns: list[_Column]
    rows: list[_Row]


# --- public API ---------------------------------------------------------------------


def import_article(path: Path) -> ImportedManifest:
    """Read an article file (Markdown with front matter, or plain text) and import its table."""
    path = Path(path)
    raw = read_input(path, noun="article", expected="a KB article text file", error=ArticleError)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Articles saved from the old KB CDs and web pages are Windows-1252, not UTF-8.
        text = raw.decode("cp1252", errors="replace")
    return parse_article(text, str(path))


def parse_article(text: str, source: str) -> ImportedManifest:
    """Import the file-attribute table of an article's text.

    `source` is the article's path as the user named it: errors point at it, and the
    manifest's `source:` is its file name.
    """
    lines = text.lstrip("\ufeff").splitlines()
    table = _find_table(lines, source)
    kb = _article_kb(lines, source)
    title = _article_title(lines)
    entries = [_entry(row, table, source) for row in table.rows]
    _check_duplicates(entries, table.rows, source)
    manifest = Manifest(kb=kb, title=title, source=_file_name(source),
                        rule="or-later" if table.or_later else "exact", files=entries)
    text_out = _render_yaml(manifest, table)
    _check_round_trip(text_out, manifest, source)
    return ImportedManifest(manifest=manifest, yaml=text_out, table_line=table.header_line)


# --- finding the table ----------------------------------------------------------------


def _find_table(lines: list[str], source: str) -> _Table:
    tables = [_read_table(lines, end_line, sentence, or_later, source)
              for sentence, or_later, end_line in _sentences(lines)]
    if not tables:
        orphan = _orphan_header(lines)
        if orphan is not None:
            raise NoTableError(
                "this looks like a file-attribute table, but no sentence before it says \"should have the "
                "following file attributes\" (exact) or \"... or later\" (minimums), so the rule is unknown",
                Location(source, orphan),
            )
        raise NoTableError(
            f"no file-attribute table found in the article's {len(lines)} lines: expected a sentence such as "
            "\"should have the following file attributes or later:\" followed by a header row "
            "(Date Time Size File name Platform) and a dashed rule",
            Location(source, max(len(lines), 1)),
        )
    if len(tables) > 1:
        # Importing only the first of several tables (per language, per service pack) would
        # quietly drop files; the operator has to split the article.
        where = ", ".join(str(t.header_line) for t in tables)
        raise NoTableError(
            f"the article has {len(tables)} file-attribute tables (header rows at lines {where}); "
            "one manifest holds one table: copy the article and keep the table you mean",
            Location(source, tables[1].header_line),
        )
    return tables[0]


def _orphan_header(lines: list[str]) -> int | None:
    """The 1-based line of a Date/Time/Size/File name header over a dashed rule, if any."""
    for i in range(len(lines) - 1):
        if _RULE.fullmatch(lines[i + 1]) and lines[i].strip():
            try:
                _header(lines[i], i + 1, "")
            except InputError:
                continue
            return i + 1
    return None


def _sentences(lines: list[str]) -> list[tuple[str, bool, int]]:
    """Each "following file attributes" sentence, whether it says "or later", and the
    0-based line it ends on.

    Articles wrap the sentence anywhere ("attributes or\\nlater:"), so it is matched on
    the text joined with single spaces and mapped back to lines.
    """
    joined, starts = _join(lines)
    found = []
    for m in _SENTENCE.finditer(joined):
        end = m.end() - 1
        line = bisect.bisect_right(starts, end) - 1
        found.append((" ".join(m.group(0).split()), m.group("later") is not None, line))
    return found


def _join(lines: list[str]) -> tuple[str, list[int]]:
    parts, starts, pos = [], [], 0
    for line in lines:
        piece = " ".join(line.split())
        starts.append(pos)
        parts.append(piece)
        pos += len(piece) + 1
    return " ".join(parts), starts


def _read_table(lines: list[str], sentence_line: int, sentence: str, or_later: bool, source: str) -> _Table:
    i = _skip_blank(lines, sentence_line + 1)
    if i >= len(lines):
        raise NoTableError("the article ends after the file-attribute sentence; expected the table's header row",
                           Location(source, sentence_line + 1))
    columns = _header(lines[i], i + 1, source)
    header_line = i + 1
    i += 1
    if i < len(lines) and _RULE.fullmatch(lines[i]):
        i += 1
    i = _skip_blank(lines, i)
    rows = []
    while i < len(lines) and not _ends_table(lines, i):
        rows.append(_row(lines[i], i + 1, columns, source))
        i += 1
    if not rows:
        raise NoTableError(f"the file-attribute table (header at line {header_line}) has no rows",
                           Location(source, i + 1 if i < len(lines) else header_line))
    return _Table(sentence, or_later, header_line, columns, rows)


def _skip_blank(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _ends_table(lines: list[str], i: int) -> bool:
    line = lines[i]
    if not line.strip() or _NOTE.match(line) or _RULE.fullmatch(line) or line.lstrip().startswith("{%"):
        return True
    # the next section's title, underlined with ===== (STATUS, MORE INFORMATION)
    return i + 1 < len(lines) and _HEADING_RULE.fullmatch(lines[i + 1]) is not None


def _header(line: str, lineno: int, source: str) -> list[_Column]:
    expanded = line.expandtabs(8)
    columns: list[_Column] = []
    for m in _HEADER_LABEL.finditer(expanded):
        label = m.group(0)
        field = _LABELS.get(" ".join(label.split()).casefold())
        if field is None:
            raise NoTableError(
                f"expected the table's header row after the file-attribute sentence, with the columns Date, Time, "
                f"Size, File name, Platform and optionally Version; found {label!r} in {line.strip()!r}",
                Location(source, lineno, _raw_column(line, m.start())),
            )
        if any(c.field == field for c in columns):
            raise TableRowError(f"the header names the {field} column twice ({line.strip()!r})",
                                Location(source, lineno, _raw_column(line, m.start())))
        columns.append(_Column(field, label, m.start(), m.end()))
    missing = [f for f in _REQUIRED if not any(c.field == f for c in columns)]
    if missing:
        raise NoTableError(
            f"the table's header {line.strip()!r} has no {', '.join(_label(f) for f in missing)} column; "
            "a manifest needs Date, Time, Size, File name and Platform",
            Location(source, lineno),
        )
    return columns


def _label(field: str) -> str:
    return {"name": "File name"}.get(field, field.capitalize())


def _raw_column(line: str, display_col: int) -> int:
    """The 1-based character column of a display column (tabs expanded) in the raw line."""
    for i in range(len(line) + 1):
        if len(line[:i].expandtabs(8)) >= display_col:
            return i + 1
    return len(line) + 1


# --- reading rows ---------------------------------------------------------------------


def _row(line: str, lineno: int, columns: list[_Column], source: str) -> _Row:
    cells = _cells(line)
    if len(cells) > len(columns):
        raise TableRowError(
            f"expected a table row with {len(columns)} values ({' '.join(c.label for c in columns)}), "
            f"found {len(cells)}: {line.strip()!r}",
            Location(source, lineno, cells[0].column),
        )
    # An empty required cell is reported by _entry, after the cells that are there: a
    # line of prose is better described by its first word than by its missing Platform.
    return _Row(lineno, line, _align(cells, columns))


def _cells(line: str) -> list[_Cell]:
    """The row's values; a time and its AM/PM, or a number and its unit, make one value."""
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", line)]
    merged: list[tuple[int, int]] = []
    for start, end in tokens:
        if merged and _belongs_to_previous(line[merged[-1][0]:merged[-1][1]], line[start:end]):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [
        _Cell(line[s:e], len(line[:s].expandtabs(8)), len(line[:e].expandtabs(8)), s + 1)
        for s, e in merged
    ]


def _belongs_to_previous(previous: str, token: str) -> bool:
    return bool(
        (_TIME_TOKEN.fullmatch(previous) and _MERIDIEM.fullmatch(token))
        or (_NUMBER_TOKEN.fullmatch(previous) and _UNIT.fullmatch(token))
    )


def _align(cells: list[_Cell], columns: list[_Column]) -> dict[str, _Cell]:
    """Assign cells to columns in order, leaving columns empty where the header says so.

    With as many values as columns the order decides. With fewer, a cell belongs to the
    column whose header span it overlaps most: numbers are right-aligned and may start
    left of their header, so spans, not starting positions, are compared.
    """
    if len(cells) == len(columns):
        return {col.field: cell for col, cell in zip(columns, cells)}
    spans = [(c.start, columns[k + 1].start if k + 1 < len(columns) else 1 << 30) for k, c in enumerate(columns)]
    n, m = len(cells), len(columns)
    neg = float("-inf")
    # best[i][j]: best score placing the first i cells into the first j columns
    best = [[neg] * (m + 1) for _ in range(n + 1)]
    took = [[False] * (m + 1) for _ in range(n + 1)]
    for j in range(m + 1):
        best[0][j] = 0.0
    for i in range(1, n + 1):
        for j in range(i, m + 1):
            skip = best[i][j - 1]
            take = best[i - 1][j - 1] + _fit(cells[i - 1], spans[j - 1])
            best[i][j], took[i][j] = (take, True) if take >= skip else (skip, False)
    out: dict[str, _Cell] = {}
    i, j = n, m
    while i > 0:
        if took[i][j]:
            out[columns[j - 1].field] = cells[i - 1]
            i -= 1
        j -= 1
    return out


def _fit(cell: _Cell, span: tuple[int, int]) -> float:
    overlap = min(cell.end, span[1]) - max(cell.start, span[0])
    return float(overlap) if overlap > 0 else float(overlap) - 1.0  # a gap counts against


def _entry(row: _Row, table: _Table, source: str) -> FileEntry:
    raw = {field: cell.text for field, cell in row.cells.items()}
    try:
        return FileEntry.model_validate(raw)
    except ValidationError as exc:
        # pydantic reports in the model's field order; the reader scans the row left to right.
        err = min(exc.errors(), key=lambda e: _error_column(row, table, e))
        field = str(err["loc"][0]) if err["loc"] else "name"
        label = next((c.label for c in table.columns if c.field == field), field)
        where = Location(source, row.line, _error_column(row, table, err))
        if err["type"] == "missing":
            raise TableRowError(f"row {table.rows.index(row) + 1} of the file-attribute table: the {label} cell "
                                f"is empty; expected {_EXPECTED[field]} under {label!r}: {row.text.strip()!r}",
                                where) from None
        msg = re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
        raise TableRowError(f"row {table.rows.index(row) + 1} of the file-attribute table, column {label}: {msg} "
                            f"(expected {_EXPECTED.get(field, 'a value')})", where) from None


def _error_column(row: _Row, table: _Table, err: dict) -> int:
    """The 1-based column of the failing cell, or of its header when the cell is empty."""
    field = str(err["loc"][0]) if err["loc"] else ""
    if field in row.cells:
        return row.cells[field].column
    header = next((c for c in table.columns if c.field == field), None)
    return _raw_column(row.text, header.start) if header else 1


def _check_duplicates(entries: list[FileEntry], rows: list[_Row], source: str) -> None:
    seen: dict[tuple[str, str], int] = {}
    for entry, row in zip(entries, rows):
        first = seen.setdefault(entry.key, row.line)
        if first != row.line:
            raise TableRowError(
                f"{entry.describe()} is listed twice (first at line {first}); a manifest lists each file once "
                "per platform",
                Location(source, row.line),
            )


# --- article metadata -----------------------------------------------------------------


def _front_matter(lines: list[str]) -> list[str]:
    if not lines or lines[0].strip() != "---":
        return []
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return lines[1:i]
    return []


def _article_title(lines: list[str]) -> str | None:
    """The title line, without its "Q241656: " prefix; Jekyll pages escape HTML (&gt;)."""
    title = None
    for line in _front_matter(lines):
        if line.startswith("title:"):
            value = line[len("title:"):].strip()
            try:
                loaded = yaml.safe_load(value) if value else None
            except yaml.YAMLError:
                loaded = value
            title = str(loaded) if loaded is not None else None
            break
    if title is None:
        title = next((line.lstrip("#").strip() for line in lines if re.match(r"#{1,6}\s", line)), None)
    if not title:
        return None
    return html.unescape(_TITLE_PREFIX.sub("", title, count=1)).strip() or None


def _article_kb(lines: list[str], source: str) -> str:
    """The article number: its "Article:" line, else the title's prefix, else the file name."""
    for line in lines:
        m = _ARTICLE_LINE.match(line)
        if m:
            return m.group("kb").upper()
    for candidate in [*(l for l in _front_matter(lines) if l.startswith("title:")), *lines[:20], _file_name(source)]:
        m = re.search(r"\b([QK]B?\d{5,7})\b", candidate, re.IGNORECASE)
        if m:
            return m.group(1).upper()
    raise ArticleError("cannot tell the article number: expected an \"Article: Q123456\" line or a title such as "
                       "\"Q241656: ...\"", Location(source))


def _file_name(source: str) -> str:
    # Accept both separators: an article path may have been typed on Windows.
    return PurePath(PureWindowsPath(source).name).name


# --- writing the manifest -------------------------------------------------------------


def _render_yaml(manifest: Manifest, table: _Table) -> str:
    sizes = {row.cells["size"].text for row in table.rows}
    kb_sizes = any(re.search(r"[kK]", s) for s in sizes)
    byte_sizes = any(not re.search(r"[kK]", s) for s in sizes)
    size_note = {
        (True, False): "Sizes are the article's rounded kilobytes (Explorer rounds up)",
        (False, True): "Sizes are exact byte counts",
        (True, True): "Sizes in KB are rounded up as Explorer does; sizes in bytes are exact",
    }[(kb_sizes, byte_sizes)]
    out = [
        f"# File attributes of the {manifest.kb} hotfix, as the article's table lists them",
        f"# (imported from {manifest.source}, table header at line {table.header_line}).",
        f"# {size_note}.",
        "# Dates and times are wall-clock times on the site's servers: the site's local time",
        "# (its `timezone:` in sites.yaml).",
        f"kb: {manifest.kb}",
    ]
    if manifest.title is not None:
        out.append(f"title: {json.dumps(manifest.title)}")
    out.append(f"source: {_scalar(manifest.source or '')}")
    out.append(f"rule: {manifest.rule}   # {json.dumps(table.sentence)}")
    out.append("files:")
    out.append(f"  # {' '.join(c.label for c in table.columns)}")
    out.extend(_flow_rows(table))
    return "\n".join(out) + "\n"


def _flow_rows(table: _Table) -> list[str]:
    """One flow mapping per row, padded so the columns line up like the article's."""
    rows = [
        [f"{field}: {_scalar(row.cells[field].text, allow_int=field == 'size')}"
         for field in _FIELD_ORDER if field in row.cells]
        for row in table.rows
    ]
    width: dict[int, int] = {}
    for items in rows:
        for k, item in enumerate(items[:-1]):
            width[k] = max(width.get(k, 0), len(item) + 1)
    lines = []
    for items in rows:
        parts = [(item + ",").ljust(width[k]) for k, item in enumerate(items[:-1])] + [items[-1]]
        lines.append("  - {" + " ".join(parts) + "}")
    return lines


def _scalar(text: str, allow_int: bool = False) -> str:
    """`text` as a plain YAML scalar when it reads back unchanged, else double-quoted.

    A plain `254,400` would split the flow mapping at its comma and a plain `1.2` would
    load as a number, so the test is the manifest loader itself. Byte sizes stay plain:
    `800528` loads as the integer 800528, which is the same size.
    """
    try:
        data = parse_yaml(f"{{k: {text}}}\n", Path("<scalar>")).data
    except InputError:
        data = None
    value = data.get("k") if isinstance(data, dict) and len(data) == 1 else None
    if value == text or (allow_int and isinstance(value, int) and not isinstance(value, bool) and str(value) == text):
        return text
    return json.dumps(text)


def _check_round_trip(text: str, manifest: Manifest, source: str) -> None:
    # The YAML is what gets reviewed and committed; it must load to exactly what we parsed.
    loaded = validate(parse_yaml(text, Path(_file_name(source))), Manifest)
    if loaded != manifest:  # pragma: no cover - a bug in _render_yaml, not in the article
        raise ArticleError("internal error: the generated manifest does not load back to the article's table; "
                           "please report this with the article", Location(source))
