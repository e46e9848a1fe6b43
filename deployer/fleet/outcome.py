"""A site's outcome in a fleet, and the engine's case of one site (a fleet of one).

Apart from engine.py (threads, batches, the rollout) so that a one-site command, which runs the
same work a fleet's site does, loads only this: a one-site `plan` starts fast (issue 20, item 7).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from ..errors import DeployerError, ExitCode, NetworkError, RestoreFailed
from ..model.inventory import SiteRef
from ..run.context import Cancelled, RunContext


class SiteState(str, Enum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"  # applied (or planned, verified, rolled back, recovered) as asked
    NOTHING = "nothing"  # nothing to do
    MISMATCH = "mismatch"  # verify: files do not match the manifest
    FAILED = "failed"  # failed, and the site is as before (restored, or never changed)
    NOT_RESTORED = "not_restored"  # failed and could not be restored: needs `deployer recover`
    NOT_STARTED = "not_started"  # the rollout stopped before this site (max-fail, canary, Ctrl-C)
    # a server of the site could not be reached, and nothing was touched there (Ansible's recap
    # keeps `unreachable=` apart from `failed=`): never "restored", nothing needed restoring
    UNREACHABLE = "unreachable"

    def __str__(self) -> str:
        return self.value

    @property
    def finished_well(self) -> bool:
        return self in (SiteState.DONE, SiteState.NOTHING)

    @property
    def counts_as_failure(self) -> bool:
        return self in (SiteState.FAILED, SiteState.NOT_RESTORED, SiteState.UNREACHABLE)


# what each state means for the exit code of the fleet command
_EXIT = {SiteState.DONE: ExitCode.OK, SiteState.NOTHING: ExitCode.OK, SiteState.MISMATCH: ExitCode.MISMATCH,
         SiteState.FAILED: ExitCode.FAILED_RESTORED, SiteState.NOT_RESTORED: ExitCode.NOT_RESTORED,
         SiteState.NOT_STARTED: ExitCode.FAILED_RESTORED, SiteState.UNREACHABLE: ExitCode.FAILED_RESTORED, SiteState.WAITING: ExitCode.FAILED_RESTORED,
         SiteState.RUNNING: ExitCode.FAILED_RESTORED}


@dataclass
class SiteOutcome:
    site: str
    state: SiteState
    message: str = ""
    run: str | None = None
    seconds: float = 0.0
    actions: int = 0
    exit_code: int = 0  # the site's own exit code, as the one-site command would have ended
    detail: Any = None  # the plan, RunResult or Report, for renderers (not journaled)
    data: dict[str, Any] = field(default_factory=dict)  # JSON for the fleet report
    bytes: int = 0  # payload bytes sent to the site's servers (staged uploads), counted from its BYTES events
    section: Any = None  # the site's report section where its work built one (a rollback's undo record)

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "state": str(self.state), "message": self.message, "run": self.run,
                "seconds": round(self.seconds, 3), "actions": self.actions, "exit_code": self.exit_code,
                "bytes": self.bytes, **self.data}


Work = Callable[[SiteRef, RunContext], SiteOutcome]


def run_one(work: Work, site: SiteRef, ctx: RunContext | None = None) -> SiteOutcome:
    """A fleet of one: the engine's case of one site, in-process on the calling thread. The work is
    the fleet's (fleet/work.py), so a site alone and a site in a fleet do the same thing; what
    differs is who draws and asks: here the caller's context (the one-site console), and an error
    is the command's own, raised with its message and exit code rather than folded into an outcome."""
    t0 = time.monotonic()
    outcome = work(site, ctx if ctx is not None else RunContext(site.name))
    if not outcome.seconds:
        outcome.seconds = time.monotonic() - t0
    return outcome


def outcome_of_error(site: str, exc: BaseException, seconds: float) -> SiteOutcome:
    """A site whose work raised: bad input for this site, unreachable, locked... Nothing was
    changed there (a run that changed something returns its RunResult instead of raising),
    except a RestoreFailed, which says what is left."""
    if isinstance(exc, Cancelled):  # raised before the site's session opened (host_limits.py): nothing was done
        return SiteOutcome(site, SiteState.NOT_STARTED, f"not started: cancelled ({exc.reason})", seconds=seconds,
                           exit_code=int(ExitCode.FAILED_RESTORED))
    if isinstance(exc, RestoreFailed):
        return SiteOutcome(site, SiteState.NOT_RESTORED, str(exc), seconds=seconds,
                           exit_code=int(ExitCode.NOT_RESTORED))
    if isinstance(exc, NetworkError):  # raised, not a RunResult: the site was never changed
        return SiteOutcome(site, SiteState.UNREACHABLE, str(exc) or type(exc).__name__, seconds=seconds,
                           exit_code=int(exc.exit_code))
    if isinstance(exc, DeployerError):
        return SiteOutcome(site, SiteState.FAILED, str(exc) or type(exc).__name__, seconds=seconds,
                           exit_code=int(exc.exit_code))
    # A bug must not take the other sites down with it; the message names it for a report.
    return SiteOutcome(site, SiteState.FAILED, f"internal error: {type(exc).__name__}: {exc}", seconds=seconds,
                       exit_code=int(ExitCode.FAILED_RESTORED))
