"""An inventory of N copies of a one-server mock site, for fleet tests and bench/fleet.py.

Each site is an Intel site server carrying the x86 and Alpha binaries, its mock folder
under `lab/<name>` beside the inventory; `deployer lab init --all -i FILE` creates them.
"""

from __future__ import annotations

from pathlib import Path


def fleet_inventory_text(count: int, prefix: str = "SITE", groups: dict[str, list[str]] | None = None,
                         timezone: str = "America/Los_Angeles") -> str:
    width = max(3, len(str(count)))
    lines = ["# generated: a fleet of one-server mock sites", "sites:"]
    for i in range(1, count + 1):
        name = f"{prefix}{i:0{width}d}"
        lines += [f"  {name}:",
                  f"    code: F{i % 100:02d}",
                  f"    timezone: {timezone}",
                  "    platforms: [x86, alpha]",
                  f"    mock: {{path: lab/{name}}}",
                  "    servers:",
                  f"      SRV{i:0{width}d}: {{role: site_server, platform: x86, sms_root: 'C:\\SMS'}}"]
    if groups:
        lines.append("groups:")
        for g, members in groups.items():
            lines.append(f"  {g}: [{', '.join(repr(m) for m in members)}]")
    return "\n".join(lines) + "\n"


def site_names(count: int, prefix: str = "SITE") -> list[str]:
    width = max(3, len(str(count)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, count + 1)]


def write_fleet_inventory(path: Path, count: int, prefix: str = "SITE",
                          groups: dict[str, list[str]] | None = None) -> Path:
    path.write_text(fleet_inventory_text(count, prefix, groups), encoding="utf-8")
    return path
