"""`deployer kb import` and `deployer manifest from-kb`: KB articles' file tables as manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import EXIT_CODES_HELP

kb_app = typer.Typer(help="KB articles: their file attribute tables as manifests, their procedures as draft playbooks.",
                     no_args_is_help=True, epilog=EXIT_CODES_HELP)
manifest_app = typer.Typer(help="Manifests: a KB article's file attribute table as data.", no_args_is_help=True,
                           epilog=EXIT_CODES_HELP)



ArticlesArg = Annotated[list[Path], typer.Argument(help="KB articles (text or the kbarchive markdown form).")]
KbOutputOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Write the manifest to FILE, or one manifest per article into DIR (<kb>.yaml).")]


@kb_app.command("import", epilog=EXIT_CODES_HELP)
def kb_import(
    articles: ArticlesArg,
    output: KbOutputOpt = None,
    playbook: Annotated[bool, typer.Option("--playbook", help="Also draft a playbook from the article's procedure.")]
    = False,
    playbook_dir: Annotated[Optional[Path], typer.Option(
        "--playbook-dir", help="Where draft playbooks go (default: beside the manifest).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite manifests and playbooks that kb import did not "
                                        "write (or that were edited since).")] = False,
) -> None:
    """Import every file attribute table of KB articles as manifests: every row imported, or flagged for review
    with its article line (exit 3 when any row needs review)."""
    from ..kb.command import run_import
    from ..report import out as outmod

    code = run_import(articles, output, playbook, playbook_dir, force, err=outmod.stderr())
    if code:
        raise typer.Exit(code)


@manifest_app.command("from-kb", epilog=EXIT_CODES_HELP)
def manifest_from_kb(articles: ArticlesArg, output: KbOutputOpt = None, force: Annotated[bool, typer.Option(
        "--force", help="Overwrite a manifest kb import did not write.")] = False) -> None:
    """The same as `deployer kb import` (kept for scripts that use it)."""
    kb_import(articles, output, False, None, force)
