"""What a fleet does on one site, per command, and how each result reads as a SiteOutcome.

Each function returns the work for Fleet (fleet.py): it calls the same workflow the
one-site command calls, with the fleet's shared payload cache, and turns the result into
a state and one summary line.
"""

from __future__ import annotations


from . import workflow
from ..errors import ExitCode
from .outcome import SiteOutcome, SiteState, Work
from .leftover import truthful
from .procs import portable
from ..model.inventory import SiteRef
from ..model.manifest import LoadedManifest
from ..steps.playbook import LoadedPlaybook
from ..plan.planner import PayloadCache
from ..report.text import summary
from ..run.context import RunContext
from ..run.result import RunResult
from ..run.store import RunState


def _verdict(result: RunResult) -> str:
    if result.report is None:
        return ""
    return ("; verification " + result.report.verdict
            + "".join(f"; NOT VERIFIED: {line}; apply again when it can be reached" for line in result.report.not_verified()))


def from_run(site: str, kb: str, result: RunResult | None, *, trim: bool = True) -> SiteOutcome:
    if result is None:
        return SiteOutcome(site, SiteState.NOT_STARTED, "declined", exit_code=int(ExitCode.OK))
    # A fleet keeps every site's outcome to the end, for its report: not the run's events and
    # timings, which the site's own journal holds (they were most of a site's memory).
    if trim:
        result.events, result.timings = [], []
    base = dict(run=result.run, seconds=result.seconds, actions=result.actions_done, detail=result,
                data={"journal": result.journal, "remaining": result.remaining, "error": result.error,
                      "warnings": result.warnings, "report": result.report.to_json() if result.report else None})
    if result.status == RunState.NOTHING:
        return SiteOutcome(site, SiteState.NOTHING, f"nothing to do (already has {kb})", **base)  # type: ignore[arg-type]
    if result.status == RunState.COMMITTED:
        return SiteOutcome(site, SiteState.DONE, f"applied {kb}: {result.actions_done} actions in "
                           f"{result.seconds:.1f} s, run {result.run}{_verdict(result)}", **base)  # type: ignore[arg-type]
    if result.status == RunState.ROLLED_BACK:
        # a service the restored before-state cannot start is named, as a one-site apply does
        return SiteOutcome(site, SiteState.FAILED, f"FAILED and restored (run {result.run}): {result.error}"
                           + "".join(f"; warning: {w}" for w in result.warnings),
                           exit_code=int(ExitCode.FAILED_RESTORED), **base)  # type: ignore[arg-type]
    return SiteOutcome(site, SiteState.NOT_RESTORED,
                       f"FAILED and NOT restored (run {result.run}): {result.error}; left: "
                       + "; ".join(result.remaining) + f". Journal {result.journal}; then `deployer recover "
                       f"--site {site}`", exit_code=int(ExitCode.NOT_RESTORED), **base)  # type: ignore[arg-type]


@portable  # may run in a worker process (fleet_procs.py)
def apply_work(pb: LoadedPlaybook, payloads: PayloadCache, *, break_lock: bool, keep_reports: bool = True,
               recover_first: bool = False, alone: bool = False, checksum: bool = False) -> Work:
    """keep_reports: each site's verification (every file's row), for a report that shows it
    (JSON, JUnit, HTML); without one, a site's summary line says whether it passed.
    recover_first (a resumed fleet): a site left with an unfinished run under a lock whose
    holder is gone (the fleet was killed mid-site) is recovered first, as `recover` would,
    then applied; the outcome says so (fleet_leftover.py).
    alone (a site by itself): the detail is the whole ApplyOutcome (plan, run with its events and
    report) for the command's own output, and its errors are raised as they are."""
    def apply(site: SiteRef, ctx: RunContext) -> SiteOutcome:
        outcome = workflow.apply_playbook(pb, site, ctx, break_lock=break_lock, payloads=payloads,
                                          evidence=keep_reports, checksum=checksum)
        if alone:
            out = from_run(site.name, outcome.plan.kb, outcome.result, trim=False)
            out.detail = outcome
            return out
        # the site's section as its one-site page has it (actions, rollback record), made
        # before from_run drops the run's events
        section = None
        if keep_reports and outcome.result is not None:
            from ..report.html import apply_section

            section = apply_section(outcome.plan, outcome.result)
        out = from_run(site.name, outcome.plan.kb, outcome.result)
        if section is not None:
            out.detail = section
        out.data["plan_summary"] = summary(outcome.plan)
        if not keep_reports and outcome.result is not None:
            outcome.result.report = None
            out.data.pop("report", None)
        return out

    return apply if alone else truthful(apply, recover_first=recover_first)


@portable  # may run in a worker process (fleet_procs.py)
def plan_work(pb: LoadedPlaybook, payloads: PayloadCache, *, keep_plans: bool = True, keep_plan: bool = False,
              checksum: bool = False) -> Work:
    """keep_plans: each site's plan, as JSON, for a JSON report (a 1000-site fleet's plans are
    most of its memory: without a JSON report only the summary line is kept). keep_plan: the
    Plan itself as the detail (a site alone: shown, saved with -o)."""
    def work(site: SiteRef, ctx: RunContext) -> SiteOutcome:
        p = workflow.make_plan(pb, site, ctx, payloads=payloads, checksum=checksum)
        state = SiteState.NOTHING if p.empty else SiteState.DONE
        text = f"nothing to do (already has {p.kb})" if p.empty else summary(p)
        # the plan as JSON only, for the fleet's report: the Plan object would be kept twice
        return SiteOutcome(site.name, state, text, actions=len(p.actions), detail=p if keep_plan else None,
                           data={"plan": p.to_json()} if keep_plans else {})

    return work


@portable  # may run in a worker process (fleet_procs.py)
def verify_work(target: LoadedPlaybook | LoadedManifest, payloads: PayloadCache, *, keep_reports: bool = True,
                checksum: bool = False) -> Work:
    """keep_reports: every site's table, for a report that shows it; without one, only the
    tables of sites that do not match are kept (a 1000-site fleet's tables are most of its memory)."""
    def work(site: SiteRef, ctx: RunContext) -> SiteOutcome:
        report = workflow.verify_target(target, site, ctx, payloads=payloads, checksum=checksum)
        c = report.counts
        text = (f"{len(report.files)} files: " + ", ".join(f"{n} {s}" for s, n in c.items() if s != "unchecked")
                + (f", {c['unchecked']} not verified" if report.unchecked else "") + f". {report.verdict}"
                + "".join(f"; NOT VERIFIED: {line}" for line in report.not_verified()))
        keep = keep_reports or not report.ok
        return SiteOutcome(site.name, SiteState.DONE if report.ok else SiteState.MISMATCH, text,
                           exit_code=int(ExitCode.OK if report.ok else ExitCode.MISMATCH),
                           detail=report if keep else None, data={"report": report.to_json()} if keep else {})

    return work


@portable  # may run in a worker process (fleet_procs.py)
def rollback_work(*, force: bool, break_lock: bool, run: str | None = None, alone: bool = False) -> Work:
    """run: the run to undo (a site alone may name one; a fleet's sites undo their latest).
    alone (a site by itself): its errors are the command's own, raised as they are, not read
    against the site's run state as a fleet's site's are (leftover.py). The detail is the
    RunResult (None: declined)."""
    def work(site: SiteRef, ctx: RunContext) -> SiteOutcome:
        done = workflow.rollback_run(site, run, ctx, force=force, break_lock=break_lock)
        result = done.result
        if result is not None and result.status == RunState.NOTHING:
            return SiteOutcome(site.name, SiteState.NOTHING, f"nothing to roll back ({result.error})", detail=result)
        if result is not None and result.status == RunState.ROLLED_BACK:
            said = ("every file is as before it; warning: " + "; ".join(result.warnings)) if result.warnings else \
                "every file and service is as before it"  # a service the before-state cannot start is named
            out = SiteOutcome(site.name, SiteState.DONE, f"run {result.run} rolled back: {said}", run=result.run,
                              detail=result)
        else:
            out = from_run(site.name, "", result, trim=False)
        if result is not None and done.plan is not None:
            # the report's section: which hotfix the run had applied and what the undo restored, action
            # by action (the change ticket's record), made before the run's events are let go
            from ..report.html import describe_actions, undo_section

            out.section = undo_section(done.plan, result, describe_actions(done.plan), out.message)
            if not alone:
                result.events = []
        return out

    return work if alone else truthful(work)


@portable  # may run in a worker process (fleet_procs.py)
def recover_work(*, break_lock: bool, alone: bool = False) -> Work:
    """alone: as rollback_work's. The detail is the list of RunResults, one per unfinished run."""
    def work(site: SiteRef, ctx: RunContext) -> SiteOutcome:
        runs = workflow.recover_runs(site, ctx, break_lock=break_lock)
        out = outcome(site, [r for _, r in runs])
        for plan, result in runs:  # the report's section: the hotfix, the run, what the recovery did
            if plan is not None:
                from ..report.html import describe_actions, recover_section

                out.section = recover_section(plan, result, describe_actions(plan))
                out.run = out.run or result.run
            if not alone:
                result.events = []  # a fleet keeps each site's section, not its journal records
        return out

    def outcome(site: SiteRef, results: list[RunResult]) -> SiteOutcome:
        if not results:
            return SiteOutcome(site.name, SiteState.NOTHING, "nothing to recover", detail=results)
        lines = [f"run {r.run} {str(r.status).replace('_', ' ')}: {r.error}"
                 + "".join(f"; warning: {w}" for w in r.warnings) for r in results]
        if any(r.status == RunState.ROLLBACK_FAILED for r in results):
            left = [x for r in results for x in r.remaining]
            return SiteOutcome(site.name, SiteState.NOT_RESTORED, "; ".join(lines) + "; left: " + "; ".join(left),
                               exit_code=int(ExitCode.NOT_RESTORED), detail=results)
        if any(r.status == RunState.ROLLED_BACK for r in results):
            return SiteOutcome(site.name, SiteState.FAILED, "; ".join(lines), exit_code=int(ExitCode.FAILED_RESTORED),
                               detail=results)
        return SiteOutcome(site.name, SiteState.DONE, "; ".join(lines), detail=results)

    return work if alone else truthful(work)


@portable  # may run in a worker process (fleet_procs.py)
def runs_work() -> Work:
    """Each run with its backups' space (detail: (RunInfo, RunSpace) pairs), alone or in a fleet."""
    def work(site: SiteRef, ctx: RunContext) -> SiteOutcome:
        from ..run.prune import run_row, runs_with_space

        found = runs_with_space(site)
        latest = f"; latest {found[-1][0].run} {found[-1][0].state}" if found else ""
        return SiteOutcome(site.name, SiteState.DONE, f"{len(found)} runs{latest}", detail=found,
                           data={"runs": [run_row(r, s) for r, s in found]})

    return work


__all__ = ["apply_work", "from_run", "plan_work", "recover_work", "rollback_work", "runs_work", "verify_work"]


def from_remote(site: str, kb: str, result: dict) -> SiteOutcome:
    """A site run by its region's worker (workers/dispatch.py), read as a SiteOutcome."""
    status = result.get("status")
    where = f" on worker {result['worker']}" if result.get("worker") else ""
    data = {k: result.get(k) for k in ("journal", "remaining", "error", "warnings", "report", "worker", "recovered",
                                       "redelivered")}
    # detail: the worker's whole result, which a one-site `apply --broker` prints as it came
    base = dict(run=result.get("run"), seconds=float(result.get("seconds") or 0),
                actions=int(result.get("actions_done") or 0), data=data, detail=result)
    if status == "nothing":
        return SiteOutcome(site, SiteState.NOTHING, f"nothing to do (already has {kb}){where}", **base)
    if status in ("committed", "finished"):
        passed = (result.get("report") or {}).get("passed")
        verdict = "" if passed is None else "; verification " + ("PASSED" if passed else "FAILED")
        return SiteOutcome(site, SiteState.DONE, f"applied {kb}{where}: {base['actions']} actions in "
                           f"{base['seconds']:.1f} s, run {base['run']}{verdict}", **base)
    if status == "rolled_back":
        return SiteOutcome(site, SiteState.FAILED, f"FAILED and restored{where} (run {base['run']}): "
                           f"{result.get('error')}" + "".join(f"; warning: {w}" for w in result.get("warnings") or []),
                           exit_code=int(ExitCode.FAILED_RESTORED), **base)
    if status == "rollback_failed":
        return SiteOutcome(site, SiteState.NOT_RESTORED, f"FAILED and NOT restored{where} (run {base['run']}): "
                           f"{result.get('error')}; then `deployer recover --site {site}`",
                           exit_code=int(ExitCode.NOT_RESTORED), **base)
    if status == "unfinished":  # refused on a site an earlier run left half-patched: never "restored"
        return SiteOutcome(site, SiteState.NOT_RESTORED, f"NOT restored{where}: {result.get('error')}",
                           exit_code=int(ExitCode.NOT_RESTORED), **base)
    if status == "not_started":
        return SiteOutcome(site, SiteState.NOT_STARTED, f"not started: {result.get('error')}",
                           exit_code=int(ExitCode.FAILED_RESTORED), **base)
    if result.get("unreachable"):  # the worker could not reach the site: nothing was touched there
        return SiteOutcome(site, SiteState.UNREACHABLE, f"unreachable{where}: {result.get('error')}",
                           exit_code=int(result.get("exit_code") or ExitCode.FAILED_RESTORED), **base)
    return SiteOutcome(site, SiteState.FAILED, f"FAILED{where}: {result.get('error')}",
                       exit_code=int(result.get("exit_code") or ExitCode.FAILED_RESTORED), **base)


def regional_work(local: Work, dispatcher, kb: str) -> Work:
    """Sites naming a region go to that region's workers; the others run here, as `local` does."""
    def work(site: SiteRef, ctx: RunContext) -> SiteOutcome:
        if not site.site.region:
            return local(site, ctx)
        return from_remote(site.name, kb, dispatcher.run(site.name, site.site.region, ctx).result)

    return work
