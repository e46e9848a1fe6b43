"""`deployer runs`: the runs journaled on a site or a fleet, with their backups' space."""

from __future__ import annotations

from typing import Annotated

import typer

from ..report import out as outmod
from .selection import Sites, takes_sites
from .common import Format, write_json, fleet_cli


@takes_sites()
def runs(sites: Sites, format: Annotated[Format, typer.Option("--format", "-f")] = Format.text) -> None:
    """List the runs journaled on a site, newest last."""
    from ..run import prune as prunemod

    site_ref = sites.one_or_fleet(lambda inv, refs: fleet_cli.runs(refs, sites.fleet(), fmt=format.value))
    found = prunemod.runs_with_space(site_ref)
    if format == Format.json:
        write_json([{**r.__dict__, "backup_bytes": s.bytes, "backup_servers": s.servers, "pruned": s.pruned,
                "backup_unreached": s.unreached}
               for r, s in found])
    else:
        from ..report.text import render_runs

        render_runs(site_ref.name, [r for r, _ in found], outmod.stdout(), {r.run: prunemod.describe(s) for r, s in found})
