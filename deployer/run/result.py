"""One result for every command that changes a site: apply, rollback and recover."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ApplyFailed, RestoreFailed
from ..sms.verify import Report
from .store import RunState


@dataclass
class RunResult:
    run: str | None
    status: RunState
    error: str | None = None  # why the run failed (or, for recover, why it decided as it did)
    report: Report | None = None
    journal: str | None = None  # where the journal is, as the operator would type it
    remaining: list[str] = field(default_factory=list)  # what is not restored, in words
    seconds: float = 0.0
    actions_done: int = 0
    timings: list[tuple[int, float]] = field(default_factory=list)  # (action number, seconds)
    site: str | None = None  # for the advice: the one command that finishes the job
    events: list[dict] = field(default_factory=list)  # the run's journal records: when each step began, the undo
    warnings: list[str] = field(default_factory=list)  # what the restored before-state lacks (run/before_state.py)

    @property
    def ok(self) -> bool:
        return self.status in (RunState.NOTHING, RunState.COMMITTED, RunState.FINISHED)

    def raise_for_status(self) -> None:
        if self.status == RunState.ROLLED_BACK:
            raise ApplyFailed(f"run {self.run} failed and the site was restored: {self.error}"
                              + "".join(f"\nWarning: {w}." for w in self.warnings))
        if self.status == RunState.ROLLBACK_FAILED:
            raise RestoreFailed(f"run {self.run} failed ({self.error}) and the site could NOT be fully restored:\n  "
                                + "\n  ".join(self.remaining)
                                + (f"\nThe journal is {self.journal}; fix" if self.journal else "\nFix")
                                + f" what is listed, then run `deployer recover --site {self.site or 'SITE'}`")
