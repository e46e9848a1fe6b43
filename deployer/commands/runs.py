"""`deployer runs`: the runs journaled on a site or a fleet, with their backups' space."""

from __future__ import annotations

from typing import Annotated

import typer

from ..fleet.options import (DEFAULT_FORKS, DEFAULT_MAX_PER_HOST, AllOpt, FleetArgs, ForksOpt, GroupOpt, MaxPerHostOpt,
                             ProcessesOpt, SitesOpt)
from ..report import out as outmod
from .common import Format, InventoryOpt, select_sites, workflow, write_json, fleet_cli


def runs(site: SitesOpt = None, inventory: InventoryOpt = None,
         format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
         group: GroupOpt = None, all_sites: AllOpt = False, forks: ForksOpt = DEFAULT_FORKS,
         max_per_host: MaxPerHostOpt = DEFAULT_MAX_PER_HOST, processes: ProcessesOpt = None) -> None:
    """List the runs journaled on a site, newest last."""
    from ..run import prune as prunemod

    refs = select_sites(workflow.inventory(inventory), site, group, all_sites)
    if len(refs) > 1:
        raise typer.Exit(fleet_cli.runs(refs, FleetArgs(forks=forks, max_per_host=max_per_host, processes=processes), fmt=format.value))
    site_ref = refs[0]
    found = prunemod.runs_with_space(site_ref)
    if format == Format.json:
        write_json([{**r.__dict__, "backup_bytes": s.bytes, "backup_servers": s.servers, "pruned": s.pruned,
                "backup_unreached": s.unreached}
               for r, s in found])
    else:
        from ..report.text import render_runs

        render_runs(site_ref.name, [r for r, _ in found], outmod.stdout(), {r.run: prunemod.describe(s) for r, s in found})
