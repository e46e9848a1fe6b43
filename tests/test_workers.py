"""Regional workers on Celery with a Redis broker, all real: a redis-server and `deployer worker`
processes on 127.0.0.1, sites on the mock target, Q241656 applied through them."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import time
from pathlib import Path

import pytest

from conftest import copy_project, run_cli, snapshot
from deployer.steps.playbook import load_playbook
from deployer.run.context import RunContext

pytestmark = pytest.mark.slow

REGIONS = {"east": range(1, 11), "west": range(11, 21)}
JOURNALS = "lab/*/SRV/C/SMS/.deployer/runs/*/journal.jsonl"


def _inventory(base: Path, sites: dict[str, str | None]) -> Path:
    lines = ["sites:"]
    for name, region in sites.items():
        lines += [f"  {name}:", f"    code: {name[-3:]}", "    timezone: America/Los_Angeles",
                  "    platforms: [x86, alpha]", f"    mock: {{path: '{base / 'lab' / name}'}}"]
        if region:
            lines.append(f"    region: {region}")
        lines += ["    servers:", "      SRV: {role: site_server, platform: x86, sms_root: 'C:\\SMS'}"]
    inv = base / "fleet.yaml"
    inv.write_text("\n".join(lines) + "\n")
    return inv


@pytest.fixture(scope="module")
def fleet_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pre-hotfix one-server site (and the stand-in payloads), built once and copied per test."""
    base = copy_project(tmp_path_factory.mktemp("fleet-template"))
    inv = _inventory(base, {"T00": None})
    r = run_cli("lab", "init", "T00", "--inventory", inv, cwd=base)
    assert r.code == 0, r.text
    return base


def _fleet(template: Path, base: Path, sites: dict[str, str | None]) -> Path:
    for d in ("playbooks", "manifests", "payloads"):
        shutil.copytree(template / d, base / d)
    for name in sites:
        shutil.copytree(template / "lab" / "T00", base / "lab" / name, symlinks=True)
    return _inventory(base, sites)


def _sites(*regions: str) -> dict[str, str | None]:
    return {f"R{i:02d}": region for region in regions for i in REGIONS[region]}


def _apply_all(inv: Path, names: list[str], redis_url: str, *, wait: float = 60.0, rollout: str | None = None):
    """What `deployer apply --all --broker` does: each site to its region's workers, concurrently."""
    from deployer.fleet import workflow
    from deployer.workers.remote import dispatcher_for

    loaded = workflow.inventory(inv)
    pb = load_playbook(inv.parent / "playbooks" / "q241656.yaml")
    d = dispatcher_for(pb, inv, redis_url, rollout=rollout, start_timeout=wait)
    events: dict[str, list[str]] = {n: [] for n in names}

    def one(name: str):
        site = loaded.site(name)
        ctx = RunContext(name, lambda e: events[e.site].append(f"{e.kind}: {e.text}") or True)
        return d.run(name, site.site.region, ctx)

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = dict(zip(names, pool.map(one, names)))
    finally:
        d.close()
    return results, events


def _site_state(base: Path, name: str) -> dict:
    return snapshot(base / "lab" / name)


def test_twenty_sites_in_two_regions_through_two_workers_each(fleet_template: Path, tmp_path: Path, workers,
                                                              redis_server, monkeypatch: pytest.MonkeyPatch):
    sites = _sites("east", "west")
    inv = _fleet(fleet_template, tmp_path, sites)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    for region in ("east", "west"):
        workers.start(region)
        workers.start(region)
    results, events = _apply_all(inv, list(sites), redis_server.url)
    bad = {n: r.result for n, r in results.items() if r.status != "committed"}
    assert not bad, bad
    served = {r.result["worker"].split("/")[-1].split("@")[0] for r in results.values()}
    assert len(served) >= 3, served  # the regions' workers shared the sites
    for name, r in results.items():
        region = sites[name]
        assert f"-{region}-" in r.result["worker"], (name, r.result["worker"])  # its own region's queue only
        assert r.result["report"]["passed"] and r.result["report"]["summary"]["total"] == 16  # 11, and the site server's own LOGON.SRV (issue 19 item 17)
        assert any(e.startswith("say: [1/") for e in events[name]), events[name]  # events streamed back
    # and every site verifies from the controller too
    for name in sites:
        v = run_cli("verify", inv.parent / "playbooks" / "q241656.yaml", "--site", name, "-i", inv, cwd=tmp_path)
        assert v.code == 0, v.text
    print(f"{len(sites)} sites over 2 regions x 2 workers: all committed, served by {len(served)} worker processes")


def test_the_fleet_command_sends_each_site_to_its_region_and_runs_the_rest_here(fleet_template: Path, tmp_path: Path,
                                                                               workers, redis_server,
                                                                               monkeypatch: pytest.MonkeyPatch):
    sites = {**_sites("east", "west"), "L01": None}
    inv = _fleet(fleet_template, tmp_path, sites)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    for region in ("east", "west"):
        workers.start(region)
        workers.start(region)
    r = run_cli("apply", tmp_path / "playbooks" / "q241656.yaml", "--all", "-i", inv, "--yes", "--broker",
                redis_server.url, "--fleet-dir", tmp_path / "fleets", "--report", tmp_path / "fleet.json",
                cwd=tmp_path)
    assert r.code == 0, r.text
    report = json.loads((tmp_path / "fleet.json").read_text())
    by_site = {s["site"]: s for s in report["sites"]}
    assert report["counts"]["done"] == len(sites), report["counts"]
    for name, region in sites.items():
        worker = by_site[name].get("worker")
        if region:
            assert worker and f"-{region}-" in worker, (name, worker)  # run on its own region's worker
        else:
            assert not worker, name  # no region: run on the controller
        # the payload bytes a worker uploaded reach the controller's totals with its narrative
        assert by_site[name]["bytes"] == by_site["L01"]["bytes"] > 0, name
    assert report["bytes"] == sum(s["bytes"] for s in report["sites"])
    assert redis_server.password not in r.text
    print(f"deployer apply --all --broker: {len(sites)} sites, 20 through two regions' workers, 1 on the controller")


def test_a_controller_killed_mid_rollout_resumes_without_repeating_finished_sites(
        fleet_template: Path, tmp_path: Path, workers, redis_server, monkeypatch: pytest.MonkeyPatch):
    import os
    import signal
    import subprocess
    import sys

    sites = {f"M{i:02d}": "east" for i in range(1, 9)}
    inv = _fleet(fleet_template, tmp_path, sites)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    workers.start("east", concurrency=1, env={"DEPLOYER_FAILPOINTS": "apply.action.2.before=sleep:1"})
    fleets = tmp_path / "fleets"
    cmd = [sys.executable, "-m", "deployer", "--no-log", "apply", str(tmp_path / "playbooks" / "q241656.yaml"),
           "--all", "-i", str(inv), "--yes", "--broker", redis_server.url, "--fleet-dir", str(fleets),
           "--forks", "2"]
    controller = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  start_new_session=True, env={**os.environ})
    deadline = time.monotonic() + 120

    def done_sites() -> set[str]:
        for j in fleets.glob("*.json"):
            try:
                data = json.loads(j.read_text())
            except ValueError:
                continue
            return {k for k, v in data["sites"].items() if v["state"] in ("done", "nothing")}
        return set()

    while len(done_sites()) < 2:
        assert time.monotonic() < deadline and controller.poll() is None, "the rollout did not get going"
        time.sleep(0.2)
    os.killpg(controller.pid, signal.SIGKILL)  # the controller dies; the workers go on with what they have
    controller.wait()
    finished_before = done_sites()
    assert 2 <= len(finished_before) < len(sites)
    (fleet_id,) = [j.stem for j in fleets.glob("*.json")]
    r = run_cli("apply", "--resume", fleet_id, "--yes", "--broker", redis_server.url, "--fleet-dir", fleets,
                cwd=tmp_path)
    assert r.code == 0, r.text
    for name in finished_before:  # a finished site is not started again
        assert f"{name}:" not in r.out, r.out
    for name in sites:
        v = run_cli("verify", tmp_path / "playbooks" / "q241656.yaml", "--site", name, "-i", inv, cwd=tmp_path)
        assert v.code == 0, (name, v.text)
    print(f"controller killed after {len(finished_before)} of {len(sites)} sites; --resume finished the other "
          f"{len(sites) - len(finished_before)} without repeating those, every site verifies")


def test_a_worker_killed_mid_site_is_replaced_and_the_site_ends_whole(fleet_template: Path, tmp_path: Path, workers,
                                                                      redis_server, monkeypatch: pytest.MonkeyPatch):
    sites = {"K01": "east"}
    inv = _fleet(fleet_template, tmp_path, sites)
    before = _site_state(tmp_path, "K01")
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    doomed = workers.start("east", concurrency=1, env={"DEPLOYER_FAILPOINTS": "apply.action.5.before=sleep:120"})
    journal_glob = "lab/K01/SRV/C/SMS/.deployer/runs/*/journal.jsonl"

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(_apply_all, inv, ["K01"], redis_server.url, wait=120)
        deadline = time.monotonic() + 60
        # the worker hangs before action 5: actions 1-4 (two stops, two swaps) are done by then
        while not any('"action": 5, "event": "begin"' in p.read_text() for p in tmp_path.glob(journal_glob)):
            assert time.monotonic() < deadline, doomed.log.read_text()[-3000:]
            time.sleep(0.1)
        half = _site_state(tmp_path, "K01")
        assert half != before  # files were swapped: the site is half-patched when its worker dies
        doomed.kill()
        workers.start("east", concurrency=1)  # another jump host of the region
        results, events = future.result(timeout=180)
    r = results["K01"].result
    assert r["status"] == "committed", r
    assert r["redelivered"] and r["recovered"] and r["recovered"][0]["status"] == "rolled_back", r
    v = run_cli("verify", tmp_path / "playbooks" / "q241656.yaml", "--site", "K01", "-i", inv, cwd=tmp_path)
    assert v.code == 0, v.text
    print("worker killed mid-site (action 5 of the run): the task was redelivered, the half-done run rolled back, "
          "then applied: committed and verified")


def test_a_region_without_workers_is_reported_not_started_within_the_bound(fleet_template: Path, tmp_path: Path,
                                                                           workers, redis_server,
                                                                           monkeypatch: pytest.MonkeyPatch):
    sites = {"N01": "north"}
    inv = _fleet(fleet_template, tmp_path, sites)
    before = _site_state(tmp_path, "N01")
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    t0 = time.monotonic()
    results, _ = _apply_all(inv, ["N01"], redis_server.url, wait=3)
    assert results["N01"].status == "not_started"
    assert "no worker of region north" in results["N01"].result["error"]
    assert time.monotonic() - t0 < 30
    # a worker started later does not run the abandoned task
    w = workers.start("north", concurrency=1)
    deadline = time.monotonic() + 30
    while "'status': 'not_started'" not in w.log.read_text():  # it gets the queued task, and drops it
        assert time.monotonic() < deadline, w.log.read_text()[-2000:]
        time.sleep(0.2)
    assert _site_state(tmp_path, "N01") == before
    print("region north has no worker: reported not started after 3 s; a worker started later left it alone")


def test_redis_restarted_mid_rollout_loses_nothing(fleet_template: Path, tmp_path: Path, workers, redis_server,
                                                    monkeypatch: pytest.MonkeyPatch):
    sites = {f"Q{i:02d}": "east" for i in range(1, 7)}
    inv = _fleet(fleet_template, tmp_path, sites)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    workers.start("east", concurrency=1, env={"DEPLOYER_FAILPOINTS": "apply.action.2.before=sleep:2"})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(_apply_all, inv, list(sites), redis_server.url, wait=120)
        # mid-rollout: the worker is inside the first site's run (each run pauses 2 s at action 2,
        # one site at a time), the other five still queued in Redis
        deadline = time.monotonic() + 60
        while not any('"event": "begin"' in p.read_text() for p in tmp_path.glob(JOURNALS)):
            assert time.monotonic() < deadline and not future.done(), "the rollout did not get going"
            time.sleep(0.1)
        redis_server.restart()
        results, _ = future.result(timeout=300)
    statuses = {n: r.status for n, r in results.items()}
    assert set(statuses.values()) <= {"committed"}, statuses
    for name in sites:
        v = run_cli("verify", tmp_path / "playbooks" / "q241656.yaml", "--site", name, "-i", inv, cwd=tmp_path)
        assert v.code == 0, (name, v.text)
    print(f"Redis restarted mid-rollout: {len(sites)} sites committed and verified")


def test_the_cli_sends_a_regional_site_to_its_workers(fleet_template: Path, tmp_path: Path, workers, redis_server,
                                                      monkeypatch: pytest.MonkeyPatch):
    sites = {"C01": "east", "C02": None}
    inv = _fleet(fleet_template, tmp_path, sites)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    workers.start("east", concurrency=1)
    r = run_cli("apply", tmp_path / "playbooks" / "q241656.yaml", "--site", "C01", "-i", inv, "--yes",
                "--broker", redis_server.url, cwd=tmp_path)
    assert r.code == 0, r.text
    assert "Site C01 (region east on" in r.out and "committed" in r.out and "PASSED" in r.out
    assert "[1/" in r.out  # the worker's step lines, relayed
    # a site without a region runs on the controller, broker or not
    r = run_cli("apply", tmp_path / "playbooks" / "q241656.yaml", "--site", "C02", "-i", inv, "--yes",
                "--broker", redis_server.url, cwd=tmp_path)
    assert r.code == 0 and "Applied Q241656 to site C02" in r.out, r.text
    assert redis_server.password not in r.text


def test_a_broker_url_with_a_password_is_refused(tmp_path: Path):
    r = run_cli("worker", "--region", "east", "--broker", "redis://:hunter22@127.0.0.1:1/0", cwd=tmp_path)
    assert r.code == 2 and "must not carry a user or password" in r.err
    assert "hunter22" not in r.text
