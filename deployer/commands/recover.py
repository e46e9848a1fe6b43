"""`deployer recover`: an interrupted run finished or rolled back, on a site or a fleet."""

from __future__ import annotations

import typer

from ..errors import ExitCode
from ..fleet.options import FleetDirOpt
from ..report import out as outmod
from ..report.owned import ForceOpt
from ..run.store import RunState
from .selection import Sites, takes_sites
from .common import BreakLockOpt, YesOpt, run_context, fleet_cli
from .rollback import report_of, write_site_report


@takes_sites(reports=True)
def recover(
    sites: Sites,
    yes: YesOpt = False,
    break_lock: BreakLockOpt = False,
    fleet_dir: FleetDirOpt = None,
    force: ForceOpt = False,
) -> None:
    """Finish or roll back a run that was interrupted (killed, disconnected) or could not be rolled back."""
    site_ref = sites.one_or_fleet(lambda inv, refs: fleet_cli.recover(
        inv, refs, sites.fleet(fleet_dir=fleet_dir, force=force), yes=yes,
        break_lock=break_lock))
    stdout = outmod.stdout()
    rfmt = report_of(sites, "recover", force)  # refused before the site is touched, as a fleet's
    from ..fleet.outcome import run_one
    from ..fleet.work import recover_work

    with run_context(site_ref.name, yes=yes) as ctx:
        # a fleet of one: the work each site of a fleet does
        outcome = run_one(recover_work(break_lock=break_lock, alone=True), site_ref, ctx)
    if rfmt is not None:
        write_site_report(outcome, "recover", site_ref, sites, rfmt, force)
    results = outcome.detail
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
