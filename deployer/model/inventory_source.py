"""Which inventory a command uses: `--inventory FILE`, else $DEPLOYER_INVENTORY, else ./sites.yaml.

The usual precedence of command-line tools (an explicit option over the environment over a
file in the current folder), so that an operator who exported DEPLOYER_INVENTORY can run
deployer from any folder, and `--inventory` always wins. Errors say where the path came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, Location

ENV = "DEPLOYER_INVENTORY"
DEFAULT = Path("sites.yaml")


@dataclass(frozen=True)
class InventorySource:
    path: Path
    origin: str  # how it was found, for messages: "--inventory", "$DEPLOYER_INVENTORY", "./sites.yaml"


def resolve(explicit: Path | None) -> InventorySource:
    if explicit is not None:
        src = InventorySource(explicit, "--inventory")
    elif os.environ.get(ENV, "").strip():
        src = InventorySource(Path(os.environ[ENV].strip()).expanduser(), f"${ENV}")
    elif DEFAULT.exists():
        return InventorySource(DEFAULT, "./sites.yaml")
    else:
        raise InputError(f"no inventory: there is no sites.yaml in this folder and ${ENV} is not set; pass "
                         "--inventory FILE, set DEPLOYER_INVENTORY, or run from the folder holding sites.yaml")
    if not src.path.exists():
        raise InputError(f"the inventory named by {src.origin} does not exist", Location(str(src.path)))
    if src.path.is_dir():
        raise InputError(f"the inventory named by {src.origin} is a folder; name the sites.yaml file in it",
                         Location(str(src.path)))
    return src


def site_names(explicit: Path | None) -> list[str]:
    """Site names (and, once the inventory has them, group names) for shell completion.

    Completion must never print an error into the operator's prompt: any problem yields no names."""
    from .completion import site_names as names  # ranges written out (S[001:030]), read as a Tab reads them

    return names(str(explicit) if explicit is not None else None)
