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

from ..plan.model import Plan
from ..steps import kind_of
from ..targets.base import TargetError
from .context import RunContext
from .journal import Journal
from .result import RunResult
from .store import RunState, whoami
from .undo import Undo, file_differences, planned_services, service_differences


def end_state_differences(plan: Plan, conn) -> list[str]:
    files = file_differences(conn, [(t.server, t.path, t.after) for t in plan.touched()])
    return [f"{conn.endpoint(server).where(path)} is not the new file" for server, path, _ in files] + \
        service_differences(conn, planned_services(plan), "the plan leaves it")


def _where_it_stopped(plan: Plan, journal: Journal) -> str:
    events = journal.events
    if not events.trusted:
        bad = "; ".join(str(d) for d in events.damage[:3]) or \
            ("it is empty" if not events.items else "its first line, the run's start, is missing")
        return (f"at a point its journal cannot tell (journal damaged: {bad}); the plan and the backups on the "
                "servers say what to restore")
    begun = events.actions("begin")
    if events.of("rollback_begin"):
        return "while it was being rolled back"
    if events.of("failed"):
        return "after it failed, while undoing it"
    if not begun:
        staged = len(events.of("staged"))
        return f"while preparing (uploading and backing up, {staged} file(s) staged; no action had started)"
    last = max(begun)
    action = plan.action(last)
    finished = last in events.actions("done")
    return f"{'after' if finished else 'during'} action {last} of {len(plan.actions)} ({kind_of(action).describe(action)})"


def recover_run(plan: Plan, conn, journal: Journal, ctx: RunContext) -> RunResult:
    events = journal.events
    numbers = {a.number for a in plan.actions}
    done = events.actions("done")
    undoing = bool(events.of("failed") or events.of("rollback_begin") or events.of("undo_begin"))
    irreversible = [a for a in plan.actions if not kind_of(a).reversible and a.number in done]
    if events.trusted and not undoing and done == numbers:
        off = end_state_differences(plan, conn)
        if not off:
            reason = ("every action had completed when the run stopped (it was verifying or committing) and the site "
                      "is exactly in the plan's end state, so the run is finished")
            journal.write("recover_begin", decision="finish", reason=reason, **whoami())
            journal.write("committed", recovered=True)
            return RunResult(journal.run, RunState.FINISHED, reason)
        reason = ("every action had completed, but the site no longer matches the plan's end state ("
                  + "; ".join(off[:3]) + (" ..." if len(off) > 3 else "") + "), so the run is rolled back")
    else:
        reason = f"the run stopped {_where_it_stopped(plan, journal)}; a half-done run is rolled back, never " \
                 "guessed forward"
    if irreversible:
        reason += f" (control code{'s' if len(irreversible) > 1 else ''} already sent cannot be taken back)"
    try:
        journal.write("recover_begin", decision="rollback", reason=reason, **whoami())
    except TargetError as exc:  # a full disk under the journal: restoring the site comes first
        ctx.warn(f"Warning: the journal cannot be written ({exc}); rolling back anyway")
    ctx.say(f"Rolling back run {journal.run}: {reason}.")
    result = Undo(plan, conn, journal, ctx).run_all()
    return RunResult(journal.run, RunState.ROLLED_BACK if result.ok else RunState.ROLLBACK_FAILED, reason,
                     remaining=result.remaining)
