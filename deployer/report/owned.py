"""Which files deployer wrote (model/owned.py holds the rule and the writer), and the --force
option of every command that writes a file the operator names."""

from __future__ import annotations

from ..model.owned import GENERATOR, SCHEMA_ID, mark, replaceable, written_by_deployer  # noqa: F401


def _force_option():
    from typing import Annotated

    import typer

    return Annotated[bool, typer.Option("--force", help="Replace an output file that deployer did not write.")]


# the --force of every command that writes a file the operator names
ForceOpt = _force_option()
