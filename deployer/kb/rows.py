"""Reading one table row into values.

Rows were typed by hand, so positions under the header are only a hint: a Version header
may sit over the size numbers, numbers are right-aligned and start left of their header,
cells are empty. A row is read by what its values are, in the header's order: the date
first, then a time if there is one, the version and size cells before the file name
(whichever the header lists there), and after it the platform (and a trailing Version).
Positions decide only what the values cannot (one number under "Version  Size").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..sms.platforms import Platform
from . import values
from .tables import Column, RawRow, clean
from .values import Unreadable, Value


@dataclass
class ReadRow:
    line: int
    text: str  # the article's line, stripped
    cells: dict[str, Value] = field(default_factory=dict)  # date, time, size, name, platform, version
    notes: list[str] = field(default_factory=list)  # what a reviewer may want to know (normalised values)
    problem: str | None = None  # why the row cannot be read exactly: it is flagged, not imported
    review: str | None = None  # read, with a guess a person must confirm: imported with review:


@dataclass(frozen=True)
class _Tok:
    text: str
    start: int
    end: int


_MERIDIEM = re.compile(r"[ap]\.?(?:m\.?)?", re.IGNORECASE)
_UNIT = re.compile(r"kb|k|mb|m|bytes|byte|b", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9][0-9,.]*")
_TIME_ONLY = re.compile(r"[0-9]{1,2}[:.][0-9]{2}(?::[0-9]{2})?|xx:xx", re.IGNORECASE)


def tokens(line: str) -> list[_Tok]:
    """Whitespace-separated values, with the pieces that belong together merged:
    `October 6, 2000`, `4:14 pm`, `64  KB`, `24,426 bytes`, `1.2 (build 786)`."""
    text = clean(line)
    raw = [_Tok(m.group(0), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    out: list[_Tok] = []
    k = 0
    while k < len(raw):
        t = raw[k]
        # a date in words: Month D, YYYY
        if k + 2 < len(raw) and values.DATE_TOKEN.fullmatch(f"{t.text} {raw[k + 1].text} {raw[k + 2].text}"):
            out.append(_Tok(text[t.start:raw[k + 2].end], t.start, raw[k + 2].end))
            k += 3
            continue
        if k + 1 < len(raw):
            n = raw[k + 1]
            pair = (_TIME_ONLY.fullmatch(t.text) and _MERIDIEM.fullmatch(n.text)) or \
                   (_NUMBER.fullmatch(t.text) and _UNIT.fullmatch(n.text)) or \
                   (re.fullmatch(r"[0-9][0-9.]*", t.text) and n.text.lower().startswith("(build")) or \
                   (re.fullmatch(r"[0-9][0-9.]*\(build", t.text, re.IGNORECASE) and re.fullmatch(r"[0-9]+\)", n.text))
            if pair:
                end = n.end
                step = 2
                if n.text.lower() == "(build" and k + 2 < len(raw):
                    end, step = raw[k + 2].end, 3
                out.append(_Tok(text[t.start:end], t.start, end))
                k += step
                continue
        out.append(t)
        k += 1
    return out


def read_row(raw: RawRow, columns: list[Column], inherited: Platform | None) -> ReadRow:
    row = ReadRow(raw.lineno, raw.text.strip())
    try:
        _read(row, tokens(raw.text), columns, inherited)
    except Unreadable as exc:
        row.problem = str(exc)
    return row


def _read(row: ReadRow, toks: list[_Tok], columns: list[Column], inherited: Platform | None) -> None:
    fields = [c.field for c in columns] or ["date", "time", "version", "size", "name", "platform"]
    before = [c for c in columns[:fields.index("name") if "name" in fields else 0] if c.field.startswith("other:")]
    # an attribute column (Attr: ----, -a--, RHS) is read past, its value kept as a note; any
    # other unread column before the name makes the row a person's to read
    attrs = bool(before) and all(c.label.casefold().rstrip(".") in _ATTR_LABELS for c in before)
    if before and not attrs:
        raise Unreadable(f"a column deployer does not read ({', '.join(c.label for c in columns if c.field.startswith('other:'))}) "
                         "comes before the file name")
    if not toks:
        raise Unreadable("empty row")
    row.cells["date"] = _note(row, values.read_date(toks[0].text), "date")
    k = 1
    if "time" in fields and k < len(toks) and values.TIME_TOKEN.fullmatch(toks[k].text):
        t = values.read_time(toks[k].text)
        if t is not None:
            row.cells["time"] = _note(row, t, "time")
        else:
            row.notes.append(f"time {toks[k].text!r} in the article: none listed")
        k += 1
    elif "time" in fields and k + 2 < len(toks) and re.fullmatch(r"([01]?[0-9]|2[0-3])[0-5][0-9]", toks[k].text) \
            and not values.is_name(toks[k + 1].text) and not values.is_name(toks[k + 2].text):
        # "1436" where a time belongs, with a version and a size still to come: 14:36, checked by a person
        t = values.read_time(f"{toks[k].text[:-2]}:{toks[k].text[-2:]}")
        row.cells["time"] = t
        row.review = f"time {toks[k].text!r} read as {t.written}"
        k += 1
    name_at = next((j for j in range(k, len(toks)) if values.is_name(toks[j].text) or _in_folder(toks[j].text)), None)
    if name_at is None:
        raise Unreadable("no file name in the row")
    if attrs:
        for t in toks[k:name_at]:
            if _ATTR_VALUE.fullmatch(t.text):
                row.notes.append(f"{before[0].label}: {t.text}")
        toks = [t for j, t in enumerate(toks) if not (k <= j < name_at and _ATTR_VALUE.fullmatch(t.text))]
        name_at = next(j for j in range(k, len(toks)) if values.is_name(toks[j].text) or _in_folder(toks[j].text))
    if _in_folder(toks[name_at].text):  # OS\MSAPPS\Datamap\Data\Us_hiway.dat: the name, its folder a note
        folder, _, base = toks[name_at].text.replace("/", "\\").rpartition("\\")
        row.notes.append(f"Path: {folder}")
        toks = [*toks[:name_at], replace(toks[name_at], text=base), *toks[name_at + 1:]]
    middle = [t for t in toks[k:name_at] if not values.PLACEHOLDER.fullmatch(t.text)]
    name_pos = fields.index("name") if "name" in fields else len(fields)
    mid_fields = [f for f in fields[:name_pos] if f in ("version", "size")]
    _middle(row, middle, mid_fields, columns)
    row.cells["name"] = Value(toks[name_at].text, toks[name_at].text, toks[name_at].text)
    tail = toks[name_at + 1:]
    if any(f.startswith("other:") for f in fields[name_pos + 1:]):
        tail = _drop_other_columns(row, tail, [c for c in columns[name_pos + 1:]])
    tail_fields = [f for f in fields[name_pos + 1:] if f in ("platform", "version", "size")]
    _tail(row, tail, tail_fields, inherited)


_ATTR_LABELS = {"attr", "attrs", "attrib", "attribs", "attribute", "attributes", "attrib(s)"}
_ATTR_VALUE = re.compile(r"(?=.*[-RHSACNrhsacn])[-RHSACNrhsacn]{1,6}")
_FOLDER_NAME = re.compile(r"(?:[\w$~.-]+[\\/])+([^\\/]+)")


def _in_folder(text: str) -> bool:
    """A file name with its folder path (OS\\MSAPPS\\Us_hiway.dat), never a URL or a drive root."""
    m = _FOLDER_NAME.fullmatch(text)
    return m is not None and "//" not in text and values.is_name(m.group(1))


def _drop_other_columns(row: ReadRow, tail: list[_Tok], columns: list[Column]) -> list[_Tok]:
    """Values under columns deployer does not use ("Path"), by position: kept as a note."""
    keep = []
    for t in tail:
        col = None
        for c in columns:  # the last column that starts at or before the value (2 columns of slack)
            if c.start <= t.start + 2:
                col = c
        if col is not None and col.field.startswith("other:"):
            row.notes.append(f"{col.label}: {t.text}")
        else:
            keep.append(t)
    return keep


def _note(row: ReadRow, v: Value, what: str) -> Value:
    if v.normalised:
        row.notes.append(f"{what} {v.article!r} in the article")
    return v


def _kind(tok: _Tok) -> str:
    """What a value before the file name is: size, version, or either."""
    text = tok.text
    if re.search(r"[a-z]$", text, re.IGNORECASE) and not text.endswith(")"):
        return "size"  # a unit
    if "(" in text or ":" in text or text.count(".") >= 2:
        return "version"
    if "," in text or re.fullmatch(r"[0-9]+", text):
        return "size"
    return "either"  # 185.760, 4.02


def _middle(row: ReadRow, middle: list[_Tok], mid_fields: list[str], columns: list[Column]) -> None:
    """The values between the time and the file name: a size, a version, or both."""
    if len(middle) > 2:
        raise Unreadable(f"more values before the file name than a version and a size: "
                         f"{' '.join(t.text for t in middle)!r}")
    assigned: dict[str, _Tok] = {}
    kinds = [_kind(t) for t in middle]
    if len(middle) == 2:
        if sorted(kinds) == ["size", "version"]:
            assigned = {kinds[0]: middle[0], kinds[1]: middle[1]}
        elif "either" in kinds and kinds.count("either") == 1:
            known = next(k for k in kinds if k != "either")
            other = "size" if known == "version" else "version"
            assigned = {kinds[0] if kinds[0] != "either" else other: middle[0],
                        kinds[1] if kinds[1] != "either" else other: middle[1]}
        elif mid_fields == ["version", "size"] or mid_fields == ["size", "version"]:
            assigned = dict(zip(mid_fields, middle))
        else:
            raise Unreadable(f"two values before the file name ({middle[0].text!r}, {middle[1].text!r}) "
                             "that cannot be told apart as version and size")
    elif len(middle) == 1:
        kind = kinds[0]
        if kind == "either":
            kind = _by_position(middle[0], columns, mid_fields) or "size"
        assigned[kind] = middle[0]
    if "size" in assigned:
        v = values.read_size(assigned["size"].text)
        if v is not None:
            row.cells["size"] = _note(row, v, "size")
    if "version" in assigned:
        v = values.read_version(assigned["version"].text)
        if v is not None:
            row.cells["version"] = _note(row, v, "version")


def _by_position(tok: _Tok, columns: list[Column], mid_fields: list[str]) -> str | None:
    spans = {c.field: c for c in columns if c.field in mid_fields}
    best, score = None, None
    for fld, c in spans.items():
        overlap = min(tok.end, c.end) - max(tok.start, c.start)
        dist = 0 if overlap > 0 else min(abs(tok.start - c.end), abs(c.start - tok.end))
        s = (overlap if overlap > 0 else -dist)
        if score is None or s > score:
            best, score = fld, s
    return best


def _tail(row: ReadRow, tail: list[_Tok], tail_fields: list[str], inherited: Platform | None) -> None:
    rest = list(tail)
    if rest and "version" in tail_fields and values.VERSION_TOKEN.fullmatch(rest[-1].text):
        # a platform is never dotted numbers: a lone 1.2.0.0 under "Platform  Version" is the version
        v = values.read_version(rest.pop().text)
        if v is not None:
            row.cells["version"] = _note(row, v, "version")
    if rest and "size" in tail_fields and "size" not in row.cells and values.SIZE_TOKEN.fullmatch(rest[0].text):
        v = values.read_size(rest.pop(0).text)
        if v is not None:
            row.cells["size"] = _note(row, v, "size")
    text = " ".join(t.text for t in rest if not values.PLACEHOLDER.fullmatch(t.text))
    if "platform" not in tail_fields and text:
        # No Platform column: "Mstsc.exe (32-bit)" qualifies the name
        row.notes.append(f"{text!r} after the file name")
        text = ""
    if not text and inherited is not None and "platform" in tail_fields:
        row.cells["platform"] = Value(inherited.article_name, "", inherited)
        row.notes.append(f"platform cell blank: {inherited.article_name}, from the heading or the rows above")
        return
    v, note = values.read_platform(text)
    row.cells["platform"] = v
    if note:
        row.notes.append(note)
