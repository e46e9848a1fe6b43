"""Recovery of a run that did not finish: the process was killed, the machine lost power,
the network went away, or its rollback could not complete.

The journal on the site says how far the run got. The rule is simple and conservative:
  - every action had completed (the run died while verifying or committing) and the site
    is exactly in the plan's end state (every new file byte for byte with its write
    time, every service as the plan leaves it): the run is FINISHED and committed;
  - anything else: the run is ROLLED BACK with the same undo engine a failing apply uses.
    A half-done run is never guessed forward: its hotfix files would be in place with
    services and the site reset in an unknown order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .journal import Journal, whoami
from .plan import Plan, ResetSite, SendCode, StartService, StopService, describe
from .rollback import Undo, file_differences, service_differences
from .targets.base import RUNNING, STOPPED
from .targets.connect import SiteConnection

FINISHED, ROLLED_BACK, NOT_RESTORED = "finished", "rolled_back", "rollback_failed"


@dataclass
class Recovery:
    run: str
    outcome: str  # finished, rolled_back, rollback_failed
    reason: str
    remaining: list[str] = field(default_factory=list)


def planned_services(plan: Plan) -> dict[tuple[str, str], str]:
    """Each observed service's state at the end of the plan."""
    states = {(o["server"], o["service"]): o["state"] for o in plan.observations if o["kind"] == "service"}
    for a in plan.actions:
        if isinstance(a, StopService):
            states[(a.server, a.service)] = STOPPED
        elif isinstance(a, StartService):
            states[(a.server, a.service)] = RUNNING
        elif isinstance(a, ResetSite):
            states[(a.server, "SMS_SITE_CONFIG_MANAGER")] = RUNNING
    return states


def end_state_differences(plan: Plan, conn: SiteConnection) -> list[str]:
    files = file_differences(conn, [(t.server, t.path, t.after) for t in plan.touched()])
    return [f"{ep.where(path)} is not the new file" for ep, path, _ in files] + \
        service_differences(conn, planned_services(plan), "the plan leaves it")

def _where_it_stopped(plan: Plan, events: list[dict]) -> str:
    begun = [e["action"] for e in events if e["event"] == "begin"]
    if any(e["event"] in ("rollback_begin",) for e in events):
        return "while it was being rolled back"
    if any(e["event"] == "failed" for e in events):
        return "after it failed, while undoing it"
    if not begun:
        staged = sum(1 for e in events if e["event"] == "staged")
        return f"while preparing (uploading and backing up, {staged} file(s) staged; no action had started)"
    last = max(begun)
    action = next(a for a in plan.actions if a.number == last)
    finished = any(e["event"] == "done" and e["action"] == last for e in events)
    return (f"{'after' if finished else 'during'} action {last} of {len(plan.actions)} ({describe(action)})")


def recover_run(plan: Plan, conn: SiteConnection, journal: Journal, say: Callable[[str], None]) -> Recovery:
    events = journal.events
    numbers = {a.number for a in plan.actions}
    done = {e["action"] for e in events if e["event"] == "done"}
    undoing = any(e["event"] in ("failed", "rollback_begin", "undo_begin") for e in events)
    codes = [a for a in plan.actions if isinstance(a, SendCode) and a.number in done]
    if not undoing and done == numbers:
        off = end_state_differences(plan, conn)
        if not off:
            reason = ("every action had completed when the run stopped (it was verifying or committing) and the site "
                      "is exactly in the plan's end state, so the run is finished")
            journal.write("recover_begin", decision="finish", reason=reason, **whoami())
            journal.write("committed", recovered=True)
            return Recovery(journal.run, FINISHED, reason)
        reason = ("every action had completed, but the site no longer matches the plan's end state ("
                  + "; ".join(off[:3]) + (" ..." if len(off) > 3 else "") + "), so the run is rolled back")
    else:
        reason = f"the run stopped {_where_it_stopped(plan, events)}; a half-done run is rolled back, never " \
                 "guessed forward"
    if codes:
        reason += f" (control code{'s' if len(codes) > 1 else ''} already sent cannot be taken back)"
    journal.write("recover_begin", decision="rollback", reason=reason, **whoami())
    say(f"Rolling back run {journal.run}: {reason}.")
    result = Undo(plan, conn, journal, say).run_all()
    return Recovery(journal.run, ROLLED_BACK if result.ok else NOT_RESTORED, reason, result.remaining)
