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

from .apply import NOTHING, RunResult, Runner
from .errors import InputError, Location, RestoreFailed, StalePlanError
from .journal import COMMITTED, INTERRUPTED, ROLLED_BACK, Journal, list_runs, read_plan, whoami
from .lock import SiteLock
from .model.inventory import LoadedInventory, SiteRef, load_inventory
from .model.manifest import LoadedManifest, load_manifest
from .model.playbook import LoadedPlaybook, load_playbook
from .plan import Plan, ReplaceFile, ResetSite, build_plan, reobserve, site_digest
from .planfile import load_plan
from .rollback import Undo, current
from .targets.connect import SiteConnection, connect
from .verify import Report, default_checks, verify
from .yamlsrc import load_yaml

Say = Callable[[str], None]
Confirm = Callable[[Plan], bool]

DEFAULT_INVENTORY = Path("sites.yaml")


def inventory(path: Path | None) -> LoadedInventory:
    p = path or DEFAULT_INVENTORY
    if path is None and not p.exists():
        raise InputError("no sites.yaml here; run from the project folder or pass --inventory FILE", Location(str(p)))
    return load_inventory(p)


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
def locked(conn: SiteConnection, command: str, break_lock: bool) -> Iterator[SiteLock]:
    lock = SiteLock(conn.site_server.files, conn.site.name, command)
    lock.acquire(break_lock=break_lock)
    try:
        yield lock
    finally:
        lock.release()


# --- plan / apply ------------------------------------------------------------------------------


def make_plan(pb: LoadedPlaybook, site: SiteRef) -> Plan:
    with session(site) as conn:
        return build_plan(pb, site, conn)


@dataclass
class ApplyOutcome:
    plan: Plan
    result: RunResult | None  # None: the operator declined


def apply_playbook(pb: LoadedPlaybook, site: SiteRef, say: Say, confirm: Confirm, *, break_lock: bool = False,
                   show: Callable[[Plan], None] = lambda p: None) -> ApplyOutcome:
    with session(site) as conn:
        # Plan before locking, so that bad input is refused without writing anything to the
        # site (not even the lock); then hold the lock and make sure the plan still holds.
        plan = build_plan(pb, site, conn)
        with locked(conn, "apply", break_lock):
            if reobserve(conn, plan.observations):
                plan = build_plan(pb, site, conn)
            return _run(plan, conn, site, pb.manifest, say, confirm, show)


def _run(plan: Plan, conn: SiteConnection, site: SiteRef, manifest: LoadedManifest, say: Say, confirm: Confirm,
         show: Callable[[Plan], None]) -> ApplyOutcome:
    show(plan)
    if plan.empty:
        return ApplyOutcome(plan, RunResult(None, NOTHING))
    if not confirm(plan):
        return ApplyOutcome(plan, None)
    return ApplyOutcome(plan, Runner(plan, conn, site, manifest, say).execute())


def apply_saved(plan_path: Path, inv_path: Path | None, site_name: str | None, say: Say, confirm: Confirm, *,
                break_lock: bool = False, show: Callable[[Plan], None] = lambda p: None) -> ApplyOutcome:
    plan = load_plan(plan_path)
    loc = Location(str(plan_path))
    if site_name and site_name.casefold() != plan.site.casefold():
        raise InputError(f"the plan is for site {plan.site}, not {site_name}", loc)
    inv = inventory(inv_path or (Path(plan.inventory) if Path(plan.inventory).exists() else None))
    site = inv.site(plan.site)
    if site_digest(site) != plan.site_sha256:
        raise StalePlanError(f"site {plan.site} is defined differently in {inv.path} than when the plan was made; "
                             "make a new plan", loc)
    manifest = load_manifest(Path(plan.manifest))
    if hashlib.sha256(manifest.doc.text.encode()).hexdigest() != plan.manifest_sha256:
        raise StalePlanError(f"the manifest {plan.manifest} changed since the plan was made; make a new plan", loc)
    with session(site) as conn:
        _refuse_if_changed(conn, plan, loc)  # before the lock is taken (it is a write), and again after
        with locked(conn, "apply", break_lock):
            _refuse_if_changed(conn, plan, loc)
            return _run(plan, conn, site, manifest, say, confirm, show)


def _refuse_if_changed(conn: SiteConnection, plan: Plan, loc: Location) -> None:
    changes = reobserve(conn, plan.observations)
    if changes:
        raise StalePlanError("the target changed since the plan was made, so the plan is refused (nothing was "
                             "touched):\n  " + "\n  ".join(changes) + "\nMake a new plan.", loc)


# --- verify -------------------------------------------------------------------------------------


def verify_target(target: LoadedPlaybook | LoadedManifest, site: SiteRef) -> Report:
    with session(site) as conn:
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
    with session(site) as conn, locked(conn, "rollback", break_lock):
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
        plan = Plan.from_json(read_plan(files, run))
        drift = []
        for a in plan.actions:
            pairs = [(a.server, a.path, a.new)] if isinstance(a, ReplaceFile) else \
                [(c.server, c.path, c.after) for c in a.copies] if isinstance(a, ResetSite) else []
            for server, path, expected in pairs:
                ep = conn.endpoint(server)
                if not expected.same_content(current(ep, path)):
                    drift.append(f"{ep.where(path)} changed after run {run}")
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
