"""An article's tables -> one manifest: every row imported or flagged, never dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ..errors import InputError, Location
from ..model.common import validate
from ..model.manifest import FileEntry, Manifest
from ..model.yamlsrc import parse_yaml
from ..report.escape import UNSAFE, blank_controls, visible
from . import relations, tables as tbl
from . import values, writer
from .article import Article, NoTableError, parse_article_text, read_article
from .rows import ReadRow, read_row
from .stray import stray_rows

_ORDER = ("date", "time", "size", "name", "platform", "version")
ORPHAN_TITLE = "Rows outside any table (no header row above them)"
STRAY_TITLE = "Lines that look like rows (a date, a file name, a size or time) in no table deployer could read"
STRAY_REVIEW = ("looks like a row (a date, a file name, a size or a time), but no table deployer reads holds it: "
                "check it against the article and write it in by hand")
ORPHAN_REVIEW = "no header row above it: its columns were read by what the values are"


@dataclass(frozen=True)
class Flagged:
    line: int
    reason: str
    text: str


@dataclass
class ImportResult:
    article: Article
    yaml: str
    manifest: Manifest | None  # None when not one row could be read exactly
    rows: int  # rows found in the article's tables (and outside them)
    imported: int  # read exactly, written as entries without review:
    flagged: list[Flagged] = field(default_factory=list)  # commented out, or entries with review:
    table_lines: list[int] = field(default_factory=list)  # header rows, 1-based

    @property
    def review(self) -> int:
        return len(self.flagged)

    @property
    def table_line(self) -> int | None:
        return self.table_lines[0] if self.table_lines else None


def import_article(path: Path) -> ImportResult:
    return import_text(read_article(Path(path)))


def parse_article(text: str, source: str) -> ImportResult:
    return import_text(parse_article_text(text, source))


def import_text(article: Article) -> ImportResult:
    # Tables are found in the lines with their control characters as spaces, so that a row with
    # an ESC or a NUL is still seen as a row; that row is then flagged (_entry), never dropped.
    dirty = {k + 1: line for k, line in enumerate(article.lines) if UNSAFE.search(line)}
    found = tbl.find_tables([blank_controls(line) for line in article.lines] if dirty else article.lines)
    taken = {raw.lineno for t in found for part in t.parts for raw in part.rows}
    strays = stray_rows(article.lines, taken)
    if not found and not strays:
        raise NoTableError(
            f"no file-attribute table in the article's {len(article.lines)} lines: expected a header row such as "
            "\"Date  Time  Size  File name  Platform\" followed by rows that start with a date",
            Location(article.source, max(len(article.lines), 1)))
    groups: list[writer.OutGroup] = []
    entries: list[FileEntry] = []
    flagged: list[Flagged] = []
    total = imported = 0
    for table in found:
        header = None
        if table.header_line is not None:
            header = " ".join(tbl.clean(article.lines[table.header_line - 1]).split()) + \
                f"   (article line {table.header_line})"
        for n, part in enumerate(table.parts):
            if part.title is not None:
                title, line = part.title, part.title_line
            elif table.heading is not None:
                title, line = table.heading, table.heading_line
            else:
                title, line = table.intro, table.intro_line or table.header_line
            if table.header_line is None:
                title, line = ORPHAN_TITLE, part.rows[0].lineno if part.rows else None
            # A blank Platform cell: the sub-heading's platform, else the section's, else the block's
            inherited = next((p for p in (values.platform_in(t) for t in (part.title, table.heading, table.intro) if t)
                              if p is not None), None)
            out = writer.OutGroup(title, line, [], header=header if n == 0 or part.title else None,
                                  intro=table.intro if n == 0 and title != table.intro and table.intro else None)
            seen: dict[tuple[str, str], int] = {}
            block_platform: dict[int, object] = {}
            for raw in part.rows:
                total += 1
                row = read_row(raw, table.columns, inherited or block_platform.get(raw.block))
                if row.problem is None and "platform" in row.cells and row.cells["platform"].article:
                    block_platform[raw.block] = row.cells["platform"].parsed  # the nearest row above
                entry, out_row = _entry(row, orphan=table.header_line is None, seen=seen, raw=dirty.get(row.line))
                out.rows.append(out_row)
                if entry is None:
                    flagged.append(Flagged(row.line, out_row.problem or "", out_row.text))
                    continue
                entries.append(entry)
                if entry.review:
                    flagged.append(Flagged(row.line, entry.review, row.text))
                else:
                    imported += 1
            groups.append(out)
    if strays:  # rows of a shape no table took: flagged, never dropped (stray.py)
        total += len(strays)
        out = writer.OutGroup(STRAY_TITLE, strays[0], [])
        for k in strays:
            out.rows.append(writer.OutRow(k, problem=STRAY_REVIEW, text=article.lines[k - 1]))
            flagged.append(Flagged(k, STRAY_REVIEW, article.lines[k - 1]))
        groups.append(out)
    real = [t for t in found if t.header_line is not None]
    flat = len(groups) == 1 and len(real) == 1 and real[0].parts and real[0].parts[0].title is None
    rule, rule_note = _rule(real)
    head, meta = _head(article, real, rule, rule_note, total, imported, len(flagged))
    text = writer.render(head, meta, groups, flat=bool(flat))
    manifest = _check(text, article, len(entries)) if entries else None
    return ImportResult(article, text, manifest, total, imported, flagged,
                        [t.header_line for t in real if t.header_line])


def _entry(row: ReadRow, *, orphan: bool, seen: dict, raw: str | None = None
           ) -> tuple[FileEntry | None, writer.OutRow]:
    out = writer.OutRow(row.line, text=raw if raw is not None else row.text)
    if raw is not None and (bad := UNSAFE.search(raw)):
        # a control character (ESC, NUL, BEL...) has no place in a table row: the row may have
        # been damaged, and str.split() would silently take some (\x1c-\x1f) for spaces
        row.problem = (f"the line holds the control character {visible(bad.group())} at column {bad.start() + 1}; "
                       "check the row against the article and write it in by hand")
    if row.problem is None:
        data = {f: row.cells[f].written for f in _ORDER if f in row.cells}
        data.setdefault("time", None)
        data.setdefault("size", None)
        review = [r for r in (row.review, ORPHAN_REVIEW if orphan else None) if r]
        if review:
            data["review"] = "; ".join(review)
        data["line"] = row.line
        try:
            entry = FileEntry.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "row"
            row.problem = f"{where}: {err['msg'].removeprefix('Value error, ')}"
        else:
            first = seen.setdefault(entry.key, row.line)
            if first != row.line and entry.platform.key != "unknown":
                row.problem = f"{entry.describe()} is listed twice in this table (first at line {first})"
            else:
                out.items = [f"{k}: {_yaml_value(k, data[k])}" for k in (*_ORDER, "review", "line") if k in data]
                out.comment = "; ".join(row.notes)
                return entry, out
    out.problem = row.problem
    return None, out


def _yaml_value(key: str, value: object) -> str:
    if value is None:
        return "null"
    if key == "line":
        return str(value)
    return writer.scalar(str(value), allow_int=key == "size")


def _rule(tables: list[tbl.Table]) -> tuple[str, str]:
    # A table with no sentence of its own (a second header right under the first table's
    # rows, a sub-heading) goes by the sentences the article does have.
    said = [t.or_later for t in tables if t.or_later is not None]
    if not said:
        return "exact", "no sentence before the table says \"or later\": exact until a person checks"
    if all(said):
        return "or-later", "the article says \"... or later\""
    if any(said):
        return "exact", "some tables say \"or later\", others do not: exact is the safe reading; check the article"
    return "exact", "the article lists these attributes without \"or later\""


def _head(article: Article, real: list[tbl.Table], rule: str, rule_note: str, total: int, imported: int,
          review: int) -> tuple[list[str], list[str]]:
    where = ", ".join(str(t.header_line) for t in real) or "none"
    head = [
        f"# File attributes of the {article.kb} hotfix, as the article's tables list them",
        f"# (imported from {article.file_name}; table header rows at lines {where}).",
        f"# {total} rows: {imported} imported, {review} need review"
        + (" (marked REVIEW below, or with review:)." if review else "."),
        "# Dates and times are wall-clock times on the site's servers: the site's local time",
        "# (its `timezone:` in sites.yaml). `line:` is the article line of each row.",
    ]
    meta = [f"kb: {article.kb}"]
    if article.title is not None:
        meta.append(f"title: {writer.quoted(article.title)}")
    meta.append(f"source: {writer.scalar(article.file_name)}")
    meta.append(f"rule: {rule}   # {rule_note}")
    meta.extend(relations.meta_lines(article.lines, article.kb))
    return head, meta


def _check(text: str, article: Article, count: int) -> Manifest:
    # The YAML is what gets reviewed and committed: it must load, with every entry we read.
    try:
        loaded = validate(parse_yaml(text, Path(article.file_name)), Manifest)
    except InputError as exc:  # pragma: no cover - a bug in the writer, not in the article
        raise InputError(f"internal error: the manifest written for this article does not load ({exc}); "
                         "please report this with the article", Location(article.source)) from None
    if len(loaded.files) != count:  # pragma: no cover
        raise InputError("internal error: the manifest written for this article lost rows; please report this "
                         "with the article", Location(article.source))
    return loaded
