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

from ..model import winpath
from ..errors import RestoreFailed
from ..plan.model import Plan
from ..steps import kind_of
from ..targets.base import TargetError
from .context import RunContext
from .journal import Journal
from .result import RunResult
from .store import TEMP_MARK, RunState, run_dir, whoami
from .differences import file_differences, planned_services, service_differences
from .undo import Undo


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
    elif nothing_done(journal) and (events.trusted or not _backup_files(conn, journal.run)):
        # no action began: nothing to undo but what it staged (no service is stopped and restarted)
        where = _where_it_stopped(plan, journal) if events.trusted else \
            "before its first change (its journal holds no event: none had reached the disk)"
        reason = f"the run stopped {where}: nothing on the site had changed, so nothing was done; what it staged " \
                 "is removed"
        try:
            journal.write("recover_begin", decision="nothing", reason=reason, **whoami())
        except TargetError as exc:  # a full disk under the journal: the staged files are removed anyway
            ctx.warn(f"Warning: the journal cannot be written ({exc}); removing the staged files anyway")
        ctx.say(f"Closing run {journal.run}: {reason}.")
        result = Undo(plan, conn, journal, ctx).run_all([])
        return RunResult(journal.run, RunState.ROLLED_BACK if result.ok else RunState.ROLLBACK_FAILED, reason,
                         remaining=result.remaining, warnings=result.warnings)
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
                     remaining=result.remaining, warnings=result.warnings)


def _backup_files(conn, run: str) -> list[str]:
    """Every backup the run made, on every server that can be reached, in words."""
    found = []
    for ep in conn.endpoints.values():
        stack = [winpath.join(run_dir(run), "backup")]
        while stack:
            folder = stack.pop()
            try:
                if ep.files.stat(folder) is None:
                    continue
                entries = ep.files.listdir(folder)
            except TargetError as exc:
                found.append(f"{ep.where(folder)} cannot be read ({exc})")
                continue
            for e in entries:
                path = winpath.join(folder, e.name)
                stack.append(path) if e.is_dir else found.append(ep.where(path))
    return found


def nothing_done(journal: Journal) -> bool:
    """The journal shows that no action began: nothing on the site changed (the run had, at
    most, backed files up into its own folder and staged new ones under temporary names).

    A trusted journal says so with no `begin`. A journal with no event at all (none written,
    or only a first line torn by the kill) was never flushed: the first flushed event,
    `folders`, precedes every change, so nothing changed either; but such a journal may also
    have been emptied afterwards, so the caller checks that the run made no backup."""
    events = journal.events
    if events.trusted:
        return not events.of("begin")
    return not events.items and all(d.last and d.line > 0 for d in events.damage)


def close_without_plan(conn, journal: Journal, error: Exception, ctx: RunContext) -> RunResult:
    """A run whose plan cannot be read (killed while writing it, or before its bytes reached the
    disk) is closed as "nothing done" when its journal shows it changed nothing on the site:
    its temporary files (named in its journal) are removed and the journal ends the run. Any
    sign of a change and the unreadable plan stays an error (exit 4): without the plan nobody
    can tell what to restore."""
    backups = [] if journal.events.trusted else _backup_files(conn, journal.run)
    if not nothing_done(journal) or backups:
        if backups:
            raise RestoreFailed(f"{error}; the run made backups ({', '.join(backups[:3])}), so it may have changed "
                                "the site") from None
        raise error
    temps = [(e["server"], e["temp"]) for e in journal.events.of("staged")
             if isinstance(e.get("server"), str) and isinstance(e.get("temp"), str) and TEMP_MARK in e["temp"]]
    left = []
    for server, temp in temps:
        try:
            ep = conn.endpoint(server)
            if ep.files.stat(temp) is not None:
                ctx.say(f"  remove {ep.where(temp)} (a file the run had staged)")
                ep.files.remove(temp)
        except (TargetError, KeyError) as exc:
            left.append(f"{server} {temp}: the run's temporary file could not be removed ({exc})")
    reason = ("the run stopped before its first change (no action had begun; its plan was never fully written: "
              f"{error}), so nothing on the site had changed and there is nothing to undo")
    journal.write("recover_begin", decision="nothing", reason=reason, **whoami())
    if left:
        journal.write("rollback_failed", remaining=left)
        return RunResult(journal.run, RunState.ROLLBACK_FAILED, reason, remaining=left)
    journal.write("rolled_back", nothing_done=True)
    return RunResult(journal.run, RunState.ROLLED_BACK, reason)
