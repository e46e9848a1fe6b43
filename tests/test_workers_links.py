"""Symbolic links in a project, on a site, a fleet and a worker. A `payloads/` folder (or
`playbooks/`, `manifests/`, a platform folder, one hotfix file, the inventory) that is a link, inside the
project or leading out of it, is followed: the files are read where the link points, on the
controller, and a worker receives plain files where the playbook looks for them. The files are
the manifest's either way (size, and sha256 or version where it lists them). A rollout through
workers refuses a playbook naming its manifest or hotfix folder by an absolute path (the worker
would read its own disk), exit 2, nothing sent. Real redis-server and `deployer worker`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from test_workers import _apply_all, _fleet, fleet_template  # noqa: F401 - the module's fixture

pytestmark = pytest.mark.slow


def _links(base: Path, outside: Path, layout: str) -> None:
    """Move a folder of the project out of it (or within it) and leave a link in its place."""
    if layout == "payloads-outside":
        shutil.move(base / "payloads", outside / "store")
        (base / "payloads").symlink_to(outside / "store", target_is_directory=True)
    elif layout == "payloads-inside":
        shutil.move(base / "payloads", base / "hotfixes")
        (base / "payloads").symlink_to("hotfixes", target_is_directory=True)
    elif layout == "platform-and-file":
        x86 = next(d for d in (base / "payloads" / "q241656").iterdir() if d.name.lower() in ("x86", "i386"))
        shutil.move(x86, outside / "x86-store")
        x86.symlink_to(outside / "x86-store", target_is_directory=True)
        one = sorted((outside / "x86-store").iterdir())[0]
        shutil.move(one, outside / one.name)
        one.symlink_to(outside / one.name)
    elif layout == "playbooks-and-manifests":
        for d in ("playbooks", "manifests"):  # the playbook's '../manifests' and '../payloads' then
            shutil.move(base / d, outside / d)  # read beside the link's target, as the OS reads them
            (base / d).symlink_to(outside / d, target_is_directory=True)
        (outside / "payloads").symlink_to(base / "payloads", target_is_directory=True)
    elif layout == "inventory":  # its relative paths still read from the project (the link's folder)
        shutil.move(base / "fleet.yaml", outside / "fleet.yaml")
        (base / "fleet.yaml").symlink_to(outside / "fleet.yaml")
    else:
        raise AssertionError(layout)


LAYOUTS = ["payloads-outside", "payloads-inside", "platform-and-file", "playbooks-and-manifests", "inventory"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_worker_applies_from_a_project_whose_folders_are_links(fleet_template: Path, tmp_path: Path, workers,
                                                                 redis_server, monkeypatch, layout: str):
    base, outside = tmp_path / "project", tmp_path / "elsewhere"
    base.mkdir()
    outside.mkdir()
    inv = _fleet(fleet_template, base, {"L01": "east"})
    _links(base, outside, layout)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    workers.start("east", concurrency=1)
    results, events = _apply_all(inv, ["L01"], redis_server.url)
    r = results["L01"].result
    assert r["status"] == "committed", (r, events["L01"])
    assert r["report"]["passed"], r["report"]
    v = run_cli("verify", base / "playbooks" / "q241656.yaml", "--site", "L01", "-i", inv, cwd=base)
    assert v.code == 0, v.text


@pytest.mark.parametrize("layout", ["payloads-outside", "playbooks-and-manifests", "inventory"])
def test_a_site_and_a_fleet_apply_from_a_project_whose_folders_are_links(fleet_template: Path, tmp_path: Path,
                                                                         layout: str):
    base, outside = tmp_path / "project", tmp_path / "elsewhere"
    base.mkdir()
    outside.mkdir()
    inv = _fleet(fleet_template, base, {"L01": None, "L02": None, "L03": None})
    _links(base, outside, layout)
    book = base / "playbooks" / "q241656.yaml"
    r = run_cli("apply", book, "--site", "L01", "-i", inv, "--yes", cwd=base)
    assert r.code == 0, r.text
    r = run_cli("apply", book, "--site", "L02,L03", "-i", inv, "--yes", cwd=base)
    assert r.code == 0, r.text
    for name in ("L01", "L02", "L03"):
        assert run_cli("verify", book, "--site", name, "-i", inv, cwd=base).code == 0


def test_a_rollout_through_workers_refuses_an_absolute_payloads_folder(fleet_template: Path, tmp_path: Path,
                                                                       redis_server, monkeypatch):
    base = tmp_path / "project"
    base.mkdir()
    inv = _fleet(fleet_template, base, {"L01": "east"})
    book = base / "playbooks" / "q241656.yaml"
    text = book.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("payloads:"))
    book.write_text(text.replace(line, f"payloads: '{base / 'payloads' / 'q241656'}'"))
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    r = run_cli("apply", book, "--site", "L01", "-i", inv, "--yes", "--broker", redis_server.url, cwd=base)
    assert r.code == 2, r.text
    assert "payloads:" in r.err and "absolute path" in r.err and "Traceback" not in r.text, r.err
    assert not list((base / "lab" / "L01").rglob("journal.jsonl"))  # nothing sent, nothing journaled


def test_a_worker_receives_the_pcm_record_a_preflight_step_names(fleet_template: Path, tmp_path: Path, workers,
                                                                 redis_server, monkeypatch):
    """A file a step names relative to the playbook (a preflight's pcm_record, PCMDUMP output that
    may be UTF-16 or in the DOS code page) travels with the rollout, byte for byte: the worker
    read its own disk and failed the site."""
    from test_pcm_records import article_sample

    base = tmp_path / "project"
    base.mkdir()
    inv = _fleet(fleet_template, base, {"L02": "east"})
    (base / "records").mkdir()
    (base / "records" / "mdm00005.txt").write_bytes(b"\xff\xfe" + article_sample().encode("utf-16-le"))
    book = base / "playbooks" / "q241656.yaml"
    text = book.read_text()
    book.write_text(text.replace("steps:\n", "steps:\n  - preflight: {pcm_record: ../records/mdm00005.txt, "
                                 "request: BPC005Q}\n", 1))
    assert run_cli("plan", book, "--site", "L02", "-i", inv, cwd=base).code == 0  # as a site reads it
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    workers.start("east", concurrency=1)
    results, events = _apply_all(inv, ["L02"], redis_server.url)
    r = results["L02"].result
    assert r["status"] == "committed", (r, events["L02"])
    assert any("preflight" in e for e in events["L02"]), events["L02"]


def test_a_rollout_through_workers_refuses_a_payloads_link_that_points_nowhere(fleet_template: Path, tmp_path: Path,
                                                                               redis_server, monkeypatch):
    base = tmp_path / "project"
    base.mkdir()
    inv = _fleet(fleet_template, base, {"L01": "east"})
    shutil.rmtree(base / "payloads")
    (base / "payloads").symlink_to(tmp_path / "unmounted-share", target_is_directory=True)
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    book = base / "playbooks" / "q241656.yaml"
    r = run_cli("apply", book, "--site", "L01", "-i", inv, "--yes", "--broker", redis_server.url, cwd=base)
    assert r.code == 2 and "unmounted-share" in r.err and "does not exist" in r.err and "Traceback" not in r.text, r.err
    assert not list((base / "lab" / "L01").rglob("journal.jsonl"))  # nothing sent, nothing journaled
