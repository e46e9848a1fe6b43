"""A fleet of one-server lab sites whose files all live on ONE server host (a private smbd or
sshd), as sites sharing a logon or distribution server do: built the same way for the host
limits' tests (tests/test_host_limits.py) and their benchmark (bench/host_limits.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import yaml

from hotfix import vendor_payloads
from deployer.simulator.fleet_lab import write_fleet_inventory

ROOT = Path(__file__).resolve().parents[1]


def root_of(base: Path, name: str) -> Path:
    """The SMS root of site `name`'s one server in the lab under `base`."""
    return base / "lab" / name / f"SRV{name[-3:]}" / "C" / "SMS"


def fleet_lab(base: Path, sites: int) -> Path:
    """Under `base`: the playbooks and manifests, an inventory of `sites` one-server lab sites,
    their lab folders and the vendor's payloads (a real server takes the vendor's files, never
    the lab's stand-ins)."""
    for d in ("playbooks", "manifests"):
        shutil.copytree(ROOT / d, base / d)
    write_fleet_inventory(base / "sites.yaml", sites)
    subprocess.run([sys.executable, "-m", "deployer", "lab", "init", "--all", "-i", "sites.yaml"], cwd=base,
                   check=True, stdout=subprocess.DEVNULL)
    vendor_payloads(base / "payloads")
    return base


def copy_lab(template: Path, dest: Path) -> Path:
    """A private copy of a fleet lab (its sites' folders are written by the runs)."""
    shutil.copytree(template, dest, symlinks=True)
    return dest


def files_on_one_host(base: Path, names: list[str], inventory: str, files_of: Callable[[str], dict]) -> Path:
    """`inventory` beside sites.yaml: each site's server reaches its files as `files_of(site)`
    says (the one host), its services on the mock SCM."""
    inv = yaml.safe_load((base / "sites.yaml").read_text())
    for name in names:
        server = inv["sites"][name]["servers"][f"SRV{name[-3:]}"]
        server["files"], server["services"] = files_of(name), "mock"
    path = base / inventory
    path.write_text(yaml.safe_dump(inv, sort_keys=False))
    return path
