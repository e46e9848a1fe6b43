"""A manifest: the file-attribute table of a KB article, as data.

Dates and times are wall-clock times in the site's local time zone (what Explorer on the
site's server shows), unless the manifest pins `timezone:` to the zone the article was
written in. The rule `or-later` is the article's "these attributes or later": a file
with a later date passes; `exact` accepts only the listed attributes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator

from ..errors import InputErrors
from ..sms import attrs, platforms
from ..sms.platforms import Platform
from ..winpath import PathRuleError, check_component
from ..yamlsrc import Document, load_yaml
from .common import Strict, check_timezone, validate


def _platform(v: Any) -> Platform:
    if isinstance(v, Platform):
        return v
    return platforms.lookup(str(v))


def _version(v: Any) -> str:
    text = str(v).strip()
    if not re.fullmatch(r"\d{1,5}(\.\d{1,5}){0,3}", text):
        raise ValueError(f"version {text!r} is not understood; write dotted numbers such as 1.2.0.0")
    return text


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


PlatformField = Annotated[Platform, _wrap(_platform), PlainSerializer(lambda p: p.key)]
DateField = Annotated[date, _wrap(attrs.parse_date)]
TimeField = Annotated[time, _wrap(attrs.parse_time)]
SizeField = Annotated[attrs.SizeSpec, _wrap(attrs.parse_size), PlainSerializer(str)]
FileName = Annotated[str, _wrap(_name)]


def version_tuple(text: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


class FileEntry(Strict):
    # The descriptions are shown when a column is missing ("files[1].date: is required (...)").
    name: FileName = Field(description="the file name, such as Base.dll")
    platform: PlatformField = Field(description="the platform as the article spells it, such as I386 or Alpha")
    date: DateField = Field(description="the date as the article prints it, such as 9/10/99")
    time: TimeField = Field(description="the time as the article prints it, such as 7:00PM")
    size: SizeField = Field(description="bytes (254,400) or the article's rounded kilobytes (524KB)")
    version: Annotated[str, _wrap(_version)] | None = None
    sha256: Annotated[str, _wrap(_sha256)] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.name.casefold(), self.platform.key

    def instant(self, tz: ZoneInfo) -> datetime:
        """The write time the article lists, as an aware datetime in `tz`.

        A time the clocks skipped (spring forward) does not exist there: NonexistentLocalTime.
        A time they showed twice (fall back) is read as the first, daylight-saving one."""
        dt = datetime.combine(self.date, self.time).replace(tzinfo=tz)
        back = dt.astimezone(timezone.utc).astimezone(tz)
        if back.replace(tzinfo=None) != dt.replace(tzinfo=None):
            raise NonexistentLocalTime(
                f"{self.describe()} is listed at {attrs.format_date(self.date)} {attrs.format_time(self.time)}, a time "
                f"that does not exist in {tz.key}: the clocks moved forward an hour then (daylight saving time). "
                "Pin the article's own zone with the manifest's timezone:, or write the time the servers showed")
        return dt

    def mtime_ns(self, tz: ZoneInfo) -> int:
        return int(self.instant(tz).timestamp()) * 1_000_000_000

    def describe(self) -> str:
        return f"{self.name} ({self.platform.article_name})"


class NonexistentLocalTime(ValueError):
    pass


class Manifest(Strict):
    kb: str
    title: str | None = None
    source: str | None = Field(default=None, description="the article the table was taken from")
    rule: Literal["or-later", "exact"] = "or-later"
    timezone: str | None = None
    files: list[FileEntry] = Field(min_length=1)

    @field_validator("kb")
    @classmethod
    def _kb(cls, v: str) -> str:
        if not re.fullmatch(r"[QK]B?\d{5,7}", v.strip().upper()):
            raise ValueError(f"kb {v!r} is not an article number such as Q241656")
        return v.strip().upper()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return check_timezone(v)

    def duplicates(self) -> list[tuple[int, int]]:
        """(index, index of the first entry) for every repeated (file, platform)."""
        seen: dict[tuple[str, str], int] = {}
        out = []
        for i, f in enumerate(self.files):
            if f.key in seen:
                out.append((i, seen[f.key]))
            else:
                seen[f.key] = i
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
                errors.append(self.doc.error(("files", i, "time"), str(exc)))
        if errors:
            raise errors[0] if len(errors) == 1 else InputErrors(errors)


def load_manifest(path: Path | str) -> LoadedManifest:
    doc = load_yaml(path)
    m = validate(doc, Manifest)
    errors = [
        doc.error(("files", i, "name"), f"duplicate entry for {m.files[i].describe()} (first listed as files[{first}]); "
                  "each file may appear once per platform")
        for i, first in m.duplicates()
    ]
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return LoadedManifest(m, doc)
