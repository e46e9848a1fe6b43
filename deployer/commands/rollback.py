"""`deployer rollback`: a run's backups put back, on a site or a fleet."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import RestoreFailed
from ..fleet.options import (DEFAULT_FORKS, DEFAULT_MAX_PER_HOST, AllOpt, FleetArgs, FleetDirOpt, ForksOpt, GroupOpt,
                             MaxFailOpt, MaxPerHostOpt, NoteOpt, ProcessesOpt, ReportOpt, SitesOpt)
from ..report import out as outmod
from ..run.store import RunState
from .common import BreakLockOpt, InventoryOpt, YesOpt, run_context, select_sites, workflow, fleet_cli


def rollback(
    site: SitesOpt = None,
    run: Annotated[Optional[str], typer.Argument(help="Run ID (default: the latest committed run).")] = None,
    inventory: InventoryOpt = None,
    yes: YesOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Restore even files changed since the run (and replace a "
                                        "--report FILE deployer did not write).")] = False,
    break_lock: BreakLockOpt = False,
    group: GroupOpt = None,
    all_sites: AllOpt = False,
    forks: ForksOpt = DEFAULT_FORKS,
    max_per_host: MaxPerHostOpt = DEFAULT_MAX_PER_HOST,
    max_fail: MaxFailOpt = None,
    fleet_dir: FleetDirOpt = None,
    report: ReportOpt = None,
    processes: ProcessesOpt = None,
    note: NoteOpt = None,
) -> None:
    """Restore a run's backups: files byte for byte with their write times, services as they were."""
    inv = workflow.inventory(inventory)
    refs = select_sites(inv, site, group, all_sites)
    if len(refs) > 1:
        raise typer.Exit(fleet_cli.rollback(inv, refs, run, FleetArgs(forks, None, 0, max_fail, fleet_dir, report, max_per_host, note=note, force=force, processes=processes),
                                            yes=yes, force=force, break_lock=break_lock))
    site_ref = refs[0]
    stdout = outmod.stdout()
    with run_context(site_ref.name, yes=yes) as ctx:
        outcome = workflow.rollback_run(site_ref, run, ctx, force=force, break_lock=break_lock)
    result = outcome.result
    if result is None:
        stdout.line("Nothing was done.")
    elif result.status == RunState.NOTHING:
        stdout.line(f"Nothing to roll back: {result.error}.", "good")
    elif result.status == RunState.ROLLED_BACK and result.warnings:  # a service the before-state cannot start
        stdout.line(f"Run {result.run} rolled back: every file of site {site_ref.name} is as before it.", "good")
        for w in result.warnings:
            stdout.line(f"  Warning: {w}.", "bad")
    elif result.status == RunState.ROLLED_BACK:
        stdout.line(f"Run {result.run} rolled back: every file and service of site {site_ref.name} is as before it.",
                    "good")
    else:
        raise RestoreFailed(f"run {result.run} could not be fully rolled back:\n  " + "\n  ".join(result.remaining))
