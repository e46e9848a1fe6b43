"""Fleet speed: plan, apply, a second apply and verify of Q241656 on N mock sites in one
command each, against the floor (the nine payload files copied into N folders with
shutil.copyfile + os.utime), measured in the same run.

    .venv/bin/python bench/fleet.py [--sizes 1,10,100] [--forks 10] [--repeat 1] [--loop-max 10] [--processes N]

Each N gets a fresh generated inventory of N one-server sites (deployer/simulator/fleet_lab.py) and
`deployer lab init --all` (not timed). Every command runs as its own process, as an
operator runs it: the wall time includes interpreter start and imports, and the peak
resident memory is the child's (wait4). Figures, not assertions: this machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployer.simulator.fleet_lab import site_names, write_fleet_inventory  # noqa: E402

PHASES = ("plan", "apply", "apply again", "verify")


def run(args: list[str], cwd: Path) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB, CPU seconds) of one deployer process. The CPU is user +
    system of the process and of every process it waited for (wait4 counts reaped
    descendants too), so worker processes of a fleet are in it."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "deployer", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0,):
        raise SystemExit(f"deployer {' '.join(args)} exited {proc.returncode}:\n{err}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def floor(payloads: Path, n: int, dest: Path) -> float:
    """The nine payload files written into N folders with their write times: what any tool
    must at least do."""
    files = sorted(p for p in payloads.rglob("*") if p.is_file())
    t0 = time.perf_counter()
    for i in range(n):
        for f in files:
            d = dest / f"site{i}" / f.parent.name
            d.mkdir(parents=True, exist_ok=True)
            target = d / f.name
            shutil.copyfile(f, target)
            st = f.stat()
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    return time.perf_counter() - t0


def make_lab(base: Path, n: int) -> None:
    for d in ("playbooks", "manifests"):
        shutil.copytree(ROOT / d, base / d)
    inv = write_fleet_inventory(base / "sites.yaml", n)
    subprocess.run([sys.executable, "-m", "deployer", "lab", "init", "--all", "-i", str(inv)], cwd=base, check=True,
                   stdout=subprocess.DEVNULL)


def shell_loop(n: int, work: Path) -> float:
    """What a fleet was before: one `deployer apply --site X` process per site, one after another."""
    base = work / f"loop{n}"
    make_lab(base, n)
    t0 = time.perf_counter()
    for name in site_names(n):
        run(["apply", "playbooks/q241656.yaml", "-i", "sites.yaml", "--site", name, "--yes"], base)
    secs = time.perf_counter() - t0
    shutil.rmtree(base)
    return secs


def bench(n: int, forks: int, work: Path, loop_max: int, extra: list[str]) -> dict[str, tuple[float, float, float]]:
    base = work / f"n{n}"
    make_lab(base, n)
    pb = "playbooks/q241656.yaml"
    common = ["-i", "sites.yaml", "--all", "--forks", str(forks), *extra]
    fleets = ["--fleet-dir", str(base / "fleets")]
    out: dict[str, tuple[float, float, float]] = {}
    out["plan"] = run(["plan", pb, *common], base)
    out["apply"] = run(["apply", pb, *common, "--yes", *fleets], base)
    out["apply again"] = run(["apply", pb, *common, "--yes", *fleets], base)
    out["verify"] = run(["verify", pb, *common], base)
    payload_bytes = sum(p.stat().st_size for p in (base / "payloads").rglob("*") if p.is_file())
    out["floor"] = (floor(base / "payloads" / "q241656", n, base / "floor"), 0.0, 0.0)
    out["_bytes"] = (float(payload_bytes), 0.0, 0.0)
    shutil.rmtree(base)
    if n <= loop_max:
        out["apply, shell loop"] = (shell_loop(n, work), 0.0, 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,10,100", help="fleet sizes, comma-separated")
    ap.add_argument("--forks", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1, help="runs per size; medians are printed")
    ap.add_argument("--loop-max", type=int, default=10, help="also time a shell loop of one-site applies for "
                    "fleets up to this size (one process per site, as before fleets)")
    ap.add_argument("--processes", default=None, metavar="N", help="passed to each fleet command (worker "
                    "processes; 0: threads only); unset: the command's own default")
    a = ap.parse_args()
    extra = [] if a.processes is None else ["--processes", a.processes]
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"deployer fleet benchmark: Q241656 (9 payload files), one-server mock sites, --forks {a.forks}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, median of {a.repeat}"
          + (f", --processes {a.processes}" if extra else ""))
    print(f"{'sites':>6} {'phase':<12} {'seconds':>8} {'ms/site':>8} {'peak RSS':>9} {'x floor':>8} {'CPU s':>7} "
          f"{'CPU ms/site':>11}")
    with tempfile.TemporaryDirectory(prefix="deployer-fleet-bench-") as tmp:
        for n in sizes:
            runs = [bench(n, a.forks, Path(tmp) / f"r{r}", a.loop_max, extra) for r in range(a.repeat)]
            med = {k: (statistics.median(r[k][0] for r in runs), max(r[k][1] for r in runs),
                       statistics.median(r[k][2] for r in runs)) for k in runs[0]}
            fl = med["floor"][0]
            for phase in PHASES:
                secs, rss, cpu = med[phase]
                print(f"{n:>6} {phase:<12} {secs:>8.2f} {secs / n * 1000:>8.1f} {rss:>7.1f}MB {secs / fl:>7.1f}x "
                      f"{cpu:>7.2f} {cpu / n * 1000:>11.1f}")
            if "apply, shell loop" in med:
                loop = med["apply, shell loop"][0]
                print(f"{n:>6} {'apply loop':<12} {loop:>8.2f} {loop / n * 1000:>8.1f} {'':>9} {loop / fl:>7.0f}x"
                      f"  (one process per site; the fleet apply is {loop / med['apply'][0]:.1f}x faster)")
            print(f"{n:>6} {'floor':<12} {fl:>8.3f} {fl / n * 1000:>8.2f} {'':>9} {1:>7}x")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
