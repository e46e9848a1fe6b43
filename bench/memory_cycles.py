"""Memory over many runs: plan, apply and roll back the Q241656 hotfix N times in one process
on a fresh mock DEMO site, and print the resident memory growth (Pcmsvc32's own problem
was a slow leak; deployer must not have one).

    .venv/bin/python bench/memory_cycles.py [--cycles 1000] [--warmup 50]

Resident memory (VmRSS) is read after the warm-up cycles (imports, caches and allocator
arenas settled) and then every 10% of the run; growth is reported against the warm-up
figure, with the median cycle time. Figures, not assertions: this machine is shared.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployer.simulator import lab
from deployer.fleet import workflow  # noqa: E402
from deployer.model.inventory import load_inventory  # noqa: E402
from deployer.steps.playbook import load_playbook  # noqa: E402
from deployer.run.context import RunContext  # noqa: E402


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def setup(base: Path):
    for d in ("playbooks", "manifests"):
        shutil.copytree(ROOT / d, base / d)
    shutil.copy(ROOT / "sites.yaml", base / "sites.yaml")
    site = load_inventory(base / "sites.yaml").site("DEMO")
    lab.init_mock_site(site)
    pb = load_playbook(base / "playbooks" / "q241656.yaml")
    lab.init_payloads(pb)
    return site, pb


def cycle(site, pb, quiet) -> None:
    plan = workflow.make_plan(pb, site)
    assert len(plan.actions) == 14
    outcome = workflow.apply_playbook(pb, site, RunContext(site.name, quiet))
    assert outcome.result is not None and outcome.result.status == "committed", outcome.result
    done = workflow.rollback_run(site, None, RunContext(site.name, quiet)).result
    assert done is not None and done.status == "rolled_back", done
    # keep the disk flat: each run leaves its journal and ~6 MB of backups on the site
    for runs in site.mock_root().glob("*/*/SMS/.deployer/runs"):
        shutil.rmtree(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=50)
    args = ap.parse_args()
    quiet = lambda event: True  # noqa: E731 - no output; every question answered yes
    with tempfile.TemporaryDirectory(prefix="deployer-mem-") as tmp:
        site, pb = setup(Path(tmp))
        for _ in range(args.warmup):
            cycle(site, pb, quiet)
        gc.collect()
        start = rss_kib()
        times = []
        samples = []
        step = max(1, args.cycles // 10)
        for i in range(1, args.cycles + 1):
            t0 = time.perf_counter()
            cycle(site, pb, quiet)
            times.append(time.perf_counter() - t0)
            if i % step == 0:
                gc.collect()
                samples.append((i, rss_kib()))
        end = samples[-1][1]
    growth = (end - start) / start * 100
    print(f"cycles: {args.cycles} plan/apply/rollback of Q241656 on DEMO (after {args.warmup} warm-up cycles)")
    print(f"median cycle: {statistics.median(times) * 1000:.0f} ms (p90 "
          f"{sorted(times)[int(len(times) * 0.9)] * 1000:.0f} ms)")
    print("RSS over the run (KiB): " + ", ".join(f"{i}:{kib}" for i, kib in samples))
    print(f"RSS after warm-up: {start / 1024:.1f} MiB; after {args.cycles} cycles: {end / 1024:.1f} MiB; "
          f"growth: {end - start:+d} KiB ({growth:+.2f}%), aim < 5%")


if __name__ == "__main__":
    main()
