"""A service that cannot start from the restored before-state.

An undo puts every file back as the plan observed it before the run, a file that did not
exist then included: it is removed again. A service that ran before the run may need such a
file (it was started before the file went missing, or it ran without it until it was
stopped). Starting it again then fails with "the system cannot find the file specified",
and no attempt will ever do better: the restore is right, and the failure is a fact of the
before-state. So a start that fails that way, on a server whose touched files are all
verified byte for byte as before the run, does not fail the undo (which `recover` would
repeat for ever, refusing every `apply` meanwhile): the run ends rolled back, with a warning
that names the service, the file it cannot find and the files the before-state lacked, and
the way forward (apply again, which creates them, or put them back).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TargetError

MISSING_FILE = (2, 3)  # ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND


@dataclass
class CannotStart:
    server: str
    service: str
    error: str


def missing_file(exc: BaseException) -> bool:
    """Did a service start fail because a file it needs is not there?"""
    return isinstance(exc, TargetError) and getattr(exc, "winerror", 0) in MISSING_FILE


def account(item: CannotStart, lacked: list[str], where) -> str:
    """The warning for a service that cannot start from the restored before-state."""
    files = ", ".join(where(path) for path in lacked)
    created = (f"; the run had created {files}, which did not exist before it, so the restore removed "
               f"{'it' if len(lacked) == 1 else 'them'} again") if lacked else ""
    return (f"{item.server} service {item.service} ran before the run but cannot start from the restored files "
            f"({item.error}): every file the run touched on {item.server} is as before the run, so the before-state "
            f"already lacked what it needs{created}. The site is restored as it was; apply the playbook again (it "
            "creates the missing file) or put the file back, then start the service")
