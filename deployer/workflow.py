"""The commands' workflows, free of any CLI concern: load -> plan -> apply -> verify -> report.

The CLI parses arguments and renders; everything that decides or touches a site is here
or below.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import inventory_source
from .apply import NOTHING, Progress, RunResult, Runner
from .errors import InputError, Location, RestoreFailed, StalePlanError
from .journal import COMMITTED, INTERRUPTED, ROLLED_BACK, Journal, list_runs, read_plan, unfinished_runs, whoami
from .lock import SiteLock
from .model.inventory import LoadedInventory, SiteRef, load_inventory
from .model.manifest import LoadedManifest, load_manifest
from .model.playbook import LoadedPlaybook, load_playbook
from .plan import Plan, build_plan, reobserve, site_digest
from .planfile import load_plan, locate
from .recover import Recovery, recover_run
from .rollback import Undo, file_differences
from .targets.base import TargetError
from .targets.connect import SiteConnection, connect
from .verify import Report, default_checks, verify
from .yamlsrc import load_yaml

Say = Callable[[str], None]
Confirm = Callable[[Plan], bool]


def inventory(path: Path | None) -> LoadedInventory:
    return load_inventory(inventory_source.resolve(path).path)  # --inventory, $DEPLOYER_INVENTORY, ./sites.yaml


def load_target(path: Path) -> LoadedPlaybook | LoadedManifest:
    """A playbook (has steps:) or a manifest (has files:)."""
    doc = load_yaml(path)
    if isinstance(doc.data, dict) and "steps" in doc.data:
        return load_playbook(path)
    if isinstance(doc.data, dict) and "files" in doc.data:
        return load_manifest(path)
    raise InputError("neither a playbook (with steps:) nor a manifest (with files:)", doc.location())


@contextmanager
def session(site: SiteRef) -> Iterator[SiteConnection]:
    conn = connect(site)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def locked(conn: SiteConnection, command: str, break_lock: bool, *, allow_unfinished: bool = False,
           say: Say = lambda s: None) -> Iterator[SiteLock]:
    """Hold the site lock; refuse to work on a site that an unfinished run left behind."""
    lock = SiteLock(conn.site_server.files, conn.site.name, command)
    lock.acquire(break_lock=break_lock)
    try:
        if not allow_unfinished:
            refuse_if_unfinished(conn)
        yield lock
    finally:
        try:
            lock.release()
        except TargetError as exc:
            # The outcome of the run matters more than the lock: report, never mask it.
            say(f"Warning: the site lock could not be removed ({exc}); the next command will find it and "
                "report whether its holder is gone")


def unfinished_message(conn: SiteConnection) -> str | None:
    pending = unfinished_runs(conn.site_server.files)
    if not pending:
        return None
    names = ", ".join(f"{r.run} ({r.state.replace('_', ' ')}, {r.kb or '?'} by {r.who or '?'})" for r in pending)
    return (f"site {conn.site.name} has an unfinished run: {names}. Its files may be half-patched; run "
            f"`deployer recover --site {conn.site.name}` to finish or roll it back first")


def refuse_if_unfinished(conn: SiteConnection) -> None:
    msg = unfinished_message(conn)
    if msg:
        raise InputError(msg)


# --- plan / apply ------------------------------------------------------------------------------


def make_plan(pb: LoadedPlaybook, site: SiteRef, warn: Say = lambda s: None) -> Plan:
    with session(site) as conn:
        if msg := unfinished_message(conn):
            warn(f"Warning: {msg}.")
        return build_plan(pb, site, conn)


@dataclass
class ApplyOutcome:
    plan: Plan
    result: RunResult | None  # None: the operator declined


def apply_playbook(pb: LoadedPlaybook, site: SiteRef, say: Say, confirm: Confirm, *, break_lock: bool = False,
                   show: Callable[[Plan], None] = lambda p: None, progress: Progress | None = None) -> ApplyOutcome:
    with session(site) as conn:
        # Plan before locking, so that bad input is refused without writing anything to the
        # site (not even the lock); then hold the lock and make sure the plan still holds.
        plan = build_plan(pb, site, conn)
        with locked(conn, "apply", break_lock, say=say):
            # The plan was made a moment ago in this process: sizes and write times tell whether
            # anyone got in before the lock, without reading (over SMB: downloading) every file again.
            # The backups are checked against the planned sha256 anyway before anything changes.
            if reobserve(conn, plan.observations, content=False):
                plan = build_plan(pb, site, conn)
            return _run(plan, conn, site, pb.manifest, say, confirm, show, progress)


def _run(plan: Plan, conn: SiteConnection, site: SiteRef, manifest: LoadedManifest, say: Say, confirm: Confirm,
         show: Callable[[Plan], None], progress: Progress | None) -> ApplyOutcome:
    show(plan)
    if plan.empty:
        return ApplyOutcome(plan, RunResult(None, NOTHING))
    if not confirm(plan):
        return ApplyOutcome(plan, None)
    return ApplyOutcome(plan, Runner(plan, conn, site, manifest, say, progress=progress).execute())


def apply_saved(plan_path: Path, inv_path: Path | None, site_name: str | None, say: Say, confirm: Confirm, *,
                break_lock: bool = False, show: Callable[[Plan], None] = lambda p: None,
                progress: Progress | None = None) -> ApplyOutcome:
    plan = load_plan(plan_path)
    loc = Location(str(plan_path))
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
    with session(site) as conn:
        _refuse_if_changed(conn, plan, loc)  # before the lock is taken (it is a write), and again after
        with locked(conn, "apply", break_lock, say=say):
            _refuse_if_changed(conn, plan, loc)
            return _run(plan, conn, site, manifest, say, confirm, show, progress)


def _check_servers(plan: Plan, site: SiteRef, plan_path: Path) -> None:
    """Every server a saved plan names must be a server of the site (a plan edited and re-signed,
    or a site that lost a server since, would otherwise fail half-way)."""
    known = {n.casefold() for n in site.site.servers}
    named: list[tuple[tuple[str | int, ...], str]] = []
    for i, a in enumerate(plan.actions):
        named.append((("actions", i, "server"), a.server))
        for k, c in enumerate(getattr(a, "copies", [])):
            named.append((("actions", i, "copies", k, "server"), c.server))
    named += [(("observations", i, "server"), o["server"]) for i, o in enumerate(plan.observations) if "server" in o]
    named += [(("checks", i, "server"), c.server) for i, c in enumerate(plan.checks)]
    for keypath, server in named:
        if server.casefold() not in known:
            raise StalePlanError(f"the plan names server {server!r}, which site {site.name} does not have (servers: "
                                 f"{', '.join(site.site.servers)}); make a new plan", locate(plan_path, *keypath))


def _refuse_if_changed(conn: SiteConnection, plan: Plan, loc: Location) -> None:
    changes = reobserve(conn, plan.observations)
    if changes:
        done = [r for r in list_runs(conn.site_server.files) if r.fingerprint == plan.fingerprint
                and r.state == COMMITTED]
        if done:
            raise StalePlanError(f"this plan was already applied: run {done[-1].run} ({done[-1].who}, "
                                 f"{done[-1].started}) committed it; a plan applies once. `deployer plan` shows "
                                 "what is left to do now", loc)
        raise StalePlanError("the target changed since the plan was made, so the plan is refused (nothing was "
                             "touched):\n  " + "\n  ".join(changes) + "\nMake a new plan.", loc)


# --- verify -------------------------------------------------------------------------------------


def verify_target(target: LoadedPlaybook | LoadedManifest, site: SiteRef, warn: Say = lambda s: None) -> Report:
    with session(site) as conn:
        if msg := unfinished_message(conn):
            warn(f"Warning: {msg}.")
        if isinstance(target, LoadedPlaybook):
            checks = build_plan(target, site, conn).checks
            return verify(target.manifest, site, conn, checks)
        return verify(target, site, conn, default_checks(target, site))


# --- runs and rollback ------------------------------------------------------------------------


def runs(site: SiteRef):
    with session(site) as conn:
        return list_runs(conn.site_server.files)


def rollback_run(site: SiteRef, run: str | None, say: Say, confirm: Callable[[str, Plan], bool], *,
                 force: bool = False, break_lock: bool = False) -> tuple[str, Plan | None, bool]:
    """Undo a committed run. Returns (run, plan, restored); restored False if declined."""
    with session(site) as conn, locked(conn, "rollback", break_lock, say=say):
        files = conn.site_server.files
        all_runs = list_runs(files)
        if run is None:
            committed = [r for r in all_runs if r.state == COMMITTED]
            if not committed:
                raise InputError(f"site {site.name} has no committed run to roll back")
            run = committed[-1].run
        match = [r for r in all_runs if r.run == run]
        if not match:
            known = ", ".join(r.run for r in all_runs) or "none"
            raise InputError(f"no run {run} on site {site.name}; runs: {known}")
        state = match[0].state
        if state == ROLLED_BACK:
            raise InputError(f"run {run} was already rolled back")
        if state == INTERRUPTED:
            raise InputError(f"run {run} was interrupted; use `deployer recover --site {site.name}`")
        if state != COMMITTED:
            raise InputError(f"run {run} is {state}; only a committed run can be rolled back "
                             f"(see `deployer recover`)")
        from .prune import refuse_if_pruned  # (a local import: prune uses this module's session and lock)

        refuse_if_pruned(files, run)
        plan = Plan.from_json(read_plan(files, run))
        drift = [f"{ep.where(path)} changed after run {run}"
                 for ep, path, _ in file_differences(conn, [(t.server, t.path, t.after) for t in plan.touched()])]
        if drift and not force:
            raise InputError("rolling back would overwrite changes made after the run:\n  " + "\n  ".join(drift)
                             + "\nRepeat with --force to restore the run's backups anyway.")
        if not confirm(run, plan):
            return run, plan, False
        journal = Journal.open(files, run)
        journal.write("rollback_begin", command="rollback", forced=bool(drift), **whoami())
        result = Undo(plan, conn, journal, say).run_all([a.number for a in plan.actions])
        if not result.ok:
            raise RestoreFailed(f"run {run} could not be fully rolled back:\n  " + "\n  ".join(result.remaining))
        return run, plan, True


# --- recovery -----------------------------------------------------------------------------------


def recover(site: SiteRef, say: Say, confirm: Callable[[str, str], bool], *, break_lock: bool = False
            ) -> list[Recovery]:
    """Finish or roll back every unfinished run of the site (see recover.py for the rule)."""
    with session(site) as conn, locked(conn, "recover", break_lock, allow_unfinished=True, say=say):
        files = conn.site_server.files
        out = []
        for info in unfinished_runs(files):
            if not confirm(info.run, info.state):
                continue
            plan = Plan.from_json(read_plan(files, info.run))
            out.append(recover_run(plan, conn, Journal.open(files, info.run), say))
        return out

