"""One PCM instruction record, with every field Q123499 lists, and what its numbers mean.

Dates are kept as text in ISO order (`1994-09-21 17:56:00`) and not as datetimes: a record
may carry a date no calendar has (Q123499's own sample expires on 11/31/94), and that is
for `lint` to report, not for the model to refuse or silently "fix". PCMDUMP's
`00/00/00 00:00:00` ("not set") is None.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from ...model.common import Strict

# Q123499: "Supported operating systems and bit masks"
OS_BITS: dict[str, int] = {
    "WIN16": 0x01, "WIN32_X86": 0x02, "WIN32_MIPS": 0x04, "WIN32_ALPHA": 0x08,
    "DOS5": 0x10, "DOS6": 0x20, "MACINTOSH": 0x40,
}
KNOWN_OS_MASK = sum(OS_BITS.values())

# Q123499: "Server types"
SERVER_TYPES: dict[int, str] = {1: "UNKNOWN", 2: "WINNT3", 3: "LANMAN1", 4: "LANMAN2", 5: "NETWARE2", 6: "NETWARE3",
                                7: "NETWARE4"}

# Q123499's meaning of each flag value.
FLAG_MEANINGS: dict[str, dict[int, str]] = {
    "install_flag": {0: "install regardless of network speed", 1: "install regardless of network speed",
                     2: "do not install over a slow network link"},
    "install_by_full": {0: "optional install", 1: "mandatory install"},
    "display_full": {0: "not displayed in PCM", 1: "display this package in PCM"},
    "expiration_full": {0: "never expires", 1: "expires after expiration date"},
    "user_input_flags": {0: "doesn't require user input", 1: "requires user input"},
}

_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
YEARS = range(1970, 2070)  # what a two-digit PCMDUMP year can stand for


def _date(v: Any) -> Any:
    if v is None:
        return None
    if not isinstance(v, str) or not _ISO.fullmatch(v):
        raise ValueError("a date is written YYYY-MM-DD HH:MM:SS (e.g. 1994-09-21 17:56:00), or null for not set")
    if int(v[:4]) not in YEARS:
        raise ValueError(f"year {v[:4]} cannot be written in a PCM record (two digits: 1970-2069)")
    return v


PcmDate = Annotated[str | None, BeforeValidator(_date)]


def date_value(text: str | None) -> datetime | None:
    """The date as a datetime; None when not set; ValueError when no calendar has it."""
    if text is None:
        return None
    return datetime(*map(int, _ISO.fullmatch(text).groups()))  # type: ignore[union-attr]


def is_calendar_date(text: str | None) -> bool:
    try:
        date_value(text)
    except ValueError:
        return False
    return True


def _flag(allowed: range, what: str):
    def check(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or v not in allowed:
            meanings = FLAG_MEANINGS.get(what, {})
            listed = "; ".join(f"{k} {m}" for k, m in meanings.items())
            raise ValueError(f"must be {allowed.start}-{allowed.stop - 1} ({listed}) per Q123499")
        return v
    return BeforeValidator(check)


def _os(v: Any) -> Any:
    """An int bitmask, or a list of Q123499's operating system names."""
    if isinstance(v, list):
        mask = 0
        for name in v:
            key = str(name).upper()
            if key not in OS_BITS:
                raise ValueError(f"unknown operating system {name!r}; Q123499 lists: {', '.join(OS_BITS)}")
            mask |= OS_BITS[key]
        return mask
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
        raise ValueError("the operating system is a bit mask (0-4294967295) or a list of names: "
                         f"{', '.join(OS_BITS)}")
    return v


def _server_type(v: Any) -> Any:
    if isinstance(v, str):
        for k, name in SERVER_TYPES.items():
            if name == v.upper():
                return k
    if isinstance(v, int) and not isinstance(v, bool) and v in SERVER_TYPES:
        return v
    raise ValueError("a server type is 1-7 or its name: " + ", ".join(f"{k} {n}" for k, n in SERVER_TYPES.items()))


def _reserved(v: Any) -> Any:
    if v is None or v == "":
        return ""
    if not isinstance(v, str) or not re.fullmatch(r"[0-9A-Fa-f]{2}( [0-9A-Fa-f]{2})*", " ".join(str(v).split())):
        raise ValueError("reserved bytes are written as hex pairs separated by spaces (00 E6 F8 ...)")
    return " ".join(v.split()).upper()


class PcmServer(Strict):
    path: str = Field(description="UNC path of a package directory")
    type: Annotated[int, BeforeValidator(_server_type)] = Field(description="server type 1-7 or its name")
    zone: str | None = None

    @field_validator("path", "zone")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        if v is not None and ("\n" in v or "\r" in v or " Type: " in v):
            raise ValueError("a server path is one line and cannot contain ' Type: '")
        return v


class PcmRecord(Strict):
    """A record of a PCM instruction file, field for field as Q123499 lists them."""

    pcm_version: str = Field("Beta 455", description="PCMDUMP's record version; Beta 455 is SMS 1.0's version 6")
    site_id: str = Field(description="three character SMS site code")
    request_id: str = Field(description="unique package distribution ID")
    package_id: str = Field(description="the package to distribute")
    job_id: str = Field(description="the job that distributes it")
    install_flag: Annotated[int, _flag(range(0, 3), "install_flag")] = 0
    install_by_date: PcmDate = None
    install_by_full: Annotated[int, _flag(range(0, 2), "install_by_full")] = 0
    display_date: PcmDate = None
    display_full: Annotated[int, _flag(range(0, 2), "display_full")] = 1
    expiration_date: PcmDate = None
    expiration_full: Annotated[int, _flag(range(0, 2), "expiration_full")] = 0
    user_input_flags: Annotated[int, _flag(range(0, 2), "user_input_flags")] = 0
    operating_system: Annotated[int, BeforeValidator(_os)] = Field(description="bit mask or list of names")
    disk_usage: str = ""
    run_command: str = Field(description="the command line to run")
    wcl_name: str = Field("", description="shown in PCM under Command Name")
    servers: list[PcmServer] = Field(default_factory=list)
    package_name: str = ""
    comments: str = ""
    domain_name: str = ""
    reserved: Annotated[str, BeforeValidator(_reserved)] = ""
    # Package properties Q166765 requires that PCMDUMP's layout does not carry: known only
    # when deployer's YAML form says so; None means "not recorded".
    automated_command_line: bool | None = None
    background_task: bool | None = None

    @field_validator("site_id")
    @classmethod
    def _site(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]{3}", v):
            raise ValueError(f"site ID {v!r} must be a three character SMS site code")
        return v

    @field_validator("pcm_version", "request_id", "package_id", "job_id", "disk_usage", "run_command", "wcl_name",
                     "package_name", "domain_name")
    @classmethod
    def _one_line(cls, v: str) -> str:
        if "\n" in v or "\r" in v:
            raise ValueError("must be one line")
        return v.rstrip(" \t")  # PCMDUMP's layout keeps no trailing spaces

    @field_validator("comments")
    @classmethod
    def _comments(cls, v: str) -> str:
        lines = [ln.rstrip(" \t") for ln in v.replace("\r\n", "\n").rstrip("\n").split("\n")]
        for n, ln in enumerate(lines[1:], 2):
            # PCMDUMP indents further lines 21 spaces: a blank or indented line would not read back
            if not ln or ln[0].isspace():
                raise ValueError(f"comment line {n} is blank or starts with a space; PCMDUMP's layout cannot hold it")
        return "\n".join(lines)

    @property
    def label(self) -> str:
        return f"{self.request_id} ({self.package_name or self.package_id})"


def os_names(mask: int) -> list[str]:
    return [name for name, bit in OS_BITS.items() if mask & bit]


def decode_os(mask: int) -> str:
    names = os_names(mask)
    unknown = mask & ~KNOWN_OS_MASK
    if unknown:
        names.append(f"unknown bits 0x{unknown:08X}")
    return ", ".join(names) if names else "none"


def _blank(v: str) -> str:
    if v.strip(" \t"):
        raise ValueError("end holds only spaces or tabs")
    return v


# what closes a transcript's last line: kept for a byte-exact re-print (PCMDUMP text and its YAML form)
LineEnd = Annotated[str, AfterValidator(_blank)]


class PcmFile(Strict):
    """An instruction file as PCMDUMP showed it: the file name, its records, and the transcript around them."""

    file_name: str | None = None
    records: list[PcmRecord] = Field(default_factory=list)
    prompt: str | None = Field(None, description="the console line that ran PCMDUMP, when the output has it")
    banner: bool = Field(True, description="PCMDUMP's two banner lines")
    newline: str = Field("crlf", description="crlf (as PCMDUMP wrote on DOS) or lf")
    end: LineEnd = Field("", description="spaces after the last value, kept for a byte-exact re-print")

    @field_validator("newline")
    @classmethod
    def _nl(cls, v: str) -> str:
        if v not in ("crlf", "lf"):
            raise ValueError("newline is crlf or lf")
        return v
