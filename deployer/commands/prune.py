"""`deployer prune`: old runs' backups removed from a site's servers."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..model.numbers import whole
from ..report import out as outmod
from .common import BreakLockOpt, InventoryOpt, SiteOpt, run_context, workflow


def prune(
    site: SiteOpt,
    keep: Annotated[Optional[int], typer.Option("--keep", parser=whole, help="The newest N runs keep their backups.")] = None,
    older_than: Annotated[Optional[str], typer.Option("--older-than", help="Only runs older than this (30d, 12h, 2w).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed; remove nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before removing.")] = False,
    inventory: InventoryOpt = None,
    break_lock: BreakLockOpt = False,
) -> None:
    """Remove old runs' backups from the servers; never those of the last committed run or an unfinished one."""
    from ..run import prune as prunemod

    age = prunemod.parse_age(older_than) if older_than is not None else None
    site_ref = workflow.inventory(inventory).site(site)
    stdout = outmod.stdout()

    with run_context(site_ref.name, yes=yes) as ctx:
        def confirm(result: prunemod.PruneResult) -> bool:
            if not yes and sys.stdin.isatty():  # the operator sees what goes before answering
                prunemod.render(prunemod.PruneResult(result.choices, True), stdout)
            return ctx.ask(f"Remove these backups from site {site_ref.name}? Those runs can no longer be rolled back.")

        result = prunemod.run(site_ref, keep=keep, older_than=age, dry_run=dry_run, ctx=ctx, confirm=confirm,
                              break_lock=break_lock)
    prunemod.render(result, stdout)
