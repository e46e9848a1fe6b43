"""Sessions per host: one fleet apply of Q241656 over N sites whose files all live on ONE
Samba host, at several --max-per-host bounds, in the same run.

    .venv/bin/python bench/host_limits.py [--sites 8] [--bounds 1,2,4,8] [--forks 8]

N one-server lab sites (`deployer lab init --all`, not timed) are exported by one private
smbd on 127.0.0.1, each site's SMS root as its own share; the inventory reaches them with
`files: {transport: smb}` and one password file, services on the mock SCM. Each bound gets
pristine sites and one `deployer apply --all -f json` process (interpreter start included).
Printed per bound: wall time, Samba's own count of sessions open at once (smbstatus polled
every 50 ms while the command runs: an independent witness, which can miss a session
shorter than a poll), the payload bytes the fleet JSON reports, and the time against the
unbounded run. Figures, not assertions: this machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hotfix import vendor_payloads  # noqa: E402  Samba is a real server: the vendor's files, never lab stand-ins
from servers.samba import Samba  # noqa: E402  the tests' private smbd

from deployer.simulator.fleet_lab import site_names, write_fleet_inventory  # noqa: E402


def root_of(base: Path, name: str) -> Path:
    return base / "lab" / name / f"SRV{name[-3:]}" / "C" / "SMS"


def sessions_now(samba: Samba) -> int:
    out = subprocess.run(["smbstatus", "-s", str(samba.conf), "-b", "--json"], capture_output=True, text=True)
    try:
        return len(json.loads(out.stdout).get("sessions") or {})
    except ValueError:
        return 0


def timed_apply(base: Path, samba: Samba, bound: int, forks: int) -> tuple[float, int, int]:
    """(wall seconds, peak sessions Samba saw, bytes the fleet JSON reports)."""
    peak, stop = [0], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], sessions_now(samba))
            stop.wait(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "deployer", "apply", "playbooks/q241656.yaml", "-i", "sites-smb.yaml",
                           "--all", "--yes", "--forks", str(forks), "--max-per-host", str(bound), "-f", "json",
                           "--fleet-dir", str(base / "fleets")], cwd=base, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    stop.set()
    watcher.join()
    if proc.returncode:
        raise SystemExit(f"apply --max-per-host {bound} exited {proc.returncode}:\n{proc.stderr}")
    report = json.loads(proc.stdout)
    return wall, peak[0], int(report["bytes"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sites", type=int, default=8)
    ap.add_argument("--bounds", default="1,2,4,8")
    ap.add_argument("--forks", type=int, default=8)
    a = ap.parse_args()
    bounds = [int(b) for b in a.bounds.split(",")]
    names = site_names(a.sites)
    with tempfile.TemporaryDirectory(prefix="deployer-hostlimit-bench-") as tmp:
        base = Path(tmp) / "lab"
        base.mkdir()
        for d in ("playbooks", "manifests"):
            shutil.copytree(ROOT / d, base / d)
        write_fleet_inventory(base / "sites.yaml", a.sites)
        subprocess.run([sys.executable, "-m", "deployer", "lab", "init", "--all", "-i", "sites.yaml"], cwd=base,
                       check=True, stdout=subprocess.DEVNULL)
        vendor_payloads(base / "payloads")
        pristine = Path(tmp) / "pristine"
        shutil.copytree(base / "lab", pristine, symlinks=True)
        samba = Samba(Path(tmp) / "smbd", {f"{n}_SMS": root_of(base, n) for n in names}).start()
        try:
            samba.fleet_inventory(base, names, Path(tmp) / "fleet.pw")
            print(f"deployer --max-per-host benchmark: Q241656 on {a.sites} sites on one Samba host, --forks "
                  f"{a.forks}, {os.cpu_count()} CPUs")
            print(f"{'bound':>6} {'seconds':>8} {'Samba peak sessions':>20} {'bytes uploaded':>15} {'x unbounded':>12}")
            rows = []
            for bound in bounds:
                for n in names:  # pristine sites for every bound: each run applies the whole fleet
                    shutil.rmtree(base / "lab" / n)
                    shutil.copytree(pristine / n, base / "lab" / n, symlinks=True)
                rows.append((bound, *timed_apply(base, samba, bound, a.forks)))
            ref = next((r[1] for r in rows if r[0] >= a.sites), rows[-1][1])
            for bound, secs, peak, moved in rows:
                print(f"{bound:>6} {secs:>8.2f} {peak:>20} {moved:>15,} {secs / ref:>11.2f}x")
        finally:
            samba.stop()


if __name__ == "__main__":
    main()
