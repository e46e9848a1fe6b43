"""Scan speed: `deployer scan --site DEMO` against a catalogue of the shared KB articles
(../shared/kb and ../shared/kb-train, imported with `kb import`), against one `deployer verify`
of the Q241656 manifest on the same site, in the same run.

    .venv/bin/python bench/scan.py [--runs 5]

Both are timed in-process (Python's start is not the point), medians of --runs, on a fresh
DEMO lab site in a temporary folder: the scan with its catalogue loaded once (as a long
session would) and with the catalogue loaded inside the timing (as one command does), the
verify with its manifest loaded. Also printed: what each sent to the site (stats, listings,
reads), and both as whole commands (a process each, Python's start included). Figures, not
assertions: this machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import median_seconds  # noqa: E402  bench/, the script's own folder


def shared() -> Path:
    for base in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if (base / "kb-train").is_dir():
            return base
    sys.exit("no ../shared/kb-train beside this checkout")


def cli(*args: str) -> int:
    from deployer.cli import main

    old = sys.argv
    sys.argv = ["deployer", *args]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
    return 0


def process(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "deployer", "--no-log", *args], capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        sys.exit(f"deployer {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    base = shared()
    articles = sorted((base / "kb").glob("Q*.md")) + sorted((base / "kb-train").glob("Q*.md"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for d in ("manifests", "playbooks"):
            shutil.copytree(ROOT / d, work / d)
        shutil.copy(ROOT / "sites.yaml", work / "sites.yaml")
        os.chdir(work)
        if cli("lab", "init", "DEMO") != 0 or cli("kb", "import", *map(str, articles), "-o", "kb/") not in (0, 3):
            sys.exit("could not prepare the lab site and the catalogue")

        from deployer.fleet import workflow
        from deployer.kb.catalog import load_catalog
        from deployer.model.manifest import load_manifest
        from deployer.scan.judge import scan

        site = workflow.inventory(work / "sites.yaml").site("DEMO")
        cat = load_catalog(work / "kb")
        n = len(cat.hotfixes) + len(cat.problems)
        manifest = work / "manifests" / "q241656.yaml"
        verify = median_seconds(lambda: workflow.verify_target(load_manifest(manifest), site), a.runs)
        scan_only = median_seconds(lambda: scan(cat, [site]), a.runs)
        scan_all = median_seconds(lambda: scan(load_catalog(work / "kb"), [site]), a.runs)
        cost = scan(cat, [site]).sites[0].cost
        proc_verify = median_seconds(lambda: process("verify", str(manifest), "--site", "DEMO"), a.runs)
        proc_scan = median_seconds(lambda: process("scan", "--site", "DEMO", "--catalog", "kb"), a.runs)
        os.chdir(ROOT)
    print(f"one verify of Q241656 on DEMO: {verify * 1000:.0f} ms (median of {a.runs})")
    print(f"scan of DEMO against {n} imported articles: {scan_only * 1000:.0f} ms with the catalogue loaded, "
          f"{scan_all * 1000:.0f} ms loading it too (medians of {a.runs})")
    print(f"ratio: scan / verify = {scan_only / verify:.1f}x ({scan_all / verify:.1f}x with the catalogue load); "
          f"the scan sent {cost['stats']} stats, {cost['listings']} listings, {cost['reads']} reads")
    print(f"whole commands (process start included): verify {proc_verify:.2f} s, scan {proc_scan:.2f} s "
          f"({proc_scan / proc_verify:.1f}x)")


if __name__ == "__main__":
    main()
