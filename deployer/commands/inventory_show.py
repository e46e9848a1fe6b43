"""`deployer inventory show`: the inventory as deployer reads it, ranges, `defaults:` and group
fields written out per site (model/inventory_expand.py), for one site, some, a group or all."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated, Any

import typer

from ..errors import ExitCode, exit_help
from ..report.escape import visible_line, yaml_text
from ..fleet.options import GroupOpt, SitesOpt
from .common import InventoryOpt


class ShowFormat(str, Enum):
    yaml = "yaml"
    json = "json"


def _yaml(data: Any) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    # block style, keys in the order written, and a quoted string wherever YAML 1.1 would read
    # it as something else (a code of digits, `no`, a time), so the output loads back the same
    _Dumper.add_representer(dict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items()))
    return yaml_text(lambda **unicode: yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                                                width=100, **unicode))


def show(
    site: SitesOpt = None,  # the options every command shares: the same spelling, help and completion
    group: GroupOpt = None,
    inventory: InventoryOpt = None,
    format: Annotated[ShowFormat, typer.Option("--format", "-f", help="yaml (the default) or json.")] = ShowFormat.yaml,
) -> None:
    """Print the inventory with ranges, defaults: and group fields expanded, as every command reads it."""
    from ..fleet import workflow
    from ..fleet.select import select_sites

    inv = workflow.inventory(inventory)
    data = inv.doc.data
    names = [r.name for r in (select_sites(inv, site, group) if site or group else inv.all_sites())]
    out: dict[str, Any] = {"sites": {n: data["sites"][n] for n in names}}
    groups = {g: [m for m in (r.name for r in inv.group(g)) if m in names] for g in inv.inventory.groups}
    if groups and not (site or group):
        out["groups"] = groups
    if format == ShowFormat.json:
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
    else:
        sys.stdout.write(f"# {visible_line(str(inv.path))}, expanded: {len(names)} site{'s' if len(names) != 1 else ''}\n" + _yaml(out))


EPILOG = exit_help(ExitCode.OK, ExitCode.BAD_INPUT)
