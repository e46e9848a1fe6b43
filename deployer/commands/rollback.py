"""`deployer rollback`: a run's backups put back, on a site or a fleet."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import RestoreFailed
from ..fleet.options import FleetDirOpt, MaxFailOpt
from ..report import out as outmod
from ..run.store import RunState
from .selection import Sites, takes_sites
from .common import BreakLockOpt, YesOpt, run_context, fleet_cli


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
    from ..fleet.outcome import run_one
    from ..fleet.work import rollback_work

    with run_context(site_ref.name, yes=yes) as ctx:
        # a fleet of one: the work each site of a fleet does, on the run named (else the latest)
        result = run_one(rollback_work(force=force, break_lock=break_lock, run=run, alone=True), site_ref, ctx).detail
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
