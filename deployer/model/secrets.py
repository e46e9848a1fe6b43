"""Passwords: where they come from, and how they never leak.

An inventory names where a password is, never the password itself:
    password: {env: DEPLOYER_SMB_PASSWORD}     an environment variable
    password: {file: ~/.deployer/site.pw}      a file only its owner can read (0600 or 0400)
    password: {prompt: true}                   asked on the terminal when first needed
The value lives in a Secret, whose str() and repr() are masked, so it cannot end up in a
message, a plan, a journal or a report by accident; `reveal()` is called only where a
protocol library needs it.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from ..errors import InputError
from .common import Strict

from .redact import _SEEN, MASK, redact  # noqa: F401  (redact: imported from here by the fleet's report and journal)


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        if len(value) >= 4:
            _SEEN.add(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __reduce__(self):  # pickling would carry the value out of the process
        raise TypeError("a Secret cannot be pickled")


class SecretSource(Strict):
    env: str | None = None
    file: str | None = None
    prompt: Literal[True] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_literal(cls, v: Any) -> Any:
        if isinstance(v, (str, int)):
            raise ValueError("passwords are not written in the inventory; use {env: VARIABLE}, "
                             "{file: PATH} (a file readable only by you) or {prompt: true}")
        return v

    @model_validator(mode="after")
    def _one(self) -> "SecretSource":
        given = [k for k in ("env", "file", "prompt") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of env:, file: or prompt: for a password")
        return self

    def describe(self) -> str:
        if self.env:
            return f"environment variable {self.env}"
        if self.file:
            return f"credentials file {self.file}"
        return "a prompt"

    def resolve(self, base: Path, what: str) -> Secret:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise InputError(f"the password for {what} comes from the environment variable {self.env}, "
                                 "which is not set")
            return Secret(value)
        if self.file:
            return Secret(read_secret_file((base / os.path.expanduser(self.file)).resolve(), what))
        if not sys.stdin.isatty():
            raise InputError(f"the password for {what} is to be asked (prompt: true), but there is no terminal; "
                             "use {env: VARIABLE} or {file: PATH} for unattended runs")
        return Secret(getpass.getpass(f"Password for {what}: "))


def read_secret_file(path: Path, what: str) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"credentials file {path} for {what} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"credentials file {path} for {what} is not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"credentials file {path} for {what} is readable by others (mode "
                         f"{stat.S_IMODE(st.st_mode):04o}); make it private: chmod 600 {path}")
    if st.st_uid != os.getuid():
        raise InputError(f"credentials file {path} for {what} belongs to another user; it must be yours")
    text = path.read_text(encoding="utf-8").rstrip("\r\n")
    if not text:
        raise InputError(f"credentials file {path} for {what} is empty")
    return text
