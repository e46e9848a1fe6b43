"""`runs` and `prune` over SMB: the backup space is measured and removed on Samba shares, and
Samba's own client confirms what is left."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import Workspace
from servers.samba import Samba
from test_e2e_smb import SERVERS, cli, dialect, share_of, site_root, site_samba, smb_ws  # noqa: F401 (fixtures)


def _backup_on_disk(site_root: Path, run: str) -> dict[str, int]:
    out = {}
    for name, (_, _, drive) in SERVERS.items():
        d = site_root / name / drive / "SMS" / ".deployer" / "runs" / run / "backup"
        if d.is_dir():
            out[name] = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
    return out


def test_prune_over_smb(smb_ws: Workspace, site_samba: Samba, site_root: Path):  # noqa: F811
    ws = smb_ws
    assert cli(ws, "apply", ws.playbook, "--site", "DEMO", "--yes").code == 0
    assert cli(ws, "rollback", "--site", "DEMO", "--yes").code == 0
    r = cli(ws, "apply", ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    runs = json.loads(cli(ws, "runs", "--site", "DEMO", "-f", "json").out)
    assert [x["state"] for x in runs] == ["rolled_back", "committed"]
    old, last = runs[0]["run"], runs[1]["run"]
    for x in runs:
        assert x["backup_servers"] == _backup_on_disk(site_root, x["run"]) and "DEMOSRV" in x["backup_servers"]

    # more to keep than there are runs: nothing goes (a negative slice once pruned the oldest)
    r = cli(ws, "prune", "--site", "DEMO", "--yes", "--keep", "3")
    assert r.code == 0 and "Nothing to prune" in r.out and r.out.count("kept: one of the newest 3") == 1, r.text
    assert _backup_on_disk(site_root, old) == runs[0]["backup_servers"]

    r = cli(ws, "prune", "--site", "DEMO", "--yes", "--keep", "0")
    assert r.code == 0 and "Pruned 1 run" in r.out, r.text
    assert _backup_on_disk(site_root, old) == {} and _backup_on_disk(site_root, last) == runs[1]["backup_servers"]
    # Samba's view: the old run's folder is gone from the logon servers; its journal stays on the site server
    listing = site_samba.smbclient(share_of("DEMOLOG1"), "ls .deployer/runs/*")
    assert old not in listing and last in listing
    listing = site_samba.smbclient(share_of("DEMOSRV"), f"ls .deployer/runs/{old}/*")
    assert "journal.jsonl" in listing and "backup" not in listing.lower()
    runs = json.loads(cli(ws, "runs", "--site", "DEMO", "-f", "json").out)
    assert runs[0]["pruned"] and runs[0]["backup_bytes"] == 0 and runs[1]["backup_bytes"] > 0
    assert not os.path.exists(site_root / "DEMOSRV" / "C" / "SMS" / ".deployer" / "lock")
