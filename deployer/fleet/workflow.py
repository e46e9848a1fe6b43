"""The commands' workflows, free of any CLI concern: load -> plan -> apply -> verify -> report.

The CLI parses arguments and renders; everything that decides or touches a site is here
or below.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..model import inventory_source
from ..errors import InputError, Location, RestoreFailed, StalePlanError
from ..model.inventory import LoadedInventory, SiteRef, load_inventory
from ..model.manifest import LoadedManifest, load_manifest
from ..steps import kind_of
from ..steps.playbook import LoadedPlaybook, load_playbook
from ..plan.model import Plan
from ..plan.observe import changes
from ..plan.planner import PayloadCache, build_plan, site_digest
from ..run import context as ev
from ..run.context import RunContext
from ..run.journal import Journal, list_runs, run_plan, unfinished_runs
from ..run.result import RunResult
from ..run.store import RunState, whoami
from ..targets.connect import SiteConnection
from ..run.session import (  # noqa: F401  (commands call them as workflow.X)
    locked, recover_command, refuse_if_unfinished, session, unfinished_message)
from ..sms.verify import Report, default_checks, verify
from ..model.yamlsrc import load_yaml

# A one-site plan is the command run most, and its start-up is mostly imports: what only
# applying, rolling back, recovering or a saved plan needs (the runner, the undo, the saved-plan
# reader) is imported by the function that uses it (bench/startup.py measures it).


def inventory(path: Path | None) -> LoadedInventory:
    return load_inventory(inventory_source.resolve(path).path)  # --inventory, $DEPLOYER_INVENTORY, ./sites.yaml


def load_target(path: Path) -> LoadedPlaybook | LoadedManifest:
    """A playbook (has steps:) or a manifest (has files:, or groups: for several tables)."""
    doc = load_yaml(path)
    if isinstance(doc.data, dict) and "steps" in doc.data:
        return load_playbook(path)
    if isinstance(doc.data, dict) and ("files" in doc.data or "groups" in doc.data):
        return load_manifest(path)
    raise InputError("neither a playbook (with steps:) nor a manifest (with files:), nor one of several tables "
                     "(with groups:)", doc.location())


# --- plan / apply ------------------------------------------------------------------------------


def make_plan(pb: LoadedPlaybook, site: SiteRef, ctx: RunContext | None = None, *,
              payloads: PayloadCache | None = None, checksum: bool = False) -> Plan:
    """checksum: every file whose content decides is read, no recorded hash trusted (run/known.py)."""
    ctx = ctx or RunContext(site.name)
    with session(site, ctx, checksum=checksum) as conn:
        if msg := unfinished_message(conn):
            ctx.warn(f"Warning: {msg}.")
        return build_plan(pb, site, conn, payloads)


@dataclass
class ApplyOutcome:
    plan: Plan
    result: RunResult | None  # None: the operator declined


def apply_playbook(pb: LoadedPlaybook, site: SiteRef, ctx: RunContext, *, break_lock: bool = False,
                   payloads: PayloadCache | None = None, evidence: bool = False, checksum: bool = False) -> ApplyOutcome:
    """evidence: when there is nothing to do, verify the site in the same session, so a report
    shows each file as found (the proof that nothing needed doing), not one sentence.
    checksum: as make_plan's."""
    with session(site, ctx, checksum=checksum) as conn:
        # Plan before locking, so that bad input is refused without writing anything to the
        # site (not even the lock); then hold the lock and make sure the plan still holds.
        plan = build_plan(pb, site, conn, payloads)
        with locked(conn, "apply", break_lock, ctx):
            # The plan was made a moment ago in this process: sizes and write times tell whether
            # anyone got in before the lock, without reading (over SMB: downloading) every file again.
            # The backups are checked against the planned sha256 anyway before anything changes.
            if changes(conn, plan.observations, content=False,
                       payload_sha256=payloads.sha256 if payloads is not None else None):
                plan = build_plan(pb, site, conn, payloads)
            done = _run(plan, conn, site, pb.manifest, ctx)
            if evidence and done.result is not None and done.result.status == RunState.NOTHING:
                done.result.report = verify(pb.manifest, site, conn, plan.checks)
            return done


def _run(plan: Plan, conn: SiteConnection, site: SiteRef, manifest: LoadedManifest, ctx: RunContext) -> ApplyOutcome:
    ctx.emit(ev.PLAN, plan=plan)
    if plan.empty:
        return ApplyOutcome(plan, RunResult(None, RunState.NOTHING))
    from ..run.apply import Runner

    runner = Runner(plan, conn, site, manifest, ctx)  # refuses what must never run (stand-ins) before the question
    if not ctx.ask(f"Apply these {len(plan.actions)} actions to site {plan.site}?", plan=plan):
        return ApplyOutcome(plan, None)
    result = runner.execute()
    ctx.emit(ev.RESULT, result=result)
    return ApplyOutcome(plan, result)


def apply_saved(plan_path: Path, inv_path: Path | None, site_name: str | None, ctx: RunContext, *,
                break_lock: bool = False, checksum: bool = False) -> ApplyOutcome:
    plan, site, manifest = check_saved(plan_path, inv_path, site_name)
    loc = Location(str(plan_path))
    ctx.site = site.name
    with session(site, ctx, checksum=checksum) as conn:
        _refuse_if_changed(conn, plan, loc)  # before the lock is taken (it is a write), and again after
        with locked(conn, "apply", break_lock, ctx):
            _refuse_if_changed(conn, plan, loc)
            return _run(plan, conn, site, manifest, ctx)


def check_saved(plan_path: Path, inv_path: Path | None, site_name: str | None = None
                ) -> tuple[Plan, SiteRef, LoadedManifest]:
    """What `apply PLAN` checks before it connects (`deployer validate PLAN` runs the same): the
    plan file itself, its site as the inventory defines it now, its servers, its manifest."""
    from ..plan.saved import load_plan, locate

    plan = load_plan(plan_path)
    if site_name and site_name.casefold() != plan.site.casefold():
        raise InputError(f"the plan is for site {plan.site}, not {site_name}", locate(plan_path, "site"))
    inv = inventory(inv_path or (Path(plan.inventory) if Path(plan.inventory).exists() else None))
    site = inv.site(plan.site)
    if site_digest(site) != plan.site_sha256:
        raise StalePlanError(f"site {plan.site} is defined differently in {inv.path} than when the plan was made; "
                             "make a new plan", locate(plan_path, "site_sha256"))
    _check_servers(plan, site, plan_path)
    if not Path(plan.manifest).is_file():
        raise StalePlanError(f"the plan's manifest {plan.manifest} is gone; make a new plan",
                             locate(plan_path, "manifest"))
    manifest = load_manifest(Path(plan.manifest))
    if hashlib.sha256(manifest.doc.text.encode()).hexdigest() != plan.manifest_sha256:
        raise StalePlanError(f"the manifest {plan.manifest} changed since the plan was made; make a new plan",
                             locate(plan_path, "manifest_sha256"))
    return plan, site, manifest


def _check_servers(plan: Plan, site: SiteRef, plan_path: Path) -> None:
    """Every server a saved plan names must be a server of the site (a plan edited and re-signed,
    or a site that lost a server since, would otherwise fail half-way)."""
    from ..plan.saved import locate

    known = {n.casefold() for n in [*site.site.servers, *site.site.pcm_hosts]}  # PCM service hosts too
    named: list[tuple[tuple[str | int, ...], str]] = []
    for i, a in enumerate(plan.actions):  # each kind names its servers (copies, copy lists...)
        named += [(("actions", i, *sub), server) for sub, server in kind_of(a).server_names(a)]
    named += [(("observations", i, "server"), o["server"]) for i, o in enumerate(plan.observations) if "server" in o]
    named += [(("checks", i, "server"), c.server) for i, c in enumerate(plan.checks)]
    for keypath, server in named:
        if server.casefold() not in known:
            raise StalePlanError(f"the plan names server {server!r}, which site {site.name} does not have (servers: "
                                 f"{', '.join(site.site.servers)}); make a new plan", locate(plan_path, *keypath))


def _refuse_if_changed(conn: SiteConnection, plan: Plan, loc: Location) -> None:
    found = changes(conn, plan.observations)
    if found:
        done = [r for r in list_runs(conn.site_server.files) if r.fingerprint == plan.fingerprint
                and r.state == RunState.COMMITTED]
        if done:
            raise StalePlanError(f"this plan was already applied: run {done[-1].run} ({done[-1].who}, "
                                 f"{done[-1].started}) committed it; a plan applies once. `deployer plan` shows "
                                 "what is left to do now", loc)
        raise StalePlanError("the target changed since the plan was made, so the plan is refused (nothing was "
                             "touched):\n  " + "\n  ".join(found) + "\nMake a new plan.", loc)


# --- verify -------------------------------------------------------------------------------------


def verify_target(target: LoadedPlaybook | LoadedManifest, site: SiteRef, ctx: RunContext | None = None, *,
                  payloads: PayloadCache | None = None, checksum: bool = False) -> Report:
    ctx = ctx or RunContext(site.name)
    with session(site, ctx, checksum=checksum) as conn:
        if msg := unfinished_message(conn):
            ctx.warn(f"Warning: {msg}.")
        if isinstance(target, LoadedPlaybook):
            checks = build_plan(target, site, conn, payloads).checks
            return verify(target.manifest, site, conn, checks)
        return verify(target, site, conn, default_checks(target, site))


# --- runs and rollback ------------------------------------------------------------------------


def runs(site: SiteRef):
    with session(site) as conn:
        return list_runs(conn.site_server.files)


@dataclass
class RollbackOutcome:
    plan: Plan | None
    result: RunResult | None  # None: the operator declined


def rollback_run(site: SiteRef, run: str | None, ctx: RunContext, *, force: bool = False,
                 break_lock: bool = False) -> RollbackOutcome:
    """Undo a committed run (the latest by default). Nothing to undo is not an error."""
    with session(site, ctx) as conn, locked(conn, "rollback", break_lock, ctx):
        files = conn.site_server.files
        all_runs = list_runs(files)
        if run is None:
            committed = [r for r in all_runs if r.state == RunState.COMMITTED]
            if not committed:
                return RollbackOutcome(None, RunResult(None, RunState.NOTHING,
                                                       f"site {site.name} has no committed run to roll back"))
            run = committed[-1].run
        match = [r for r in all_runs if r.run == run]
        if not match:
            known = ", ".join(r.run for r in all_runs) or "none"
            raise InputError(f"no run {run} on site {site.name}; runs: {known}")
        state = match[0].state
        if state == RunState.ROLLED_BACK:
            raise InputError(f"run {run} was already rolled back")
        if state == RunState.INTERRUPTED:
            raise InputError(f"run {run} was interrupted; use `{recover_command(conn)}`")
        if state != RunState.COMMITTED:
            raise InputError(f"run {run} is {state}; only a committed run can be rolled back "
                             f"(see `deployer recover`)")
        from ..run.prune import refuse_if_pruned  # (a local import: prune uses this module's session and lock)
        from ..run.differences import file_differences
        from ..run.undo import Undo

        refuse_if_pruned(files, run)
        plan = run_plan(files, run)
        drift = [f"{conn.endpoint(server).where(path)} changed after run {run}"
                 for server, path, _ in file_differences(conn, [(t.server, t.path, t.after) for t in plan.touched()])]
        if drift and not force:
            raise InputError("rolling back would overwrite changes made after the run:\n  " + "\n  ".join(drift)
                             + "\nRepeat with --force to restore the run's backups anyway.")
        ctx.say(f"Run {run} applied {plan.kb} to {plan.site}: {summary_line(plan)}")
        if not ctx.ask(f"Undo run {run} on site {plan.site}?", plan=plan):
            return RollbackOutcome(plan, None)
        journal = Journal.open(files, run)
        ctx.changing = True
        try:
            journal.write("rollback_begin", command="rollback", forced=bool(drift), **whoami())
            undo = Undo(plan, conn, journal, ctx).run_all([a.number for a in plan.actions])
        finally:
            ctx.changing = False
        status = RunState.ROLLED_BACK if undo.ok else RunState.ROLLBACK_FAILED
        result = RunResult(run, status, None if undo.ok else "the rollback could not complete",
                           journal=conn.site_server.where(journal.dir), remaining=undo.remaining,
                           warnings=undo.warnings, events=list(journal.events.items))  # the undo's timings
        ctx.emit(ev.RESULT, result=result)
        return RollbackOutcome(plan, result)


def summary_line(plan: Plan) -> str:
    from ..report.text import summary

    return summary(plan)


# --- recovery -----------------------------------------------------------------------------------


def recover(site: SiteRef, ctx: RunContext, *, break_lock: bool = False) -> list[RunResult]:
    """Finish or roll back every unfinished run of the site (see run/recover.py for the rule)."""
    return [result for _, result in recover_runs(site, ctx, break_lock=break_lock)]


def recover_runs(site: SiteRef, ctx: RunContext, *, break_lock: bool = False) -> list[tuple[Plan | None, RunResult]]:
    """recover's results, each with the plan of the run it recovered (None: the run's plan could
    not be read) and the run's journal records (what a report of the recovery shows)."""
    from ..run.recover import close_without_plan, recover_run

    with session(site, ctx) as conn, locked(conn, "recover", break_lock, ctx, allow_unfinished=True):
        files = conn.site_server.files
        out = []
        for info in unfinished_runs(files):
            if not ctx.ask(f"Recover run {info.run} ({info.state}) on site {site.name}?"):
                continue
            journal = Journal.open(files, info.run)
            try:
                plan = run_plan(files, info.run)
            except RestoreFailed as exc:  # killed while writing it? then the journal shows nothing done
                ctx.changing = True
                try:
                    result = close_without_plan(conn, journal, exc, ctx)
                finally:
                    ctx.changing = False
                ctx.emit(ev.RESULT, result=result)
                out.append((None, result))
                continue
            ctx.changing = True
            try:
                if kept := journal.set_aside_if_unreadable():
                    ctx.say(f"The journal of run {info.run} cannot be read; it is kept as {kept} and a new one "
                            "records this recovery.")
                result = recover_run(plan, conn, journal, ctx)
            finally:
                ctx.changing = False
            result.events = list(journal.events.items)  # the recovery's timings, for its report
            ctx.emit(ev.RESULT, result=result)
            out.append((plan, result))
        return out
