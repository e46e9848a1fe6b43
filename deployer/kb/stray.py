"""Lines that look like rows of a file attribute table but that no table took.

A table is found by its header row and its rows by their shape (tables.py). An article of a
shape the finder does not know (a leading Product column: `MDAC 2.0  02/02/99  ...  Msorcl32.dll`,
a header it cannot place) would lose those rows without a word. This is the net under it: any
line holding a date, a file name and a size or a time is a row, and one that no table
imported or flagged is flagged here, so that every row reaches the manifest.
"""

from __future__ import annotations

import re

# ASCII digits; a date with / or - (never dots: 4.2.739 is a version), or with a month's name
_DATE = re.compile(r"(?<![0-9A-Za-z./-])(?:[0-9]{1,2}[/-][0-9]{1,2}[/-](?:[0-9]{4}|[0-9]{2})|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
                   r"|[0-9]{1,2}[- ](?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?[- ][0-9]{2,4}"
                   r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?[- ][0-9]{1,2},?[- ][0-9]{2,4})"
                   r"(?![0-9A-Za-z/])", re.IGNORECASE)
# a file name, perhaps with a folder path (OS\MSAPPS\Datamap\Data\Us_hiway.dat): a letter in
# its stem and in its extension, so that 4.2.739 and 1.5KB are not names
_FILE = re.compile(r"(?<![\w.\\/])(?:[\w$~-]+[\\/])*[\w$~-]*[A-Za-z][\w$~-]*\.[A-Za-z0-9_]*[A-Za-z][A-Za-z0-9_]{0,3}"
                   r"(?![\w])")
_SIZE = re.compile(r"(?<![\w.,])(?:[0-9]{1,3}(?:[,.][0-9]{3})+|[0-9]{2,})\s*(?:bytes|byte|b|kb|k|mb)?(?![\w,])"
                   r"|(?<![\w.,])[0-9]+(?:\.[0-9]+)?\s*(?:kb|k|mb)\b", re.IGNORECASE)
_TIME = re.compile(r"(?<![0-9])[0-9]{1,2}[:.][0-9]{2}(?::[0-9]{2})?\s*(?:[ap]\.?m?\.?)?(?![0-9])", re.IGNORECASE)


_WORD = re.compile(r"(?<![\w.])[A-Za-z]{3,}(?![\w.])")
_UNITS = {"bytes", "byte", "kb", "mb", "a.m", "p.m", "intel", "alpha", "x86"}


def looks_like_row(line: str) -> bool:
    date = _DATE.search(line)
    if date is None:
        return False
    rest = line[:date.start()] + " " + line[date.end():]
    name = _FILE.search(rest)
    if name is None or (_SIZE.search(rest) is None and _TIME.search(rest) is None):
        return False
    # a sentence that quotes a date and a file ("the Amdk6upd.exe update dated 09/18/98 11:00am
    # does not") has words around them; a row has at most a few (a product, a platform, a language)
    words = [w for w in _WORD.findall(rest[:name.start()] + " " + rest[name.end():]) if w.casefold() not in _UNITS]
    return len(words) <= 4


def stray_rows(lines: list[str], taken: set[int]) -> list[int]:
    """The 1-based numbers of lines that look like rows and are not in `taken`."""
    return [k for k, line in enumerate(lines, 1) if k not in taken and looks_like_row(line)]
