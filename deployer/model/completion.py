"""The values a Tab completes (site and group names, run ids, fleet run ids), read from the files
alone: yaml and two small tables, never the CLI, a transport or a model.

Here, in the model layer, so that both the shell-completion answer (deployer/complete.py, before
the CLI loads) and the CLI's own option completion (model/inventory_source.py) read them without
importing each other. Any problem yields no values: completion never prints an error.
"""

from __future__ import annotations

import os
from pathlib import Path

def _inventory_data(explicit: str | None) -> tuple[Path, dict]:
    """The inventory as plain data, found as inventory_source finds it (--inventory, then
    $DEPLOYER_INVENTORY, then ./sites.yaml), read with yaml alone: yamlsrc's checks cost
    imports (dataclasses, inspect) a Tab cannot afford, and any problem means no values."""
    import yaml

    env = os.environ.get("DEPLOYER_INVENTORY", "").strip()
    path = Path(explicit).expanduser() if explicit else Path(env).expanduser() if env else Path("sites.yaml")
    if path.stat().st_size > 1 << 20:
        return path, {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=loader)  # noqa: S506 - a safe loader
    return path, data if isinstance(data, dict) else {}


def site_names(explicit: str | None, groups: bool = False) -> list[str]:
    """The inventory's site names, ranges written out (S[001:030]: S001 ... S030); and its
    group names for --group (for --site too: the CLI has always offered both there)."""
    from .ranges import expand, has_range

    try:
        _, data = _inventory_data(explicit)
    except Exception:  # noqa: BLE001
        return []
    names: list[str] = []
    sites, group_map = data.get("sites"), data.get("groups")
    if isinstance(sites, dict) and not groups:
        for key in sites:
            try:
                names.extend(expand(str(key)) if has_range(str(key)) else [str(key)])
            except ValueError:
                names.append(str(key))
    if isinstance(group_map, dict):
        names.extend(str(k) for k in group_map)
    return names


def run_ids(explicit: str | None, site: str | None) -> list[tuple[str, str]]:
    """The runs journaled on a mock site's site server, newest first. A real server is not
    asked: a Tab must not open an SMB or SSH session."""
    from .ranges import expand, has_range

    if not site:
        return []
    path, data = _inventory_data(explicit)
    sites = data.get("sites") if isinstance(data.get("sites"), dict) else {}
    entry, index = None, 0
    for key, value in sites.items():
        names = expand(str(key)) if has_range(str(key)) else [str(key)]
        for i, n in enumerate(names):
            if n.casefold() == site.casefold():
                entry, index, site = value, i, n
    mock = entry.get("mock") if isinstance(entry, dict) else None
    servers = entry.get("servers") if isinstance(entry, dict) else None
    if not isinstance(mock, dict) or not isinstance(servers, dict):
        return []

    def in_step(text: str) -> str:
        return expand(text)[index] if has_range(text) else text

    default_root = (data.get("defaults") or {}).get("server", {}).get("sms_root", "C:\\SMS") \
        if isinstance(data.get("defaults"), dict) else "C:\\SMS"
    for name, server in servers.items():
        server = server or {}
        if server.get("role") == "site_server" or (server.get("role") is None and len(servers) == 1):
            root = in_step(str(server.get("sms_root") or default_root))
            drive, _, rest = root.partition(":")
            folder = path.parent / in_step(str(mock.get("path", ""))) / in_step(str(name)) / drive
            folder = folder.joinpath(*[p for p in rest.split("\\") if p]) / ".deployer" / "runs"
            runs = sorted((p.name for p in folder.iterdir() if p.is_dir()), reverse=True) if folder.is_dir() else []
            return [(r, "") for r in runs]
    return []


def fleet_ids(folder: str | None) -> list[tuple[str, str]]:
    """Fleet runs in the fleet journal folder, newest first, with their command."""
    base = Path(folder) if folder else Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") \
        / "deployer" / "fleets"
    if not base.is_dir():
        return []
    files = sorted(base.glob("*.json"), key=lambda p: p.name, reverse=True)
    return [(p.stem, "") for p in files]
