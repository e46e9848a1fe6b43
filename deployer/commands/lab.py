"""`deployer lab init`: pre-hotfix SMS 1.2 sites on the mock target, and stand-in hotfix files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import EXIT_CODES_HELP, InputError
from ..fleet.options import complete_site
from ..report import out as outmod
from .catalog import lab_patches
from .common import InventoryOpt, lab, load_playbook, workflow

app = typer.Typer(help="Lab sites on the embedded mock target, for trying deployer without a server.",
                  no_args_is_help=True, epilog=EXIT_CODES_HELP)


@app.command("init", epilog=EXIT_CODES_HELP)
def lab_init(
    site_arg: Annotated[Optional[str], typer.Argument(metavar="[SITE]", help="Site to create (a mock site of the inventory); same as --site.", autocompletion=complete_site)] = None,
    site_opt: Annotated[Optional[str], typer.Option("--site", "-s", help="Site to create (a mock site of the inventory).", autocompletion=complete_site)] = None,
    all_sites: Annotated[bool, typer.Option("--all", help="Every mock site of the inventory.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Recreate sites that exist (their state is lost) and rewrite lab's own stand-ins; files lab did not write are never replaced.")] = False,
    inventory: InventoryOpt = None,
    playbooks: Annotated[Optional[list[Path]], typer.Option("--playbook", "-p", help="Playbooks whose stand-in payloads to write (default: every playbook under playbooks/ beside the inventory).")] = None,
    patched_with: Annotated[Optional[list[str]], typer.Option("--patched-with", metavar="Q[:FILE+FILE],...", help="Create the site with these hotfixes' files at their manifests' level (only the FILEs named: half-patched); needs a new site or --force.")] = None,
    catalog: Annotated[Optional[Path], typer.Option("--catalog", "-c", help="Manifests for --patched-with (default: manifests/ beside the inventory).")] = None,
) -> None:
    """Create a pre-hotfix SMS 1.2 site on the mock target, and stand-in hotfix files."""
    if site_arg and site_opt and site_arg.casefold() != site_opt.casefold():
        raise InputError(f"two sites named: {site_arg} and --site {site_opt}; name one")
    site = site_opt or site_arg
    inv = workflow.inventory(inventory)
    if all_sites == (site is not None):
        raise InputError("name one site, or pass --all")
    targets = inv.all_sites() if all_sites else [inv.site(site)]  # type: ignore[arg-type]
    targets = [t for t in targets if t.site.mock is not None]
    if not targets:
        raise InputError("no mock site to create (a mock site has mock: {path: ...} in the inventory)")
    stdout = outmod.stdout()
    patches = lab_patches(patched_with, catalog, inventory, targets, force)
    for t in targets:
        from ..run.lab_claim import claimed  # --force deletes a site only under its lock, no run unfinished

        rep = lab.init_mock_site(t, force=force, patch=patches(t) if patches else None, claim=claimed)
        if rep.created:
            servers = ", ".join(t.site.servers) + "".join(f"; PCM service host {h}" for h in t.site.pcm_hosts)
            stdout.line(f"Created mock site {t.name} ({t.code}) at {rep.created[0]}: servers {servers}; "
                        f"platforms {', '.join(p.key for p in t.site.platform_list)}.")
        else:
            stdout.line(f"Mock site {t.name} exists at {rep.kept[0]}; left as it is (--force recreates it).")
    books = playbooks or sorted((inv.path.parent / "playbooks").glob("*.yaml"))
    for b in books:
        pay = lab.init_payloads(load_playbook(b), force=force)
        if pay.written:
            stdout.line(f"Wrote {len(pay.written)} stand-in hotfix files for {b.name} under "
                        f"{Path(pay.written[0]).parent.parent}.")
        for kept in pay.kept:  # lab rewrites only its own stand-ins, --force or not
            stdout.line(f"Kept {kept}: not a stand-in lab wrote (a real hotfix file?); lab init never overwrites "
                        "it. Remove it yourself to get a stand-in there.")
