"""`deployer recover`: an interrupted run finished or rolled back, on a site or a fleet."""

from __future__ import annotations

import typer

from ..errors import ExitCode
from ..fleet.options import (DEFAULT_FORKS, DEFAULT_MAX_PER_HOST, AllOpt, FleetArgs, FleetDirOpt, ForksOpt, GroupOpt,
                             MaxPerHostOpt, NoteOpt, ProcessesOpt, ReportOpt, SitesOpt)
from ..report import out as outmod
from ..report.owned import ForceOpt
from ..run.store import RunState
from .common import BreakLockOpt, InventoryOpt, YesOpt, run_context, select_sites, workflow, fleet_cli


def recover(
    site: SitesOpt = None,
    inventory: InventoryOpt = None,
    yes: YesOpt = False,
    break_lock: BreakLockOpt = False,
    group: GroupOpt = None,
    all_sites: AllOpt = False,
    forks: ForksOpt = DEFAULT_FORKS,
    max_per_host: MaxPerHostOpt = DEFAULT_MAX_PER_HOST,
    fleet_dir: FleetDirOpt = None,
    report: ReportOpt = None,
    force: ForceOpt = False,
    processes: ProcessesOpt = None,
    note: NoteOpt = None,
) -> None:
    """Finish or roll back a run that was interrupted (killed, disconnected) or could not be rolled back."""
    inv = workflow.inventory(inventory)
    refs = select_sites(inv, site, group, all_sites)
    if len(refs) > 1:
        raise typer.Exit(fleet_cli.recover(inv, refs, FleetArgs(forks, None, 0, None, fleet_dir, report, max_per_host, note=note, force=force, processes=processes), yes=yes,
                                           break_lock=break_lock))
    site_ref = refs[0]
    stdout = outmod.stdout()
    with run_context(site_ref.name, yes=yes) as ctx:
        results = workflow.recover(site_ref, ctx, break_lock=break_lock)
    if not results:
        stdout.line(f"Nothing to recover: site {site_ref.name} has no unfinished run.", "good")
        return
    worst = ExitCode.OK
    for r in results:
        if r.status == RunState.FINISHED:
            stdout.line(f"Run {r.run} finished: {r.error}.", "good")
        elif r.status == RunState.ROLLED_BACK:
            stdout.line(f"Run {r.run} rolled back: {r.error}. Every file "
                        + ("is as before the run." if r.warnings else "and service is as before the run."), "good")
            for w in r.warnings:
                stdout.line(f"  Warning: {w}.", "bad")
            worst = max(worst, ExitCode.FAILED_RESTORED)
        else:
            stdout.line(f"Run {r.run} could NOT be fully rolled back ({r.error}):", "bad")
            for line in r.remaining:
                stdout.line(f"  {line}", "bad")
            worst = ExitCode.NOT_RESTORED
    raise typer.Exit(int(worst))
