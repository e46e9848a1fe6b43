"""`deployer runs`: the runs journaled on a site or a fleet, with their backups' space."""

from __future__ import annotations

from typing import Annotated

import typer

from ..report import formats, out as outmod
from .selection import Sites, takes_sites
from .common import fleet_cli, format_choices

RunsFormat = format_choices("runs", "RunsFormat")


@takes_sites()
def runs(sites: Sites,
         format: Annotated[RunsFormat, typer.Option("--format", "-f")] = RunsFormat.text,  # type: ignore[valid-type]
         ) -> None:
    """List the runs journaled on a site, newest last."""
    from ..fleet.outcome import run_one
    from ..fleet.work import runs_work

    site_ref = sites.one_or_fleet(lambda inv, refs: fleet_cli.runs(refs, sites.fleet(), fmt=format.value))
    outcome = run_one(runs_work(), site_ref)  # a fleet of one: the same work each site of a fleet does
    formats.show(format.value, "runs", formats.SiteReport(site=site_ref.name, runs=outcome.detail,
                                                          data=outcome.data["runs"]), outmod.stdout())
