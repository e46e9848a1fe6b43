"""Typed errors and the exit codes they map to.

Every error a user can see carries a message that says what is wrong and what to do.
The CLI maps each class to one exit code; nothing else decides exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # done, or nothing to do
    FAILED_RESTORED = 1  # the run failed and the site was restored
    BAD_INPUT = 2  # bad input or usage; nothing was touched
    MISMATCH = 3  # verification found files that do not match
    NOT_RESTORED = 4  # the site could not be restored; the journal says what to do


EXIT_CODES_HELP = (
    "Exit codes: 0 done (or nothing to do); 1 the run failed and the site was restored, or a server could not "
    "be reached and nothing was changed; 2 bad input or usage (credentials and host keys included), nothing "
    "touched; 3 verification found files that do not match; 4 the site could not be restored (the journal says "
    "what to do)."
)


class DeployerError(Exception):
    exit_code: ExitCode = ExitCode.FAILED_RESTORED


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class InputError(DeployerError):
    """Bad input: a playbook, manifest, inventory, plan or argument is wrong. Nothing was touched."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, location: Location | None = None, field: str | None = None):
        self.message = message
        self.location = location
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        field = f"{self.field}: " if self.field else ""
        return f"{prefix}{field}{self.message}"


class InputErrors(InputError):
    """Several input problems found in one pass, reported together."""

    def __init__(self, errors: list[InputError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class StalePlanError(InputError):
    """A saved plan no longer matches the target (or was edited): it is refused, untouched."""


class SiteLockedError(InputError):
    """Another run holds the site's lock."""


class ApplyFailed(DeployerError):
    """A run failed and every change was rolled back (verified)."""

    exit_code = ExitCode.FAILED_RESTORED


class RestoreFailed(DeployerError):
    """A run failed and the rollback did not complete: the site needs attention."""

    exit_code = ExitCode.NOT_RESTORED


class VerificationMismatch(DeployerError):
    exit_code = ExitCode.MISMATCH
