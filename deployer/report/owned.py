"""The --force option of every command that writes a file the operator names (which files
deployer wrote, and the writer, are model/owned.py's)."""

from __future__ import annotations


def _force_option():
    from typing import Annotated

    import typer

    return Annotated[bool, typer.Option("--force", help="Replace an output file that deployer did not write.")]


# the --force of every command that writes a file the operator names
ForceOpt = _force_option()
