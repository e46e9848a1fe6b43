"""File attributes as KB articles write them: dates, times and sizes.

Articles round sizes the way Explorer's Size column does: kilobytes rounded *up*
(Q226891's Base.dll is 535,616 bytes; Q241656 lists a Base.dll of 524KB, and
ceil(535,616 / 1024) = 524). A size written in KB therefore matches any byte count
whose rounded-up kilobytes equal it; a size written in bytes must match exactly.

Two-digit years follow Windows' default window: 30-99 are 19xx, 00-29 are 20xx.

Some articles print what Explorer's status bar shows instead: `87.1 KB`, `1.61 MB`. Such a
size names a range, not a count: it is matched loosely (see SizeSpec.loose).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, time


class AttrError(ValueError):
    pass


MAX_SIZE_DIGITS = 15  # 999 TB; also keeps int() clear of Python's 4,300-digit limit (a bare ValueError)


_MONTHS = [calendar.month_name[i] for i in range(13)]
# "Mar", "March", "Sept": articles abbreviate with and without a dot
_MONTH_NUMBER = {name.casefold(): i for i in range(1, 13)
                 for name in (calendar.month_name[i], calendar.month_abbr[i])} | {"sept": 9}


def _check_day(y: int, m: int, d: int, text: str) -> date:
    if not 1 <= y <= 9999:  # date() would say only "year 0 is out of range"
        raise AttrError(f"date {text!r} has year {y}; years are 1-9999 (two-digit years: 30-99 are 19xx, 00-29 20xx)")
    if not 1 <= m <= 12:
        raise AttrError(f"date {text!r} has month {m}; months are 1-12")
    last = calendar.monthrange(y, m)[1]
    if not 1 <= d <= last:
        raise AttrError(f"date {text!r} does not exist: {_MONTHS[m]} {y} has {last} days")
    return date(y, m, d)


def _year(y: str) -> int:
    return int(y) if len(y) == 4 else (2000 + int(y) if int(y) < 30 else 1900 + int(y))


def _month(name: str, text: str) -> int:
    month = _MONTH_NUMBER.get(name.rstrip(".").casefold())
    if month is None:
        raise AttrError(f"date {text!r}: {name!r} is not a month name")
    return month


DATE_FORMS = ("M/D/YY or M/D/YYYY as the article does, or YYYY-MM-DD (also 05-15-00, 01-Mar-2001, 08-May-01, "
              "May-02-2001, March 1, 2001)")


def parse_date(value: object) -> date:
    """The dates articles print: `9/10/99`, `04/22/2000`, `05-05-00` (US month/day/year),
    `01-Mar-2001`, `08-May-01`, `May-02-2001`, `October 6, 2000`, `Oct 6, 2000`, or ISO `1999-09-10`."""
    if isinstance(value, date):
        return value
    text = str(value).strip()
    m = re.fullmatch(r"([0-9]{1,2})([/-])([0-9]{1,2})\2([0-9]{2}|[0-9]{4})", text)
    if m:
        return _check_day(_year(m.group(4)), int(m.group(1)), int(m.group(3)), text)
    m = re.fullmatch(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", text)
    if m:
        return _check_day(int(m.group(1)), int(m.group(2)), int(m.group(3)), text)
    m = re.fullmatch(r"([0-9]{1,2})[- ]([A-Za-z]{3,9}\.?)[- ]([0-9]{2}|[0-9]{4})", text)
    if m:
        return _check_day(_year(m.group(3)), _month(m.group(2), text), int(m.group(1)), text)
    m = re.fullmatch(r"([A-Za-z]{3,9}\.?)-([0-9]{1,2})-([0-9]{2}|[0-9]{4})", text)
    if m:  # May-02-2001
        return _check_day(_year(m.group(3)), _month(m.group(1), text), int(m.group(2)), text)
    m = re.fullmatch(r"([A-Za-z]{3,9}\.?)\s+([0-9]{1,2}),?\s+([0-9]{4})", text)
    if m:
        return _check_day(int(m.group(3)), _month(m.group(1), text), int(m.group(2)), text)
    raise AttrError(f"date {text!r} is not understood; write {DATE_FORMS}")


def parse_time(value: object) -> time:
    """`7:00PM`, `7:00 pm`, `11:01a`, `19:00`, `19:00:30`."""
    if isinstance(value, time):
        return value
    text = str(value).strip()
    m = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?\s*([AaPp])\.?([Mm]\.?)?", text)
    if m:
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if not 1 <= h <= 12:
            raise AttrError(f"time {text!r}: a 12-hour clock hour is 1-12")
        pm = m.group(4).lower() == "p"
        h = (h % 12) + (12 if pm else 0)
    else:
        m = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?", text)
        if not m:
            raise AttrError(f"time {text!r} is not understood; write 7:00PM, 11:01a or 19:00")
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if h > 23:
            raise AttrError(f"time {text!r}: hours are 0-23")
    if mi > 59 or s > 59:
        raise AttrError(f"time {text!r}: minutes and seconds are 0-59")
    return time(h, mi, s)


@dataclass(frozen=True)
class SizeSpec:
    """A size as the article gives it: exact bytes, kilobytes rounded up, or a range.

    A range comes from a fractional or megabyte size (`87.1 KB`, `1.61 MB`): the article
    does not say whether it rounded, truncated or rounded up, so every byte count any of
    them would print that way matches (`value` is the low end, `high` the high end).
    """

    value: int
    unit: str  # "B", "KB" or "range"
    high: int = 0
    text: str = ""  # a range: as the article wrote it

    def matches(self, size: int) -> bool:
        if self.unit == "B":
            return size == self.value
        if self.unit == "range":
            return self.value <= size <= self.high
        return -(-size // 1024) == self.value

    @property
    def loose(self) -> bool:
        """Only a range of sizes can be checked, not a count."""
        return self.unit == "range"

    @property
    def byte_range(self) -> tuple[int, int]:
        if self.unit == "B":
            return self.value, self.value
        if self.unit == "range":
            return self.value, self.high
        return max(0, (self.value - 1) * 1024 + 1), self.value * 1024

    def __str__(self) -> str:
        if self.unit == "range":
            return self.text
        return f"{self.value}KB" if self.unit == "KB" else f"{self.value:,}"


_UNIT_BYTES = {"k": 1024, "kb": 1024, "m": 1024 * 1024, "mb": 1024 * 1024}


def _range(number: str, unit: str, text: str) -> SizeSpec:
    """`87.1 KB`: any count that prints as 87.1 KB rounded (87.05-87.15), truncated
    (87.1-87.2) or rounded up (87.0-87.1): more than 87.0 and less than 87.2 KB."""
    whole, _, frac = number.partition(".")
    scale = 10 ** len(frac)
    units = int(whole + frac)  # in 1/scale of a unit
    per = _UNIT_BYTES[unit.casefold()]
    low = (units - 1) * per // scale + 1 if units else 0
    high = -(-((units + 1) * per) // scale) - 1
    return SizeSpec(max(low, 0), "range", high, text)


def parse_size(value: object) -> SizeSpec:
    """`524KB`, `1147 KB`, `254,400`, `453904`, `453,904 bytes`."""
    if isinstance(value, bool):
        raise AttrError("size must be a number of bytes or kilobytes, not true/false")
    if isinstance(value, int):
        if abs(value) >= 10**MAX_SIZE_DIGITS:  # before printing it: str() of a huge int is itself an error
            raise AttrError(f"size has more than {MAX_SIZE_DIGITS} digits; a file size has at most {MAX_SIZE_DIGITS}")
        if value < 0:
            raise AttrError(f"size {value} is negative; write bytes (254,400 or 254400) or rounded kilobytes (524KB)")
        return SizeSpec(value, "B")
    text = str(value).strip()
    # Whole megabytes (`12 MB`) are refused: a range a megabyte wide checks next to nothing.
    m = re.fullmatch(r"([0-9]{1,6}\.[0-9]{1,3})\s*(KB|K|kb|Kb|k|MB|M|mb|Mb)", text)
    if m:
        return _range(m.group(1), m.group(2), text)
    m = re.fullmatch(r"([0-9][0-9,]*)\s*(KB|K|kb|Kb|k)", text)
    if m:
        return SizeSpec(int(_digits(m.group(1), text)), "KB")
    m = re.fullmatch(r"([0-9][0-9,]*)\s*(bytes|B|b)?", text)
    if m:
        return SizeSpec(int(_digits(m.group(1), text)), "B")
    raise AttrError(f"size {text!r} is not understood; write bytes (254,400 or 254400) or rounded kilobytes (524KB), "
                    "or the article's fraction (87.1 KB, 1.61 MB)")


def _digits(group: str, text: str) -> str:
    if "," in group and not re.fullmatch(r"[0-9]{1,3}(,[0-9]{3})+", group):
        raise AttrError(f"size {text!r} has misplaced thousands separators")
    digits = group.replace(",", "")
    if len(digits) > MAX_SIZE_DIGITS:
        raise AttrError(f"size {text[:40]!r}{'...' if len(text) > 40 else ''} has {len(digits):,} digits; a file size "
                        f"has at most {MAX_SIZE_DIGITS}")
    return digits


def format_date(d: date) -> str:
    """As the articles print it: 9/10/99 (four digits outside 1930-2029)."""
    yy = f"{d.year % 100:02d}" if 1930 <= d.year <= 2029 else str(d.year)
    return f"{d.month}/{d.day}/{yy}"


def format_time(t: time | None) -> str:
    if t is None:  # a manifest row whose article gives no time: compared by date alone
        return "(any time)"
    h = t.hour % 12 or 12
    return f"{h}:{t.minute:02d}{'PM' if t.hour >= 12 else 'AM'}"
