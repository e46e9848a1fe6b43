"""A fleet's sites in worker processes (deployer/fleet/procs.py): the same outcomes, reports,
journal, Ctrl-C and crash handling as on threads.

The whole of tests/test_fleet.py also runs through worker processes with
DEPLOYER_PROCESSES=2 (its tests that arm in-process fail point callbacks excepted: a callback
cannot cross into another process), e.g.
    DEPLOYER_PROCESSES=2 .venv/bin/python -m pytest tests/test_fleet.py -k 'not really_run and not ctrl_c'
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import run_cli
from deployer.fleet import procs as fleet_procs
from test_fleet import (FleetWs, NAMES, fleet_sites, fleet_template, fw, readonly_fleet,  # noqa: F401 - fixtures
                        shared_fleet, states)

# on the worker of test_fleet.py's group: its twenty-site template is built once there, not once per worker
pytestmark = pytest.mark.xdist_group("fleet")


@pytest.fixture
def started(monkeypatch):
    """The ProcessWork of each fleet command, to count the worker processes it started."""
    made: list[fleet_procs.ProcessWork] = []
    real = fleet_procs.ProcessWork.__init__

    def init(self, *a, **k):
        real(self, *a, **k)
        made.append(self)

    monkeypatch.setattr(fleet_procs.ProcessWork, "__init__", init)
    monkeypatch.delenv(fleet_procs.ENV, raising=False)
    return made


def _comparable(report: dict) -> dict:
    """A fleet report without what differs from run to run (timings, run IDs, journal paths)."""
    drop = {"seconds", "run", "journal", "fleet", "command_line", "at", "started", "finished", "started_utc", "finished_utc"}

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k not in drop}
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, str):
            v = re.sub(r"\d+(\.\d+)? s\b", "N s", v)
            v = re.sub(r"~dpl-[0-9a-f]+-", "~dpl-X-", v)  # a temporary name's random part
            return re.sub(r"run \S+", "run R", v)
        return v

    return clean(report)


def test_processes_give_the_same_report_as_threads(fw: FleetWs, tmp_path: Path, started):
    fw.break_site("SITE004")  # a failing, restored site too
    other = FleetWs(tmp_path / "other")
    shutil.copytree(fw.path, other.path, symlinks=True)
    t = fw.apply("--all", "--processes", "0", "-f", "json")
    assert not started  # --processes 0: threads only
    p = other.apply("--all", "--processes", "2", "-f", "json")
    assert [w.started for w in started] == [2]
    assert t.code == p.code == 1, p.text
    assert _comparable(json.loads(t.out)) == _comparable(json.loads(p.out))
    by_site = {s["site"]: s["state"] for s in json.loads(p.out)["sites"]}
    assert by_site["SITE004"] == "failed" and sum(v == "done" for v in by_site.values()) == len(NAMES) - 1
    # the fleet journal of the process path has every site's state, as the thread path's
    assert states(other.journal(other.apply("--all", "--processes", "2").out)) == {
        n: ("failed" if n == "SITE004" else "nothing") for n in NAMES}
    v = other.cli("verify", other.playbook, "--all", "--processes", "2", "-f", "json")
    assert v.code == 3 and json.loads(v.out)["counts"]["mismatch"] == 1


@fleet_sites(1, 2, 3)
def test_a_worker_killed_mid_site_is_reported_needing_recover_and_recover_restores_it(fw: FleetWs, started,
                                                                                      monkeypatch):
    before = fw.state("SITE001")
    # SIGKILL of the worker process between two actions of its site (after the first change)
    monkeypatch.setenv("DEPLOYER_FAILPOINTS", "apply.action.4.before=kill")
    r = fw.apply("--site", "SITE00[1-3]", "--forks", "1", "--processes", "1", "--max-fail", "0", "-f", "json")
    monkeypatch.delenv("DEPLOYER_FAILPOINTS")
    assert r.code == 4, r.text
    sites = {s["site"]: s for s in json.loads(r.out)["sites"]}
    assert sites["SITE001"]["state"] == "not_restored"
    assert "was killed (signal 9)" in sites["SITE001"]["message"]
    assert "deployer recover --site SITE001 --break-lock" in sites["SITE001"]["message"]
    assert [sites[n]["state"] for n in ("SITE002", "SITE003")] == ["not_started"] * 2
    assert fw.state("SITE001") != before  # it really was half changed
    rec = fw.cli("recover", "--site", "SITE001", "--break-lock", "--yes")
    assert rec.code in (0, 1), rec.text
    assert fw.state("SITE001") == before


@fleet_sites(1, 2, 3, 4)
def test_ctrl_c_cancels_sites_running_in_workers(fw: FleetWs, started, monkeypatch):
    """SIGINT to the command: the site running in a worker stops at its next safe point and
    rolls back there; no new site starts; the workers end with the command."""
    before = fw.state("SITE001")
    monkeypatch.setenv("DEPLOYER_FAILPOINTS", "apply.action.3.before=sleep:2")
    marker = fw.root("SITE001") / ".deployer"  # the site's own run journal: its run has begun

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not marker.exists():
            time.sleep(0.05)
        time.sleep(0.5)  # inside the site's run, in the worker's sleep at action 3
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=interrupt_when_running)
    t.start()
    r = fw.apply("--site", "SITE00[1-4]", "--forks", "1", "--processes", "1", "-f", "json")
    t.join()
    assert r.code == 1, r.text
    got = [s["state"] for s in json.loads(r.out)["sites"]]
    assert got == ["failed", "not_started", "not_started", "not_started"]
    assert fw.state("SITE001") == before  # rolled back byte for byte, in the worker
    assert all(not w.process.is_alive() for m in started for w in m.workers)


def _machine(monkeypatch, cores: int, load: float) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))


def test_the_fleet_size_decides_the_worker_count(monkeypatch):
    monkeypatch.delenv(fleet_procs.ENV, raising=False)
    _machine(monkeypatch, 2, 3.0)  # this project's machine: never a free core
    small, big = fleet_procs.PROCESS_MIN_SITES - 1, fleet_procs.PROCESS_MIN_SITES
    assert fleet_procs.process_count(None, small, 10, 4) == 0
    assert fleet_procs.process_count(None, big, 10, 4) == 0  # busy: threads unless asked (measured: README)
    monkeypatch.setenv(fleet_procs.ENV, "2")
    assert fleet_procs.process_count(None, big, 10, 4) == 2
    monkeypatch.setenv(fleet_procs.ENV, "²")  # not a number int() reads: ignored, never a traceback
    assert fleet_procs.process_count(None, big, 10, 4) == 0
    assert fleet_procs.process_count(0, big, 10, 4) == 0
    assert fleet_procs.process_count(3, 5, 10, 4) == 3
    assert fleet_procs.process_count(8, 100, 10, 4) == 4  # never more than --max-per-host...
    assert fleet_procs.process_count(8, 100, 2, 4) == 2  # ...nor --forks
    monkeypatch.setenv(fleet_procs.ENV, "0")
    assert fleet_procs.process_count(None, 100, 10, 4) == 0


def test_unasked_a_fleet_gets_workers_only_on_free_cores_and_when_its_work_pays(monkeypatch):
    """The default follows the measurement: worker processes cost CPU (a second import of
    deployer, pickled events) and gain only on cores other work leaves free, so a fleet gets one
    per free core, two free at least, and only when its sites' CPU outweighs the start-up."""
    monkeypatch.delenv(fleet_procs.ENV, raising=False)
    _machine(monkeypatch, 4, 0.3)  # an idle 4-core controller: 3 cores free
    assert fleet_procs.process_count(None, 100, 10, 20, "apply_work") == 3
    assert fleet_procs.process_count(None, 100, 2, 20, "apply_work") == 2  # never more than --forks
    assert fleet_procs.process_count(None, 100, 10, 20, "plan_work") == 0  # 2 s of CPU: start-up eats the gain
    assert fleet_procs.process_count(None, 300, 10, 20, "plan_work") == 3
    assert fleet_procs.process_count(None, 20, 10, 20, "apply_work") == 0  # a small fleet: threads
    _machine(monkeypatch, 4, 2.5)  # one core free: the command's own process has it
    assert fleet_procs.process_count(None, 100, 10, 20, "apply_work") == 0
    _machine(monkeypatch, 2, 9.0)  # this project's machine under seven test runs
    assert fleet_procs.process_count(None, 1000, 10, 20, "apply_work") == 0
    assert fleet_procs.process_count(2, 100, 10, 20, "apply_work") == 2  # asked: always
    monkeypatch.setattr(os, "getloadavg", lambda: (_ for _ in ()).throw(OSError("no load average")))
    _ = fleet_procs.free_cores()  # unknown load: no workers, never a traceback
    assert fleet_procs.process_count(None, 100, 10, 20, "apply_work") == 0


@readonly_fleet
@pytest.mark.parametrize("command", ["plan", "apply", "verify", "rollback", "recover", "runs"])
def test_every_fleet_command_takes_processes_and_refuses_a_negative_count(fw: FleetWs, command: str):
    target = [str(fw.playbook)] if command in ("plan", "apply", "verify") else []
    yes = ["--yes"] if command in ("apply", "rollback", "recover") else []
    r = fw.cli(command, *target, "--all", "--processes", "-1", *yes)
    assert r.code == 2 and "--processes" in r.err, r.text
    assert not fw.journals.exists() and not (fw.root("SITE001") / ".deployer").exists()
    ok = fw.cli("runs", "--all", "--processes", "2") if command == "runs" else None
    assert ok is None or ok.code == 0, ok.text


@fleet_sites(1, 2, 3)
def test_sigterm_to_a_worker_rolls_its_site_back_and_sighup_is_left_to_the_command(fw: FleetWs, started,
                                                                                  monkeypatch):
    """A signal sent to a worker alone: SIGTERM cancels its running site, which rolls back
    there (the fleet goes on); SIGHUP (a closed terminal reaches the whole process group) is
    the command's to decide, so the worker ignores it and its site goes on."""
    before = fw.state("SITE001")
    monkeypatch.setenv("DEPLOYER_FAILPOINTS", "apply.action.3.before=sleep:2")
    marker = fw.root("SITE001") / ".deployer"
    marker2 = fw.root("SITE002") / ".deployer"

    def signal_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (started and started[0].workers and marker.exists()):
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(started[0].workers[0].process.pid, signal.SIGTERM)
        while time.monotonic() < deadline and not marker2.exists():
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(started[0].workers[0].process.pid, signal.SIGHUP)

    t = threading.Thread(target=signal_worker)
    t.start()
    r = fw.apply("--site", "SITE00[1-3]", "--forks", "1", "--processes", "1", "-f", "json")
    t.join()
    got = {s["site"]: s for s in json.loads(r.out)["sites"]}
    assert [got[n]["state"] for n in ("SITE001", "SITE002", "SITE003")] == ["failed", "done", "done"], r.text
    assert "SIGTERM" in got["SITE001"]["message"]
    assert fw.state("SITE001") == before
    assert started[0].started == 1  # the same worker ran all three


@pytest.mark.readonly_fleet
def test_a_fleet_resolves_and_hashes_its_playbook_once_not_per_site(fw: FleetWs, monkeypatch):
    """What every site's plan names but that does not depend on the site (the playbook's and
    manifest's paths and digests) is worked out once per fleet; each plan still names them."""
    from deployer.fleet import workflow
    from deployer.plan import planner
    from deployer.steps.playbook import load_playbook

    resolved: list[str] = []
    real = Path.resolve
    monkeypatch.setattr(Path, "resolve", lambda self, *a, **k: resolved.append(self.name) or real(self, *a, **k))
    inv = workflow.inventory(fw.inventory)
    pb = load_playbook(fw.playbook)
    sites = inv.all_sites()[:5]

    def resolves(n: int) -> tuple[int, list]:
        cache = planner.PayloadCache()  # one fleet's
        resolved.clear()
        plans = [workflow.make_plan(pb, s, payloads=cache) for s in sites[:n]]
        return resolved.count(fw.playbook.name), plans

    one, _ = resolves(1)
    five, plans = resolves(5)
    assert five == one  # was one more per site
    assert {p.playbook for p in plans} == {str(fw.playbook.resolve())}
    assert len({p.manifest_sha256 for p in plans}) == 1 and {p.site for p in plans} == {s.name for s in sites}
