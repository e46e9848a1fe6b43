"""A scan over SMB 2/3 (a real Samba serving the lab site's SMS roots): the same statuses as on
the mock, and no more round trips than one `deployer verify` of one manifest, however many
manifests the catalogue holds (requests counted on the SMB link, never timed)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from conftest import Workspace, snapshot
from deployer.targets.smbconn import SmbLink
from test_e2e_smb import cli, dialect, site_root, site_samba, smb_ws  # noqa: F401  (the Samba fixtures)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Every compound message (one round trip) and every READ sent over any SMB link."""
    counts: Counter = Counter()
    compound, reads = SmbLink.compound, SmbLink.read_requests

    def counting_compound(self, tree, actions, related=True):
        counts["round trips"] += 1
        return compound(self, tree, actions, related)

    def counting_reads(self, *args, **kwargs):
        for receive in reads(self, *args, **kwargs):
            counts["reads"] += 1
            yield receive

    monkeypatch.setattr(SmbLink, "compound", counting_compound)
    monkeypatch.setattr(SmbLink, "read_requests", counting_reads)
    return counts


@pytest.mark.parametrize("patched", [None, "Q255284"])
def test_scan_over_smb_costs_no_more_round_trips_than_one_verify(smb_ws: Workspace, site_root: Path,  # noqa: F811
                                                                 counted: Counter, tmp_path: Path, patched):
    ws = smb_ws
    if patched:  # a site at Q255284's level: its files' versions must be read to judge it
        r = ws.cli("lab", "init", "DEMO", "--force", "-i", ws.inventory, "--patched-with", patched)
        assert r.code == 0, r.text
        shutil.rmtree(site_root)
        shutil.copytree(ws.site, site_root, symlinks=True)
    book = (patched or "Q241656").lower()
    # a bigger catalogue: the project's five manifests, each also as forty more articles naming the same files
    cat = tmp_path / "cat"
    shutil.copytree(ws.path / "manifests", cat)
    for src in sorted((ws.path / "manifests").glob("q*.yaml")):
        for n in range(40):
            text = src.read_text()
            kb = text.split("kb: ")[1].split()[0]
            (cat / f"{src.stem}-{n}.yaml").write_text(text.replace(f"kb: {kb}", f"kb: Q9{n:02d}{kb[-3:]}"))
    before = snapshot(site_root, include_state=True)

    r = cli(ws, "verify", ws.path / "manifests" / f"{book}.yaml", "--site", "DEMO")
    assert r.code == (0 if patched else 3), r.text
    one_verify = Counter(counted)
    counted.clear()
    r = cli(ws, "scan", "--site", "DEMO", "--catalog", cat, "-f", "json")
    assert r.code == 3, r.text
    scan = Counter(counted)
    data = json.loads(r.out)
    statuses = {h["kb"]: h["status"] for h in data["sites"][0]["hotfixes"]}
    assert len(statuses) == 205
    # Q255284 replaces Q241656's PCM files but not Base.dll: Q241656 is then partial
    assert statuses["Q241656"] == statuses["Q900656"] == ("partial" if patched else "missing")
    assert statuses["Q225056"] == "installed"
    assert statuses["Q255284"] == statuses["Q900284"] == ("installed" if patched else "missing")
    print(f"SMB: scan of 205 manifests {dict(scan)} {data['sites'][0]['cost']}; one verify of {book} "
          f"{dict(one_verify)}")
    assert scan["round trips"] <= one_verify["round trips"], (scan, one_verify)
    assert snapshot(site_root, include_state=True) == before  # nothing written, no lock taken
