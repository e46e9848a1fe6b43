"""A manifest: the file-attribute table of a KB article, as data.

Dates and times are wall-clock times in the site's local time zone (what Explorer on the
site's server shows), unless the manifest pins `timezone:` to the zone the article was
written in. The rule `or-later` is the article's "these attributes or later": a file
with a later date passes; `exact` accepts only the listed attributes.

What articles leave open stays open here, and verify says where it could only check
loosely: `time: null` (the article gives none: the date alone is compared), `size: null`
or a fractional `87.1 KB` / `1.61 MB` (a range), `platform: unknown` (the article names
none, or something other than a CPU), a version with a build note (`1.2 (build 786)`).
A table of several parts (by language, platform, service pack) is written as `groups:`,
each with its heading as the article writes it; a row an importer could not read exactly
carries `review:` with the reason, and `line:` is the article line of every row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Optional
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, PlainSerializer, PrivateAttr, field_validator, model_validator

from ..errors import InputErrors
from ..sms import attrs, platforms
from ..sms.platforms import Platform
from .winpath import PathRuleError, check_component
from .yamlsrc import Document, load_yaml
from .common import Strict, check_timezone, validate


# The article names no platform, or one SMS has no folder for (`Windows 95 OSR2`, `NT 4.0`).
UNKNOWN = Platform("unknown", "UNKNOWN", "unknown", ("unknown",))


_MORE_SPELLINGS = {"ix86": "x86", "x86-based": "x86", "intel-based": "x86", "alpha-based": "alpha"}


def parse_platform(v: Any) -> Platform:
    if isinstance(v, Platform):
        return v
    if v is None or str(v).strip().casefold() == "unknown":
        return UNKNOWN
    text = str(v)
    try:
        return platforms.lookup(text)
    except ValueError:
        # "(Intel)", "<x86>", "[Alpha]", "ix86": articles bracket and spell platforms freely
        bare = text.strip().strip("()<>[]").strip()
        bare = _MORE_SPELLINGS.get(bare.casefold(), bare)
        if bare != text:
            try:
                return platforms.lookup(bare)
            except ValueError:
                pass
        raise


_VERSION = re.compile(r"(?P<dotted>[0-9]{1,5}(\.[0-9]{1,5}){0,3})(?P<build>\s*\(\s*build\s+[0-9]{1,6}\s*\))?", re.IGNORECASE)


def parse_version(v: Any) -> str:
    text = str(v).strip()
    if not _VERSION.fullmatch(text):
        raise ValueError(f"version {text!r} is not understood; write dotted numbers such as 1.2.0.0 "
                         "(or 1.2 (build 786) as articles do)")
    return text


def version_parts(text: str) -> tuple[str, bool]:
    """The dotted part of a listed version, and whether a build note makes it loose."""
    m = _VERSION.fullmatch(text)
    return (m.group("dotted"), m.group("build") is not None) if m else (text, True)


def _sha256(v: Any) -> str:
    text = str(v).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ValueError("sha256 must be 64 hexadecimal digits")
    return text


def _name(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("file name must be a string")
    try:
        return check_component(v, "file name")
    except PathRuleError as exc:
        raise ValueError(str(exc)) from None


def _wrap(fn):  # attrs raise AttrError (a ValueError); pydantic reports its text
    return BeforeValidator(fn)


PlatformField = Annotated[Platform, _wrap(parse_platform), PlainSerializer(lambda p: p.key)]
DateField = Annotated[date, _wrap(attrs.parse_date)]
TimeField = Annotated[time, _wrap(attrs.parse_time)]
SizeField = Annotated[attrs.SizeSpec, _wrap(attrs.parse_size), PlainSerializer(str)]
FileName = Annotated[str, _wrap(_name)]


def version_tuple(text: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in version_parts(text)[0].split("."))
    return parts + (0,) * (4 - len(parts))


class FileEntry(Strict):
    # The descriptions are shown when a column is missing ("files[1].date: is required (...)").
    name: FileName = Field(description="the file name, such as Base.dll")
    platform: PlatformField = Field(description="the platform as the article spells it, such as I386 or Alpha, "
                                                "or unknown")
    date: DateField = Field(description="the date as the article prints it, such as 9/10/99")
    time: Optional[TimeField] = Field(description="the time as the article prints it, such as 7:00PM, or null "
                                                  "when it gives none")
    size: Optional[SizeField] = Field(description="bytes (254,400), the article's rounded kilobytes (524KB), "
                                                  "its fraction (87.1 KB), or null when it gives none")
    version: Annotated[str, _wrap(parse_version)] | None = Field(
        default=None, description="the file version the article lists, checked against the file's version resource")
    sha256: Annotated[str, _wrap(_sha256)] | None = Field(
        default=None, description="the file's SHA-256, when known: the content is checked too")
    line: Annotated[int, Field(ge=1)] | None = Field(default=None, description="the article line of the row")
    review: str | None = Field(default=None, description="why a person must check this row against the article")

    @property
    def key(self) -> tuple[str, str]:
        return self.name.casefold(), self.platform.key

    def loose(self) -> list[str]:
        """What verify can only check loosely for this row, in words."""
        out = []
        if self.time is None:
            out.append("no time listed: date only")
        if self.size is None:
            out.append("no size listed")
        elif self.size.loose:
            out.append(f"size {self.size} is a range")
        if self.platform is UNKNOWN:
            out.append("no platform listed")
        if self.version and version_parts(self.version)[1]:
            out.append(f"version {self.version}: dotted part only")
        if self.review:
            out.append(f"flagged for review: {self.review}")
        return out

    def instant(self, tz: ZoneInfo) -> datetime:
        """The write time the article lists, as an aware datetime in `tz`.

        A time the clocks skipped (spring forward) does not exist there: NonexistentLocalTime.
        A time they showed twice (fall back) is read as the first, daylight-saving one."""
        # No listed time: midnight, so that a file written that day is never "older".
        dt = datetime.combine(self.date, self.time or time(0, 0)).replace(tzinfo=tz)
        back = dt.astimezone(timezone.utc).astimezone(tz)
        if back.replace(tzinfo=None) != dt.replace(tzinfo=None):
            raise NonexistentLocalTime(
                f"{self.describe()} is listed at {attrs.format_date(self.date)} {attrs.format_time(dt.time())}, a time "
                f"that does not exist in {tz.key}: the clocks moved forward an hour then (daylight saving time). "
                "Pin the article's own zone with the manifest's timezone:, or write the time the servers showed")
        return dt

    def mtime_ns(self, tz: ZoneInfo) -> int:
        return int(self.instant(tz).timestamp()) * 1_000_000_000

    def describe(self) -> str:
        return f"{self.name} ({self.platform.article_name})"


class NonexistentLocalTime(ValueError):
    pass


def kb_number(v: str) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[QK]B?[0-9]{5,7}", v.strip().upper()):
        raise ValueError(f"kb {v!r} is not an article number such as Q241656")
    return v.strip().upper()


class Group(Strict):
    """One table of the article, or one part of a table (a language, a platform)."""

    title: str | None = Field(default=None, description="the table's heading as the article writes it")
    line: Annotated[int, Field(ge=1)] | None = Field(default=None, description="the article line of the heading")
    files: list[FileEntry] = Field(min_length=1, description="the table's rows")


class Manifest(Strict):
    kb: str = Field(description="the KB article number, such as Q241656")
    title: str | None = Field(default=None, description="the article's title")
    source: str | None = Field(default=None, description="the article the table was taken from")
    rule: Literal["or-later", "exact"] = Field(
        default="or-later", description="or-later: the article's \"these attributes or later\" (a later file passes); "
        "exact: only the listed attributes pass")
    timezone: str | None = Field(default=None, description="pin the article's times to one IANA zone (default: each "
                                 "site's timezone)")
    files: list[FileEntry] = Field(default=None, min_length=1,  # type: ignore[assignment]
                                   description="the table's rows (or groups:, a list of tables)")
    groups: list[Group] = Field(default_factory=list, description="the article's tables, each with title and files")
    products: list[str] = Field(default_factory=list, description="the products the article applies to, as it lists "
                                "them (kb import copies them)")
    # The hotfixes this one replaces, as the article names them; a catalogue also derives
    # supersedence from the files (deployer/kb/catalog.py), this declares what files cannot show.
    supersedes: list[str] = Field(default_factory=list, description="the articles of the hotfixes this one replaces, "
                                  "such as [Q225056] (a catalogue also derives it from later files)")
    # For every entry of `files` (the flat list, groups included): its key path in the document.
    _paths: list[tuple] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _flatten(self) -> "Manifest":
        own = self.files or []
        if not own and not self.groups:
            raise ValueError("a manifest lists its files under files: (one table) or groups: (several)")
        flat = [*own, *(f for g in self.groups for f in g.files)]
        # The one list everything else reads (plans, verify, payloads): frozen, so set directly.
        self.__dict__["files"] = flat
        self._paths = [("files", i) for i in range(len(own))] + [
            ("groups", gi, "files", i) for gi, g in enumerate(self.groups) for i in range(len(g.files))]
        return self

    def path_of(self, index: int) -> tuple:
        """Where files[index] is written in the document (under files: or a group)."""
        return self._paths[index] if index < len(self._paths) else ("files", index)

    def group_of(self, index: int) -> Group | None:
        path = self.path_of(index)
        return self.groups[path[1]] if path[0] == "groups" else None

    @field_validator("kb")
    @classmethod
    def _kb(cls, v: str) -> str:
        return kb_number(v)

    @field_validator("supersedes")
    @classmethod
    def _supersedes(cls, v: list[str]) -> list[str]:
        return [kb_number(k) for k in v]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return check_timezone(v)

    def duplicates(self) -> list[tuple[int, int]]:
        """(index, index of the first entry) for every (file, platform) repeated in one table.

        Two tables may list the same file (the French and the German build of it); a plan
        or verify takes the first, so a manifest for one language keeps that group first."""
        seen: dict[tuple, int] = {}
        out = []
        for i, f in enumerate(self.files):
            key = (self.path_of(i)[:-1], f.key)
            if f.key[1] == UNKNOWN.key:
                continue  # unknown platforms: the same name may be two builds (16-bit, 32-bit)
            if key in seen:
                out.append((i, seen[key]))
            else:
                seen[key] = i
        return out

    def entry(self, name: str, platform: Platform) -> FileEntry | None:
        key = (name.casefold(), platform.key)
        return next((f for f in self.files if f.key == key), None)

    def zone(self, site_zone: str) -> ZoneInfo:
        return ZoneInfo(self.timezone or site_zone)


@dataclass(frozen=True)
class LoadedManifest:
    manifest: Manifest
    doc: Document

    @property
    def path(self) -> Path:
        return self.doc.path

    def check_times(self, tz: ZoneInfo) -> None:
        """Every listed time exists in the zone the site reads it in (refused before anything runs)."""
        errors = []
        for i, f in enumerate(self.manifest.files):
            try:
                f.instant(tz)
            except NonexistentLocalTime as exc:
                errors.append(self.doc.error((*self.manifest.path_of(i), "time"), str(exc)))
        if errors:
            raise errors[0] if len(errors) == 1 else InputErrors(errors)


def _spell(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if k else p) for k, p in enumerate(path))


def load_manifest(path: Path | str) -> LoadedManifest:
    doc = load_yaml(path)
    m = validate(doc, Manifest)
    errors = [
        doc.error((*m.path_of(i), "name"), f"duplicate entry for {m.files[i].describe()} (first listed as "
                  f"{_spell(m.path_of(first))}); each file may appear once per platform in a table")
        for i, first in m.duplicates()
    ]
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return LoadedManifest(m, doc)
