"""Numbers an operator types on the command line: ASCII digits only.

Python's `str.isdigit` accepts '²' (which `int` then refuses: a traceback), `int` and `float`
accept '٣' (Arabic-Indic three), '1_000', ' 7 ' and, for float, 'nan' and 'inf'; `\\d` in a
regex matches every script's digits. A count of sites or seconds is written 0-9, so anything
else is bad input (exit 2) that says what is allowed.
"""

from __future__ import annotations

import re

import typer

WHOLE = re.compile(r"[0-9]{1,9}")  # 9 digits: any count or code deployer takes, never a huge int
DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")


def is_whole(text: str) -> bool:
    return WHOLE.fullmatch(text) is not None


def whole(value: str | int) -> int:
    """A typer `parser=` for a whole-number option (--forks, --keep, --canary ...)."""
    if isinstance(value, int):  # the default
        return value
    text = value.strip()
    # a minus sign passes: the command's own check says what is allowed ("--keep -1 is negative")
    if not is_whole(text.removeprefix("-")):
        raise typer.BadParameter(f"{value!r} is not a whole number; write it in the digits 0-9, e.g. 10")
    return int(text)


def decimal(value: str | float) -> float:
    """A typer `parser=` for a number of seconds (--worker-wait)."""
    if isinstance(value, (int, float)):
        return float(value)
    if not DECIMAL.fullmatch(value.strip()):
        raise typer.BadParameter(f"{value!r} is not a number; write it in the digits 0-9 with an optional "
                                 "decimal point, e.g. 300 or 2.5")
    return float(value)
