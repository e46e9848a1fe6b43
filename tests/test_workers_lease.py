"""A site run outlasting the broker's visibility timeout, and the inventory's relative paths on a
worker (issue 19, items 9 and 12). Real redis-server and `deployer worker` processes; a second
delivery of a running site is sent as the broker sends it after its visibility timeout."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import pytest

from conftest import run_cli
from test_workers import _apply_all, _fleet, fleet_template  # noqa: F401 - the module's fixture

pytestmark = pytest.mark.slow


def _relative_inventory(base: Path, names: list[str]) -> Path:
    """As the shipped sites.yaml writes it: `mock: {path: lab/NAME}`, relative to the project folder."""
    lines = ["sites:"]
    for name in names:
        lines += [f"  {name}:", f"    code: {name[-3:]}", "    platforms: [x86, alpha]",
                  f"    mock: {{path: lab/{name}}}", "    region: east",
                  "    servers:", "      SRV: {role: site_server, platform: x86, sms_root: 'C:\\SMS'}"]
    inv = base / "fleet.yaml"
    inv.write_text("\n".join(lines) + "\n")
    return inv


def _runs(base: Path, name: str) -> list[Path]:
    return sorted((base / "lab" / name / "SRV" / "C" / "SMS" / ".deployer" / "runs").glob("*"))


def _deliver_again(inv: Path, redis_url: str, rollout: str, site: str, region: str) -> None:
    """What the broker does once a site's run outlasts its visibility timeout: the same task (same
    id, same request) delivered again, to whichever worker of the region is free. Sent by hand, so
    that the test does not wait for kombu's restore scan (every 100 s by default)."""
    from deployer.steps.playbook import load_playbook
    from deployer.workers.broker import TASK, broker, celery_app, queue
    from deployer.workers.bundle import make_bundle

    pb = load_playbook(inv.parent / "playbooks" / "q241656.yaml")
    bundle = make_bundle(pb, inv)
    app = celery_app(broker(redis_url))
    request = {"rollout": rollout, "site": site, "bundle": bundle.to_json(), "break_lock": False}
    app.send_task(TASK, args=[request], queue=queue(region), task_id=f"{rollout}:{site}")


def _held_up(base: Path, site: str, worker) -> float:
    """Wait until the worker's run of `site` is held up at its second action (the failpoint's
    sleep); the deadline the rest of the test keeps to."""
    deadline = time.monotonic() + 60
    journals = f"lab/{site}/SRV/C/SMS/.deployer/runs/*/journal.jsonl"
    while not any('"action": 2, "event": "begin"' in p.read_text() for p in base.glob(journals)):
        assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
        time.sleep(0.1)
    return deadline


def test_a_redelivered_site_never_breaks_the_live_lock_of_the_worker_still_running_it(
        fleet_template: Path, tmp_path: Path, workers, redis_server, monkeypatch: pytest.MonkeyPatch):
    sites = {"V01": "east"}
    inv = _fleet(fleet_template, tmp_path, sites)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    slow = workers.start("east", concurrency=1, env={"DEPLOYER_FAILPOINTS": "apply.action.2.before=sleep:20"})
    rollout = f"lease-{time.time_ns()}"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(_apply_all, inv, ["V01"], redis_server.url, wait=120, rollout=rollout)
        deadline = _held_up(tmp_path, "V01", slow)
        second = workers.start("east", concurrency=1)  # another jump host of the region, free
        _deliver_again(inv, redis_server.url, rollout, "V01", "east")
        while "received" not in second.log.read_text():
            assert time.monotonic() < deadline, second.log.read_text()[-3000:]
            time.sleep(0.1)
        results, events = future.result(timeout=180)
    r = results["V01"].result
    assert r["status"] == "committed" and not r["redelivered"], r  # the run that did the work, reported once
    assert len(_runs(tmp_path, "V01")) == 1, _runs(tmp_path, "V01")  # never broken, rolled back or redone
    assert not r["recovered"], r
    assert any("waiting, without touching the site" in e for e in events["V01"]), events["V01"]
    deadline = time.monotonic() + 30
    while "succeeded" not in second.log.read_text():  # the second delivery ends with the same result
        assert time.monotonic() < deadline, second.log.read_text()[-3000:]
        time.sleep(0.1)
    assert f"'run': '{r['run']}'" in second.log.read_text()
    v = run_cli("verify", tmp_path / "playbooks" / "q241656.yaml", "--site", "V01", "-i", inv, cwd=tmp_path)
    assert v.code == 0, v.text


def test_relative_inventory_paths_are_read_from_the_workers_project_folder(fleet_template: Path, tmp_path: Path,
                                                                           workers, redis_server,
                                                                           monkeypatch: pytest.MonkeyPatch):
    _fleet(fleet_template, tmp_path, {"P01": "east"})
    inv = _relative_inventory(tmp_path, ["P01"])
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    workers.start("east", concurrency=1)  # started in the project folder (tmp_path), which holds lab/P01
    results, _ = _apply_all(inv, ["P01"], redis_server.url, wait=60)
    assert results["P01"].result["status"] == "committed", results["P01"].result


def test_a_missing_relative_path_names_the_workers_project_folder(fleet_template: Path, tmp_path: Path, workers,
                                                                  redis_server, monkeypatch: pytest.MonkeyPatch):
    _fleet(fleet_template, tmp_path, {"P02": "east"})
    inv = _relative_inventory(tmp_path, ["P02"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    workers.start("east", concurrency=1, env={"DEPLOYER_WORKER_PROJECT": str(elsewhere)})
    results, _ = _apply_all(inv, ["P02"], redis_server.url, wait=60)
    r = results["P02"].result
    assert r["status"] == "error", r
    assert str(elsewhere / "lab" / "P02") in r["error"] and "deployer worker --project" in r["error"], r
    assert "cache" not in r["error"], r


def test_a_worker_refusing_a_half_patched_site_reports_it_not_restored(fleet_template: Path, tmp_path: Path,
                                                                       workers, redis_server,
                                                                       monkeypatch: pytest.MonkeyPatch):
    import json
    import os
    import subprocess
    import sys

    from deployer.fleet.work import from_remote

    inv = _fleet(fleet_template, tmp_path, {"H01": "east"})
    # a run killed on another machine mid-site: its run unfinished, its lock from a host nobody here can judge
    p = subprocess.run([sys.executable, "-m", "deployer", "--no-log", "apply", str(tmp_path / "playbooks" /
                        "q241656.yaml"), "--site", "H01", "-i", str(inv), "--yes"], cwd=tmp_path,
                       env={**os.environ, "DEPLOYER_FAILPOINTS": "apply.action.5.before=kill"}, capture_output=True)
    assert p.returncode == -9, p
    lock = tmp_path / "lab" / "H01" / "SRV" / "C" / "SMS" / ".deployer" / "lock"
    data = json.loads(lock.read_text())
    data["holder"]["host"] = "jump-host-elsewhere"
    lock.write_text(json.dumps(data))
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    workers.start("east", concurrency=1)
    results, _ = _apply_all(inv, ["H01"], redis_server.url, wait=60)
    r = results["H01"].result
    assert r["status"] == "unfinished", r
    outcome = from_remote("H01", "Q241656", r)
    assert str(outcome.state) == "not_restored" and outcome.exit_code == 4, outcome
    assert "deployer recover --site H01 --break-lock" in outcome.message, outcome.message


def test_a_site_run_longer_than_its_lease_ttl_keeps_the_lease_and_its_lock(
        fleet_template: Path, tmp_path: Path, workers, redis_server, monkeypatch: pytest.MonkeyPatch):
    """A slow site (an upload over a WAN) held up for four times the lease's TTL: the lease is
    renewed within its TTL whatever it is set to, never lapses, and a second delivery of the site
    waits instead of breaking the live lock (the TTL was a fixed 30 s, renewed every 5 s)."""
    from deployer.workers.broker import broker
    from deployer.workers.tasks import LEASE

    inv = _fleet(fleet_template, tmp_path, {"W01": "east"})
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    env = {"DEPLOYER_WORKER_LEASE_TTL": "2"}
    slow = workers.start("east", concurrency=1, env={**env, "DEPLOYER_FAILPOINTS": "apply.action.2.before=sleep:8"})
    rollout = f"ttl-{time.time_ns()}"
    store = broker(redis_server.url).redis()
    key = LEASE.format(rollout, "W01")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(_apply_all, inv, ["W01"], redis_server.url, wait=120, rollout=rollout)
        _held_up(tmp_path, "W01", slow)
        holder = store.get(key)
        assert holder is not None and 0 < store.pttl(key) <= 2000, store.pttl(key)  # the TTL the worker was given
        second = workers.start("east", concurrency=1, env=env)
        _deliver_again(inv, redis_server.url, rollout, "W01", "east")
        held = []
        while not future.done():  # sampled while the first delivery sleeps: always its holder
            held.append(store.get(key))
            time.sleep(0.2)
        results, events = future.result(timeout=180)
    r = results["W01"].result
    assert r["status"] == "committed" and not r["redelivered"] and not r["recovered"], r
    assert len(_runs(tmp_path, "W01")) == 1  # never broken, rolled back or redone
    while held and held[-1] is None:  # released once the run ended
        held.pop()
    assert len(held) > 10 and set(held) == {holder}, (held, holder)  # never lapsed, never another's
    assert not any("lease" in e and "lapsed" in e for e in events["W01"]), events["W01"]
    deadline = time.monotonic() + 30
    while "succeeded" not in second.log.read_text():
        assert time.monotonic() < deadline, second.log.read_text()[-3000:]
        time.sleep(0.1)
    assert f"'run': '{r['run']}'" in second.log.read_text()  # the second delivery's answer: the same run


@pytest.mark.parametrize("value", ["abc", "0.5", "-3", "inf", "nan"])
def test_a_worker_refuses_a_lease_ttl_that_is_no_number_of_seconds(tmp_path: Path, redis_server, monkeypatch,
                                                                   value: str):
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    monkeypatch.setenv("DEPLOYER_WORKER_LEASE_TTL", value)
    r = run_cli("worker", "--region", "east", "--broker", redis_server.url, cwd=tmp_path)
    assert r.code == 2 and "DEPLOYER_WORKER_LEASE_TTL" in r.err and "Traceback" not in r.text, r.text
