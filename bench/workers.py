"""Regional workers' cost: Q241656 on N mock sites over two regions with two workers each
(Celery, a private redis-server on 127.0.0.1), against the same fleet run on the controller,
measured in the same run.

    .venv/bin/python bench/workers.py [--sites 100] [--forks 10] [--concurrency 2]

Both runs start from identical fresh sites (`deployer lab init`, not timed) and are one
`deployer apply --all` process each, as an operator runs it. The workers are started (and
ready) before the clock starts, as they are on jump hosts. Prints both wall times, the
engine's overhead per site and the ratio. Figures, not assertions: this machine is shared,
and here the workers and the controller share its 2 cores, where real ones would not.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployer.simulator.fleet_lab import fleet_inventory_text  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab(base: Path, n: int, regions: bool) -> Path:
    for d in ("playbooks", "manifests"):
        shutil.copytree(ROOT / d, base / d)
    text = fleet_inventory_text(n)
    text = re.sub(r"mock: \{path: (lab/\S+)\}", lambda m: f"mock: {{path: '{base / m.group(1)}'}}", text)
    if regions:  # the first half of the sites in region east, the rest in west
        count = iter(range(n))
        text = re.sub(r"(    timezone: America/Los_Angeles\n)",
                      lambda m: m.group(1) + f"    region: {'east' if next(count) < n // 2 else 'west'}\n", text)
    inv = base / "sites.yaml"
    inv.write_text(text)
    subprocess.run([sys.executable, "-m", "deployer", "--no-log", "lab", "init", "--all", "-i", str(inv)], cwd=base,
                   check=True, stdout=subprocess.DEVNULL)
    return inv


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "deployer", "--no-log", *args], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"deployer {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--forks", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=2, help="sites each worker runs at once")
    a = ap.parse_args()
    redis_exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    work = Path(tempfile.mkdtemp(prefix="deployer-bench-workers-"))
    started: list[subprocess.Popen] = []
    try:
        remote_inv = lab(work / "remote", a.sites, regions=True)
        local_inv = lab(work / "local", a.sites, regions=False)
        port, password = free_port(), secrets.token_hex(16)
        redis = subprocess.Popen([redis_exe, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True, cwd=work)
        started.append(redis)
        redis.stdin.write(f"bind 127.0.0.1\nport {port}\nsave \"\"\nrequirepass {password}\n".encode())
        redis.stdin.close()
        url = f"redis://127.0.0.1:{port}/0"
        env = {**os.environ, "DEPLOYER_BROKER": url, "DEPLOYER_BROKER_PASSWORD": password}
        logs = []
        for region in ("east", "west"):
            for k in range(2):
                log = work / f"worker-{region}-{k}.log"
                logs.append(log)
                with open(log, "w") as fh:
                    started.append(subprocess.Popen(
                        [sys.executable, "-m", "deployer", "--no-log", "worker", "--region", region,
                         "--concurrency", str(a.concurrency)], env={**env, "XDG_CACHE_HOME": str(work / f"c-{region}{k}")},
                        stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=work))
        deadline = time.monotonic() + 120
        while not all("ready." in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not get ready within 120 s")
            time.sleep(0.2)
        pb = "playbooks/q241656.yaml"
        common = ["--all", "--yes", "--forks", str(a.forks)]
        local = timed(["apply", pb, "-i", str(local_inv), *common, "--fleet-dir", str(work / "lf")], work / "local", env)
        remote = timed(["apply", pb, "-i", str(remote_inv), *common, "--broker", url, "--fleet-dir", str(work / "rf")],
                       work / "remote", env)
        n = a.sites
        print(f"{n} sites, Q241656, --forks {a.forks}; 2 regions x 2 workers x {a.concurrency} processes")
        print(f"  on the controller:           {local:7.2f} s  ({local / n * 1000:6.1f} ms a site)")
        print(f"  through the regions' workers: {remote:7.2f} s  ({remote / n * 1000:6.1f} ms a site)")
        print(f"  engine overhead: {(remote - local) / n * 1000:+.1f} ms a site; ratio {remote / local:.2f}x")
    finally:
        for p in reversed(started):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
