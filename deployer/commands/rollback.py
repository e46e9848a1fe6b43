"""`deployer rollback`: a run's backups put back, on a site or a fleet."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import RestoreFailed
from ..fleet.options import FleetDirOpt, MaxFailOpt, report_file
from ..report import out as outmod
from ..run.store import RunState
from .selection import Sites, takes_sites
from .common import BreakLockOpt, YesOpt, emit, run_context, fleet_cli


@takes_sites(reports=True)
def rollback(
    sites: Sites,
    run: Annotated[Optional[str], typer.Argument(help="Run ID (default: the latest committed run).")] = None,
    yes: YesOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Restore even files changed since the run (and replace a "
                                        "--report FILE deployer did not write).")] = False,
    break_lock: BreakLockOpt = False,
    max_fail: MaxFailOpt = None,
    fleet_dir: FleetDirOpt = None,
) -> None:
    """Restore a run's backups: files byte for byte with their write times, services as they were."""
    site_ref = sites.one_or_fleet(lambda inv, refs: fleet_cli.rollback(
        inv, refs, run, sites.fleet(max_fail=max_fail, fleet_dir=fleet_dir, force=force),
        yes=yes, force=force, break_lock=break_lock))
    stdout = outmod.stdout()
    rfmt = report_of(sites, "rollback", force)  # refused before the site is touched, as a fleet's
    from ..fleet.outcome import run_one
    from ..fleet.work import rollback_work

    with run_context(site_ref.name, yes=yes) as ctx:
        # a fleet of one: the work each site of a fleet does, on the run named (else the latest)
        outcome = run_one(rollback_work(force=force, break_lock=break_lock, run=run, alone=True), site_ref, ctx)
    if rfmt is not None:
        write_site_report(outcome, "rollback", site_ref, sites, rfmt, force)
    result = outcome.detail
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


def report_of(sites: Sites, command: str, force: bool) -> str | None:
    """The format of one site's --report FILE (None: no report), its file checked before the run."""
    if sites.report is None:
        return None
    fmt = report_file("text", None, sites.report, kind=command)[0]
    outmod.check_replace(sites.report, what="the fleet report", force=force)
    return fmt


def write_site_report(outcome, command: str, site_ref, sites: Sites, fmt: str, force: bool) -> None:
    """--report FILE for one site: what a fleet's report says of it (it was taken and then dropped before)."""
    from ..fleet.report import Heading, site_report

    head = Heading(note=sites.note, codes={site_ref.name: site_ref.code})
    emit(site_report(outcome, command, fmt, head), sites.report, f"Report written to {sites.report}.",
         what="the report", force=force)
