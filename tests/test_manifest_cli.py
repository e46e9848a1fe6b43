"""`deployer manifest from-kb`: an article's table becomes a manifest that verifies real sites."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Workspace, run_cli
from deployer.model.manifest import load_manifest

KB = Path(__file__).parent / "data" / "kb"


def test_imported_q225056_verifies_the_pre_hotfix_demo_site(ws: Workspace):
    # The lab's pre-hotfix site is an SMS 1.2 SP4 site that applied Q225056 (1/28/99 PCM files).
    out = ws.path / "imported" / "q225056.yaml"  # not over the shipped manifest: kb import refuses that
    r = ws.cli("manifest", "from-kb", KB / "Q225056.md", "-o", out)
    assert r.code == 0, r.text
    assert "Wrote" in r.err and "5 files" in r.err
    assert len(load_manifest(out).manifest.files) == 5
    r = ws.cli("verify", out, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 0, r.text
    report = json.loads(r.out)
    assert report["summary"]["ok"] == report["summary"]["total"] >= 5
    # and Q241656's later files are "older" there: the site still needs that hotfix
    r = ws.cli("verify", ws.path / "manifests" / "q241656.yaml", "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 3


def test_an_article_without_a_table_is_refused_with_its_location():
    r = run_cli("manifest", "from-kb", KB / "Q168682-sendcode-service-codes.txt")
    assert r.code == 2
    assert "Q168682-sendcode-service-codes.txt:" in r.err and "no file-attribute table" in r.err
