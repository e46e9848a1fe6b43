"""How long deployer takes to start: `deployer --version` and a one-site `deployer plan` of the
DEMO lab site, each as a whole process, beside the bare interpreter (`python -c pass`) measured in
the same run, so that the figures are what deployer adds (issue 20: within 0.12 s and 0.35 s).

Each figure is the median of --runs processes: wall time by perf_counter around the process, and
its CPU time (user + system, from the children's rusage), which a loaded machine disturbs far less
than the wall time (the goal is wall time on an idle machine; the CPU time says where it stands).
With --importtime, the slowest imports of the plan process are listed too (`python -X importtime`:
cumulative microseconds, the modules a lazy import could spare).

Bytecode: an installed deployer has its modules compiled (pip writes the .pyc files), but an
editable checkout under PYTHONDONTWRITEBYTECODE=1 compiles every deployer module in every
process (~0.1 s of a plan). So by default the processes measured read and write their bytecode
under a cache of this run's own (PYTHONPYCACHEPREFIX, the checkout untouched), warmed by one
unmeasured run of each command: the figure is deployer's, not the compiler's. --as-is measures
in the caller's environment unchanged.

    .venv/bin/python bench/startup.py [--runs 15] [--importtime] [--as-is]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


ENV = {**os.environ, "NO_COLOR": "1"}


def _cached_bytecode(cache: Path) -> str:
    """The measured processes read and write bytecode under `cache` (see the module's docstring)."""
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(cache)
    return f"bytecode cached under this run's {cache.name}/ (warmed by one unmeasured run of each)"


def _time(args: list[str], cwd: Path, runs: int) -> tuple[float, float]:
    """(wall, cpu) seconds of the process, each the median of `runs` (after one unmeasured run)."""
    env = ENV
    subprocess.run(args, cwd=cwd, capture_output=True, env=env, timeout=300)
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(args, cwd=cwd, capture_output=True, env=env, timeout=300)
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode not in (0, 5):
            raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return statistics.median(wall), statistics.median(cpu)


def _workspace(base: Path) -> Path:
    for d in ("playbooks", "manifests"):
        shutil.copytree(ROOT / d, base / d)
    shutil.copy(ROOT / "sites.yaml", base / "sites.yaml")
    subprocess.run([sys.executable, "-m", "deployer", "--no-log", "lab", "init", "DEMO", "-i", "sites.yaml"],
                   cwd=base, check=True, capture_output=True, timeout=300)
    return base


def _slowest_imports(args: list[str], cwd: Path, shown: int = 12) -> list[tuple[int, str]]:
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=ENV)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    top = [r for r in rows if not r[1].startswith("   ")]  # a top-level import (its children are indented)
    return sorted(top or rows, reverse=True)[:shown]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--as-is", action="store_true", help="the caller's environment unchanged (bytecode included)")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="deployer-startup-") as tmp:
        ws = _workspace(Path(tmp) / "ws")
        if opts.as_is:
            bytecode = ("as the environment has it: PYTHONDONTWRITEBYTECODE="
                        f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}")
        else:
            bytecode = _cached_bytecode(Path(tmp) / "pycache")
        plan = ["-m", "deployer", "--no-log", "plan", "playbooks/q241656.yaml", "--site", "DEMO", "-i", "sites.yaml"]
        bare = _time([sys.executable, "-c", "pass"], ws, opts.runs)
        version = _time([sys.executable, "-m", "deployer", "--version"], ws, opts.runs)
        one_site = _time([sys.executable, *plan], ws, opts.runs)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of {opts.runs} processes; "
              f"{bytecode}")
        print(f"interpreter alone (python -c pass): wall {bare[0]:.3f} s, cpu {bare[1]:.3f} s")
        for what, t, goal in (("deployer --version", version, 0.12), ("one-site deployer plan", one_site, 0.35)):
            print(f"{what}: wall {t[0]:.3f} s, {t[0] - bare[0]:.3f} s beyond the interpreter; cpu {t[1]:.3f} s, "
                  f"{t[1] - bare[1]:.3f} s beyond it (goal {goal})")
        if opts.importtime:
            print("slowest top-level imports of the plan (cumulative):")
            for us, name in _slowest_imports(plan, ws):
                print(f"  {us / 1e6:.3f} s {name.strip()}")


if __name__ == "__main__":
    main()
