"""`deployer schema`: the JSON Schema of a playbook, manifest or inventory, for editors."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..report.owned import ForceOpt
from .common import emit



class SchemaKind(str, Enum):
    playbook = "playbook"
    manifest = "manifest"
    sites = "sites"


def schema_cmd(
    kind: Annotated[SchemaKind, typer.Argument(help="Which file: playbook, manifest or sites (the inventory).")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the schema to FILE.")] = None,
    force: ForceOpt = False,
) -> None:
    """Print the JSON Schema of a YAML file kind (for editors: `# yaml-language-server: $schema=...`)."""
    from .. import schema

    emit(schema.text(kind.value), output, force=force)
