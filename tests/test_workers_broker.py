"""The broker refused, out of reach, or named with a password on the command line (issue 19, items
13 and 14): a clear error and the right exit code, a fleet journal that never leaves sites
waiting, and no secret in any log, journal, report or message. A real redis-server; no
worker is needed (nothing may reach one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from servers.samba import free_port
from test_workers import _fleet, fleet_template  # noqa: F401 - the module's fixture

pytestmark = pytest.mark.slow

SECRET = "hunter22-Secret"


def _workspace(template: Path, base: Path) -> Path:
    return _fleet(template, base, {"B01": "east", "B02": "east", "B03": None})


def _no_traceback(r) -> None:
    assert "Traceback" not in r.text and "internal error" not in r.text, r.text


def _journals(base: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (base / "fleets").glob("*.json")]


@pytest.mark.parametrize("selection", [("--all",), ("--site", "B01")])
def test_a_refused_broker_password_is_bad_input_and_journals_nothing(fleet_template: Path, tmp_path: Path,
                                                                     redis_server, monkeypatch, selection):
    inv = _workspace(fleet_template, tmp_path)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", "not-" + redis_server.password)
    r = run_cli("apply", tmp_path / "playbooks" / "q241656.yaml", *selection, "-i", inv, "--yes", "--broker",
                redis_server.url, "--fleet-dir", tmp_path / "fleets", cwd=tmp_path)
    assert r.code == 2, r.text
    assert "refused the password" in r.err, r.err
    _no_traceback(r)
    assert _journals(tmp_path) == []  # refused before anything was journaled
    assert redis_server.password not in r.text


@pytest.mark.parametrize("selection", [("--all",), ("--site", "B01")])
def test_an_unreachable_broker_exits_1_and_journals_nothing(fleet_template: Path, tmp_path: Path, monkeypatch,
                                                             selection):
    inv = _workspace(fleet_template, tmp_path)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", "whatever")
    r = run_cli("apply", tmp_path / "playbooks" / "q241656.yaml", *selection, "-i", inv, "--yes", "--broker",
                f"redis://127.0.0.1:{free_port()}/0", "--fleet-dir", tmp_path / "fleets", cwd=tmp_path)
    assert r.code == 1, r.text
    assert "cannot be reached" in r.err and "no site was touched" in r.err, r.err
    _no_traceback(r)
    assert _journals(tmp_path) == []


def test_a_resume_with_a_refused_broker_leaves_the_journal_as_it_was(fleet_template: Path, tmp_path: Path,
                                                                      redis_server, monkeypatch):
    inv = _workspace(fleet_template, tmp_path)
    # a fleet run whose regional sites were never started (their region had no worker)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    first = run_cli("apply", tmp_path / "playbooks" / "q241656.yaml", "--all", "-i", inv, "--yes", "--broker",
                    redis_server.url, "--worker-wait", "1", "--fleet-dir", tmp_path / "fleets", cwd=tmp_path)
    assert first.code == 1, first.text
    (before,) = _journals(tmp_path)
    assert {s: v["state"] for s, v in before["sites"].items()} == {"B01": "not_started", "B02": "not_started",
                                                                   "B03": "done"}
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", "not-" + redis_server.password)
    r = run_cli("apply", "--resume", before["id"], "--yes", "--broker", redis_server.url, "--fleet-dir",
                tmp_path / "fleets", cwd=tmp_path)
    assert r.code == 2 and "refused the password" in r.err, r.text
    _no_traceback(r)
    (after,) = _journals(tmp_path)
    assert {s: v["state"] for s, v in after["sites"].items()} == {s: v["state"] for s, v in before["sites"].items()}


def test_a_worker_with_a_refused_password_says_so_and_exits_2(tmp_path: Path, redis_server, monkeypatch):
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", "not-" + redis_server.password)
    r = run_cli("worker", "--region", "east", "--broker", redis_server.url, cwd=tmp_path)
    assert r.code == 2 and "refused the password" in r.err, r.text
    _no_traceback(r)


@pytest.mark.parametrize("url", [f"redis://:{SECRET}@127.0.0.1:1/0", f"redis://admin:{SECRET}@127.0.0.1:1/0",
                                 f"redis://:{SECRET}@/0"])
@pytest.mark.parametrize("selection", [("--all",), ("--site", "B01")])
def test_a_password_in_the_broker_url_reaches_no_log_journal_or_message(fleet_template: Path, tmp_path: Path, url,
                                                                        selection):
    inv = _workspace(fleet_template, tmp_path)
    log = tmp_path / "apply.log"
    r = run_cli("--log", log, "-v", "apply", tmp_path / "playbooks" / "q241656.yaml", *selection, "-i", inv,
                "--yes", "--broker", url, "--fleet-dir", tmp_path / "fleets", cwd=tmp_path)
    assert r.code == 2, r.text
    assert "must not carry a user or password" in r.err, r.err
    assert log.is_file() and "apply" in log.read_text()  # the command line was logged...
    assert SECRET not in log.read_text()  # ...without the password
    assert SECRET not in r.text
    for j in (tmp_path / "fleets").glob("*"):
        assert SECRET not in j.read_text()


@pytest.mark.parametrize("args", [("--password", SECRET), (f"--smb-password={SECRET}",),
                                  (f"DEPLOYER_BROKER_PASSWORD={SECRET}",), (f"--api-token={SECRET}",)])
def test_password_like_options_and_assignments_on_the_command_line_are_not_logged(tmp_path: Path, args):
    log = tmp_path / "plan.log"
    r = run_cli("--log", log, "plan", tmp_path / "nothing.yaml", *args, cwd=tmp_path)
    assert r.code == 2, r.text  # an unknown option or a stray argument: usage error, but logged first
    assert SECRET not in log.read_text() and SECRET not in r.text, log.read_text()


def test_a_dead_workers_task_is_swept_back_every_10_s_past_the_visibility_timeout():
    """The redelivery the README promises (after the visibility timeout, at most 10 s more) is
    kombu's sweep of unacknowledged tasks: every 10 s, and scanning at each sweep (kombu's
    default scans at every 10th, so a killed worker's site waited 100 s for its redelivery:
    test_workers.py::test_a_worker_killed_mid_site_is_replaced_and_the_site_ends_whole)."""
    from deployer.workers.broker import broker, celery_app

    options = celery_app(broker("redis://127.0.0.1:1/0")).conf.broker_transport_options
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] == 10
