"""PCMDUMP's text layout (Q123499), read and written byte for byte.

PCMDUMP prints, after an optional console prompt and its banner, `File Name` once and then
each record's fields, one per line: three spaces, the label padded to 16 characters, a
colon, and ` value` (nothing after the colon when the value is empty). Continuations are
indented 21 spaces (Comments' further lines, Reserved's further bytes, a server's `Zone:`,
which PCMDUMP ends with a space); a further server starts with 19 spaces and `: `.
Reserved bytes print 18 to a line.

`parse` refuses anything else with the file and line, what is wrong and what is allowed;
`render(parse(text)) == text` for PCMDUMP's own output (Q123499's sample is the test).
`render(..., decode=True)` is the same layout with the numbers named (`--decode`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ...errors import InputError, InputErrors, Location
from .record import (FLAG_MEANINGS, SERVER_TYPES, PcmFile, PcmRecord, PcmServer, date_value, decode_os,
                     is_calendar_date)

BANNER = ("PCM Instruction File Dump Utility v1.0", "Copyright 1993, 1994 Microsoft Corporation")

FIELDS: tuple[tuple[str, str], ...] = (
    ("PCM Version", "pcm_version"), ("SiteID", "site_id"), ("RequestID", "request_id"),
    ("PackageID", "package_id"), ("JobID", "job_id"), ("Install Flag", "install_flag"),
    ("Install By Date", "install_by_date"), ("Install By Full", "install_by_full"), ("Display Date", "display_date"),
    ("Display Full", "display_full"), ("Expiration Date", "expiration_date"), ("Expiration Full", "expiration_full"),
    ("User Input Flags", "user_input_flags"), ("Operating System", "operating_system"), ("Disk Usage", "disk_usage"),
    ("Run Command", "run_command"), ("WCL Name", "wcl_name"), ("Server(s)", "servers"),
    ("Package Name", "package_name"), ("Comments", "comments"), ("Domain Name", "domain_name"),
    ("Reserved", "reserved"),
)
LABEL_OF = {f: label for label, f in FIELDS}
FIELD_OF = {label.casefold(): f for label, f in FIELDS}
INT_FIELDS = frozenset({"install_flag", "install_by_full", "display_full", "expiration_full", "user_input_flags",
                        "operating_system"})
DATE_FIELDS = frozenset({"install_by_date", "display_date", "expiration_date"})
NOT_SET = "00/00/00 00:00:00"
RESERVED_PER_LINE = 18

_FIELD_LINE = re.compile(r"^ {3}(\S[^:]*?) *:(?: (.*))?$")
_SERVER_MORE = re.compile(r"^ {19}: (.*)$")
_ZONE = re.compile(r"^ {21}Zone: (.*)$")
_CONTINUED = re.compile(r"^ {21}(\S.*)$")
_PROMPT = re.compile(r"^\S.*>\s*pcmdump\b.*$", re.IGNORECASE)
_DATE = re.compile(r"^([0-9][0-9])/([0-9][0-9])/([0-9][0-9]) ([0-9][0-9]):([0-9][0-9]):([0-9][0-9])$")
_SERVER = re.compile(r"^(.*?) Type: ([0-9]+)$")


# --- dates ---------------------------------------------------------------------------------


def date_from_text(text: str) -> str | None:
    """PCMDUMP's MM/DD/YY HH:MM:SS -> YYYY-MM-DD HH:MM:SS (None for 00/00/00 00:00:00)."""
    if text == NOT_SET:
        return None
    m = _DATE.fullmatch(text)
    if not m:
        raise ValueError(f"date {text!r} is not MM/DD/YY HH:MM:SS (or {NOT_SET} for not set)")
    mo, d, y, hh, mm, ss = m.groups()
    year = int(y) + (1900 if int(y) >= 70 else 2000)
    return f"{year:04d}-{mo}-{d} {hh}:{mm}:{ss}"


def date_to_text(iso: str | None) -> str:
    if iso is None:
        return NOT_SET
    y, mo, d = iso[:10].split("-")
    return f"{mo}/{d}/{y[2:]} {iso[11:]}"


# --- parse ---------------------------------------------------------------------------------


class _Record:
    def __init__(self, line: int):
        self.line = line
        self.values: dict[str, Any] = {}
        self.lines: dict[str, int] = {}
        self.server_lines: list[int] = []
        self.last: str | None = None


def parse(text: str, path: Path | str = "<text>") -> PcmFile:
    name = str(path)

    def err(line: int, message: str) -> InputError:
        return InputError(message, Location(name, line))

    newline = "crlf" if "\r\n" in text else "lf"
    stripped = text.rstrip(" \t\r\n")
    end = text[len(stripped):]
    lines = stripped.split("\n")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    prompt: str | None = None
    banner = False
    file_name: str | None = None
    records: list[_Record] = []
    cur: _Record | None = None
    order = [f for _, f in FIELDS]

    for i, line in enumerate(lines, 1):
        if not line.strip():
            if records:
                raise err(i, "a blank line inside the records; PCMDUMP prints records one after the other")
            continue
        if not records and file_name is None:
            if prompt is None and not banner and _PROMPT.match(line):
                prompt = line
                continue
            if line in BANNER:
                banner = True
                continue
        m = _FIELD_LINE.match(line)
        if m:
            label, value = m.group(1), (m.group(2) or "").rstrip()
            if label.casefold() == "file name":
                if records or file_name is not None:
                    raise err(i, "File Name comes once, before the first record")
                file_name = value
                continue
            field = FIELD_OF.get(label.casefold())
            if field is None:
                raise err(i, f"unknown field {label!r}; PCMDUMP prints: File Name, "
                             + ", ".join(lbl for lbl, _ in FIELDS))
            if field == "pcm_version":
                cur = _Record(i)
                records.append(cur)
            elif cur is None:
                raise err(i, f"{label} before the first record; a record starts with PCM Version")
            if field in cur.values:
                raise err(i, f"{LABEL_OF[field]} twice in the record that starts at line {cur.line}")
            want = order[len(cur.values)]
            if field != want:
                raise err(i, f"{LABEL_OF[field]} where PCMDUMP prints {LABEL_OF[want]} (fields come in Q123499's "
                             "order)")
            cur.values[field] = _value(field, value, i, err)
            cur.lines[field] = i
            if field == "servers" and value:
                cur.server_lines.append(i)
            cur.last = field
            continue
        if cur is None:
            loose = re.match(r"^\s*(\S[^:]*?) *:", line)
            if loose and (loose.group(1).casefold() in FIELD_OF or loose.group(1).casefold() == "file name"):
                # the right words, not PCMDUMP's layout: say what differs rather than "expected PCM Version"
                raise err(i, f"{loose.group(1)!r} is not where PCMDUMP prints it: each field line starts with three "
                             "spaces, its label padded to 16 characters, then `: ` and the value")
            raise err(i, "not PCMDUMP output: expected the banner, `File Name :` or `PCM Version :` lines")
        if (m := _SERVER_MORE.match(line)) and cur.last == "servers":
            cur.values["servers"].append(_server(m.group(1).rstrip(), i, err))
            cur.server_lines.append(i)
            continue
        if (m := _ZONE.match(line)) and cur.last == "servers":
            servers = cur.values["servers"]
            if not servers or servers[-1].get("zone") is not None:
                raise err(i, "a Zone line belongs right after its server's line")
            servers[-1]["zone"] = m.group(1).rstrip()
            continue
        if (m := _CONTINUED.match(line)) and cur.last in ("comments", "reserved"):
            more = m.group(1).rstrip()
            if cur.last == "comments":
                cur.values["comments"] += "\n" + more
            else:
                cur.values["reserved"] = f"{cur.values['reserved']} {more}".strip()
            continue
        raise err(i, "unexpected line: a continuation (indented 21 spaces) follows only Comments, Reserved or a "
                     "server's line; a further server is indented 19 spaces and starts with ': '")

    if not records:
        raise InputError("no PCM records found (a record starts with `   PCM Version     : ...`)", Location(name))
    out: list[PcmRecord] = []
    problems: list[InputError] = []
    for rec in records:
        missing = [LABEL_OF[f] for f in order if f not in rec.values]
        if missing:
            problems.append(err(rec.line, f"the record that starts here ends without: {', '.join(missing)}"))
            continue
        try:
            out.append(PcmRecord.model_validate(rec.values))
        except ValidationError as exc:
            for e in exc.errors():
                loc = e["loc"]
                field = str(loc[0]) if loc else "pcm_version"
                line = rec.lines.get(field, rec.line)
                if field == "servers" and len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(rec.server_lines):
                    line = rec.server_lines[loc[1]]  # the server's own line, not the first server's
                msg = re.sub(r"^Value error, ", "", e["msg"])
                problems.append(err(line, f"{LABEL_OF.get(field, field)}: {msg}"))
    if problems:
        raise problems[0] if len(problems) == 1 else InputErrors(problems)
    # the spaces closing the last line; the line break after it is the file's own newline
    return PcmFile(file_name=file_name, records=out, prompt=prompt, banner=banner, newline=newline,
                   end=end.split("\n", 1)[0].rstrip("\r"))


def _value(field: str, value: str, line: int, err) -> Any:
    if field in INT_FIELDS:
        if not re.fullmatch(r"[0-9]{1,10}", value):
            raise err(line, f"{LABEL_OF[field]}: {value!r} is not a number")
        return int(value)
    if field in DATE_FIELDS:
        try:
            return date_from_text(value)
        except ValueError as exc:
            raise err(line, f"{LABEL_OF[field]}: {exc}") from None
    if field == "servers":
        return [_server(value, line, err)] if value else []
    return value


def _server(value: str, line: int, err) -> dict[str, Any]:
    m = _SERVER.fullmatch(value)
    if not m:
        raise err(line, f"server {value!r}: PCMDUMP prints a server as <UNC path> Type: <1-7>")
    return {"path": m.group(1), "type": int(m.group(2)), "zone": None}


# --- render --------------------------------------------------------------------------------


def _field(label: str, value: str) -> str:
    return f"   {label:<16}:" + (f" {value}" if value != "" else "")


def _flag(rec: PcmRecord, field: str, decode: bool) -> str:
    v = getattr(rec, field)
    if not decode:
        return str(v)
    return f"{v} ({FLAG_MEANINGS[field].get(v, 'not defined by Q123499')})"


def _date(iso: str | None, decode: bool) -> str:
    text = date_to_text(iso)
    if not decode:
        return text
    if iso is None:
        return "not set"
    if not is_calendar_date(iso):
        return f"{text} (no such date)"
    return f"{text} ({date_value(iso):%a %d %b %Y %H:%M})"


def record_lines(rec: PcmRecord, decode: bool = False) -> list[str]:
    out = [
        _field("PCM Version", rec.pcm_version), _field("SiteID", rec.site_id), _field("RequestID", rec.request_id),
        _field("PackageID", rec.package_id), _field("JobID", rec.job_id),
        _field("Install Flag", _flag(rec, "install_flag", decode)),
        _field("Install By Date", _date(rec.install_by_date, decode)),
        _field("Install By Full", _flag(rec, "install_by_full", decode)),
        _field("Display Date", _date(rec.display_date, decode)),
        _field("Display Full", _flag(rec, "display_full", decode)),
        _field("Expiration Date", _date(rec.expiration_date, decode)),
        _field("Expiration Full", _flag(rec, "expiration_full", decode)),
        _field("User Input Flags", _flag(rec, "user_input_flags", decode)),
        _field("Operating System",
               f"{rec.operating_system} ({decode_os(rec.operating_system)})" if decode else str(rec.operating_system)),
        _field("Disk Usage", "(not used)" if decode and not rec.disk_usage else rec.disk_usage),
        _field("Run Command", rec.run_command), _field("WCL Name", rec.wcl_name),
    ]
    if not rec.servers:
        out.append(_field("Server(s)", ""))
    for n, s in enumerate(rec.servers):
        kind = f"{s.type} ({SERVER_TYPES[s.type]})" if decode else str(s.type)
        text = f"{s.path} Type: {kind}"
        out.append(_field("Server(s)", text) if n == 0 else f"{' ' * 19}: {text}")
        if s.zone is not None:
            out.append(f"{' ' * 21}Zone: {s.zone} ")
    out.append(_field("Package Name", rec.package_name))
    first, *more = rec.comments.split("\n")
    out.append(_field("Comments", first))
    out += [f"{' ' * 21}{c}" for c in more]
    out.append(_field("Domain Name", "(not used)" if decode and not rec.domain_name else rec.domain_name))
    pairs = rec.reserved.split()
    chunks = [" ".join(pairs[i:i + RESERVED_PER_LINE]) for i in range(0, len(pairs), RESERVED_PER_LINE)] or [""]
    out.append(_field("Reserved", chunks[0]))
    out += [f"{' ' * 21}{c}" for c in chunks[1:]]
    return out


def render(f: PcmFile, decode: bool = False) -> str:
    lines: list[str] = []
    if f.prompt is not None:
        lines.append(f.prompt)
    if f.banner:
        lines += ["", *BANNER, ""]
    if f.file_name is not None:
        lines.append(_field("File Name", f.file_name))
    for rec in f.records:
        lines += record_lines(rec, decode)
    nl = "\r\n" if f.newline == "crlf" else "\n"
    return nl.join(lines) + f.end + nl


__all__ = ["parse", "render", "record_lines", "date_from_text", "date_to_text", "PcmServer"]
