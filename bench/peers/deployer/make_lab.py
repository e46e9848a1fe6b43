#!/usr/bin/env python3
"""Make deployer's side of a q241656 fleet: N one-server mock sites, fed the fleet's hotfix.

usage: make_lab.py DIR N DEPLOYER

DIR already holds what `make_fleet.py DIR 0` writes: hotfix/{I386,Alpha}/* and manifest.json.
This adds, all inside DIR:

DIR/sites.yaml                 N one-server mock sites (deployer/simulator/fleet_lab.py), timezone UTC
DIR/playbooks/q241656.yaml     the repository's playbook and manifest, unchanged
DIR/manifests/q241656.yaml
DIR/lab/SITE001..              `DEPLOYER lab init --all`: pre-hotfix SMS 1.2 sites (mock SCM,
                               services running, Helper.srv, Logon.srv, copy lists)
DIR/payloads/q241656/          the fleet's 9 hotfix files (the same bytes and dates the peers
                               install), in place of lab init's stand-ins
DIR/pristine.json              every file under DIR/lab: size, mtime_ns, sha256, for
                               verify_lab.py

The sites keep the mock's own pre-hotfix files (the originals verify_lab.py expects backed
up are whatever the snapshot holds). Timezone UTC: the manifest's 7:00 PM is then the
fleet's 19:00 UTC, so deployer checks the very dates verify_fleet.py checks for the peers.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(REPO), str(REPO / "bench" / "peers")]

from deployer.simulator.fleet_lab import fleet_inventory_text  # noqa: E402
from peercheck import sha256  # noqa: E402

# make_fleet.py's platform folders -> the playbook's payload folders
PLATFORMS = {"I386": "x86", "Alpha": "alpha"}




def snapshot(lab):
    """Every file under lab/, relative path -> [size, mtime_ns, sha256]."""
    out = {}
    for d, _, names in os.walk(lab):
        for n in names:
            p = os.path.join(d, n)
            st = os.stat(p)
            out[os.path.relpath(p, lab)] = [st.st_size, st.st_mtime_ns, sha256(p)]
    return out


def main(root, n, deployer):
    root = Path(root).resolve()
    manifest = json.loads((root / "manifest.json").read_text())["files"]
    for d in ("playbooks", "manifests"):
        (root / d).mkdir()
        shutil.copy2(REPO / d / "q241656.yaml", root / d / "q241656.yaml")
    (root / "sites.yaml").write_text(fleet_inventory_text(n, timezone="UTC"), encoding="utf-8")
    subprocess.run([deployer, "lab", "init", "--all", "-i", str(root / "sites.yaml"),
                    "-p", str(root / "playbooks" / "q241656.yaml")],
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ, "XDG_STATE_HOME": str(root / "state")})
    for f in manifest:
        target = root / "payloads" / "q241656" / PLATFORMS[f["platform"]] / f["name"]
        if not target.is_file():
            sys.exit(f"make_lab: lab init wrote no stand-in {target} to replace")
        shutil.copy2(root / f["src"], target)
    with open(root / "pristine.json", "w") as fh:
        json.dump(snapshot(root / "lab"), fh)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
