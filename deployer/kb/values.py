"""One table cell at a time: what a token is (date, time, size, version, platform), and
how to write it in a manifest.

A value is kept as the article spells it when the manifest loader reads it back to the
same thing (so a reviewer can put the two side by side); it is normalised only where the
loader could not read the article's spelling (`24/05/00` day first, `22.36`, `185.760`).
What cannot be read exactly raises Unreadable with the reason, and the row is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..model.manifest import UNKNOWN, parse_platform as manifest_platform, parse_version as manifest_version
from ..sms import attrs
from ..sms.platforms import Platform


class Unreadable(ValueError):
    """A cell that cannot be read exactly; the message says why, for the reviewer."""


@dataclass(frozen=True)
class Value:
    written: str  # what goes into the manifest (the article's spelling, or the normalised form)
    article: str  # the article's spelling
    parsed: object

    @property
    def normalised(self) -> bool:
        return " ".join(self.written.split()) != " ".join(self.article.split())


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
DATE_TOKEN = re.compile(
    rf"[0-9]{{1,4}}[/.-][0-9]{{1,2}}[/.-][0-9]{{1,4}}|[0-9]{{1,2}}[- ]{_MONTH}[- ][0-9]{{2,4}}|{_MONTH}-[0-9]{{1,2}}-[0-9]{{2,4}}"
    rf"|{_MONTH}\s+[0-9]{{1,2}},?\s+[0-9]{{4}}",
    re.IGNORECASE,
)
# What a date cell looks like even when it is wrong (12/20/199, 24/05/00): for finding rows.
DATE_LIKE = re.compile(rf"(?:[0-9]{{1,4}}[/.-][0-9]{{1,2}}[/.-][0-9]{{1,4}}|[0-9]{{1,2}}-{_MONTH}-[0-9]{{2,4}}|{_MONTH}-[0-9]{{1,2}}-[0-9]{{2,4}}"
                       rf"|{_MONTH}\s+[0-9]{{1,2}},)", re.IGNORECASE)
# A line that starts like a row without starting with a date (a blank or mangled date cell)
CELLS_START = re.compile(rf"(?:[0-9]|{_MONTH}\b|xx)", re.IGNORECASE)
TIME_TOKEN = re.compile(r"(?:[0-9]{1,2}[:.][0-9]{2}(?::[0-9]{2})?|xx:xx|\?\?:\?\?)(?:\s*[ap]\.?(?:m\.?)?)?", re.IGNORECASE)
SIZE_TOKEN = re.compile(r"[0-9][0-9,.]*\s*(?:kb|k|mb|m|bytes|byte|b)?", re.IGNORECASE)
VERSION_TOKEN = re.compile(r"[0-9]{1,5}(?:[.:][0-9]{1,5}){1,3}(?:\s*\(\s*build\s+[0-9]+\s*\))?|[0-9]+\s*\(\s*build\s+[0-9]+\s*\)",
                           re.IGNORECASE)
PLACEHOLDER = re.compile(r"-+|n/?a|none|\*", re.IGNORECASE)


# --- dates ------------------------------------------------------------------------------


def _date_as(spelled: str, text: str) -> "Value | None":
    """`text` read as the date `spelled` (its parts reordered), or None when that is no date."""
    try:
        d = attrs.parse_date(spelled)
    except attrs.AttrError:
        return None
    return Value(d.isoformat(), text, d)


def read_date(text: str) -> Value:
    text = " ".join(text.split())
    try:
        return Value(text, text, attrs.parse_date(text))
    except attrs.AttrError as exc:
        problem = str(exc)
    # Day first (24/05/00, 29/03/2000): only when the first number cannot be a month.
    m = re.fullmatch(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{2}|[0-9]{4})", text)
    if m and int(m.group(1)) > 12 and 1 <= int(m.group(3)) <= 12:
        v = _date_as(f"{m.group(3)}/{m.group(1)}/{m.group(4)}", text)
        if v is not None:
            return v
    m = re.fullmatch(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})", text)
    if m:  # 1999/10/02: year first, then month and day as in ISO
        v = _date_as(f"{m.group(1)}-{m.group(2)}-{m.group(3)}", text)
        if v is not None:
            return v
    m = re.fullmatch(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{2}|[0-9]{4})", text)
    if m:
        raise Unreadable(f"date {text!r} has dots: month.day or day.month cannot be told apart")
    raise Unreadable(problem)


# --- times ------------------------------------------------------------------------------


def read_time(text: str) -> Value | None:
    """None: the article gives no time (a blank cell or a placeholder such as xx:xx)."""
    text = " ".join(text.split())
    if not text or re.fullmatch(r"(?:xx|\?\?):(?:xx|\?\?)(?:\s*[ap]\.?m?\.?)?|-+", text, re.IGNORECASE):
        return None
    try:
        return Value(text, text, attrs.parse_time(text))
    except attrs.AttrError as exc:
        problem = str(exc)
    m = re.fullmatch(r"([0-9]{1,2})\.([0-9]{2})(\s*[ap]\.?(?:m\.?)?)?", text, re.IGNORECASE)
    if m:  # 22.36: a dot for the colon
        fixed = f"{m.group(1)}:{m.group(2)}{(m.group(3) or '').strip()}"
        try:
            return Value(fixed, text, attrs.parse_time(fixed))
        except attrs.AttrError as exc:
            problem = str(exc)
    raise Unreadable(problem)


# --- sizes ------------------------------------------------------------------------------


def read_size(text: str) -> Value | None:
    """None: a blank size cell."""
    text = " ".join(text.split())
    if not text or PLACEHOLDER.fullmatch(text):
        return None
    m = re.fullmatch(r"([0-9]{1,3}(?:\.[0-9]{3})+)", text)
    if m:  # 185.760: a byte count cannot have a fraction, so the dots group thousands
        fixed = m.group(1).replace(".", ",")
        return Value(fixed, text, attrs.parse_size(fixed))
    m = re.fullmatch(r"([0-9]+)\.([0-9]{3})\s*(kb|k)", text, re.IGNORECASE)
    if m:
        raise Unreadable(f"size {text!r}: {m.group(1)}.{m.group(2)} KB or {m.group(1)},{m.group(2)} KB?")
    m = re.fullmatch(r"[0-9]+,[0-9]{1,2}\s*(kb|k|mb|m)", text, re.IGNORECASE)
    if m:
        raise Unreadable(f"size {text!r}: a decimal comma or a misplaced thousands separator?")
    try:
        return Value(text, text, attrs.parse_size(text))
    except attrs.AttrError as exc:
        raise Unreadable(str(exc)) from None


# --- versions ---------------------------------------------------------------------------


def read_version(text: str) -> Value | None:
    text = " ".join(text.split())
    if not text or PLACEHOLDER.fullmatch(text):
        return None
    m = re.fullmatch(r"([0-9][0-9.]*)\s*\(\s*build\s+([0-9]+)\s*\)", text, re.IGNORECASE)
    if m:  # 1.2(build 786): the loader's spelling has a space before the parenthesis
        fixed = f"{m.group(1)} (build {m.group(2)})"
        try:
            return Value(fixed, text, manifest_version(fixed))
        except ValueError:
            pass
    try:
        return Value(text, text, manifest_version(text))
    except ValueError as exc:
        raise Unreadable(str(exc)) from None


# --- platforms --------------------------------------------------------------------------

_PLATFORM_WORDS = {
    "x86": "x86", "i386": "x86", "ix86": "x86", "intel": "x86", "386": "x86", "x86-based": "x86",
    "intel-based": "x86", "alpha": "alpha", "axp": "alpha", "alpha-based": "alpha", "mips": "mips", "mac": "mac",
}


def read_platform(text: str) -> tuple[Value, str | None]:
    """The platform, and a note when the article's text names none SMS knows."""
    raw = " ".join(text.split())
    if not raw:
        return Value("unknown", "", UNKNOWN), None
    try:
        return Value(raw, raw, manifest_platform(raw)), None
    except ValueError:
        pass
    return Value("unknown", raw, UNKNOWN), f"platform {raw!r} is not one SMS has a folder for"


def platform_in(text: str) -> Platform | None:
    """The one CPU platform a heading names ("Alpha-based computers:", "x86 files"), if exactly one."""
    found = {_PLATFORM_WORDS[w] for w in re.findall(r"[a-z0-9-]+", text.casefold()) if w in _PLATFORM_WORDS}
    if len(found) != 1:
        return None
    return manifest_platform(found.pop())


# --- names ------------------------------------------------------------------------------

NAME_TOKEN = re.compile(r"[^\s\\/:*?\"<>|]*[A-Za-z_~$-][^\s\\/:*?\"<>|]*\.[A-Za-z0-9_~$-]{1,8}")


def is_name(token: str) -> bool:
    return bool(NAME_TOKEN.fullmatch(token)) and not VERSION_TOKEN.fullmatch(token)
