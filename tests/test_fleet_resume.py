"""A fleet killed mid-site, and what `--resume` finds: the site's own run state, and every file
that decides the bytes and times put on the sites (issue 19, items 7 and 8)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from deployer.fleet.journal import file_sha256
from test_fleet import NAMES, FleetWs, fw, fleet_template, states  # noqa: F401 - fixtures

# on the worker of test_fleet.py's group (its twenty-site template built once there, not once per
# worker); each test works on the first three sites only, so its workspace holds those three
pytestmark = [pytest.mark.xdist_group("fleet"), pytest.mark.fleet_sites(*NAMES[:3])]

KILLED = "apply.action.5.before=kill"  # after two stops and two swaps: the site is half-patched


def _killed_fleet(fw: FleetWs, sites: str = "SITE00[1-3]") -> str:
    """A fleet controller SIGKILLed in the middle of its first site; the fleet run's id."""
    cmd = [sys.executable, "-m", "deployer", "--no-log", "apply", str(fw.playbook), "--site", sites, "-i",
           str(fw.inventory), "--yes", "--forks", "1", "--fleet-dir", str(fw.journals)]
    p = subprocess.run(cmd, cwd=fw.path, env={**os.environ, "DEPLOYER_FAILPOINTS": KILLED},
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == -9, p.stdout + p.stderr
    (journal,) = fw.journals.glob("*.json")
    return journal.stem


def _journal(fw: FleetWs, fid: str) -> dict:
    return json.loads((fw.journals / f"{fid}.json").read_text())


def test_a_resumed_fleet_recovers_the_site_it_was_killed_in_and_says_so(fw: FleetWs):
    before = fw.state(NAMES[0])
    fid = _killed_fleet(fw)
    assert fw.state(NAMES[0]) != before  # half-patched, its run unfinished, its lock held by a dead process
    r = fw.cli("apply", "--resume", fid, "--fleet-dir", fw.journals, "--yes", "--report", fw.path / "r.json")
    assert r.code == 0, r.text
    site = {s["site"]: s for s in json.loads((fw.path / "r.json").read_text())["sites"]}[NAMES[0]]
    assert site["state"] == "done", site
    assert site["message"].startswith("recovered first: run "), site  # said, never "failed and restored"
    assert [x["status"] for x in site["recovered"]] == ["rolled_back"], site
    assert set(states(_journal(fw, fid)).values()) == {"done"}
    v = fw.cli("verify", fw.playbook, "--site", "SITE00[1-3]")
    assert v.code == 0, v.text


def test_a_new_fleet_over_a_killed_site_names_it_not_restored_with_the_one_command(fw: FleetWs):
    _killed_fleet(fw, NAMES[0] + "," + NAMES[1])
    r = fw.apply("--site", f"{NAMES[0]},{NAMES[2]}")
    assert r.code == 4, r.text  # a site left half-patched is never "failed and restored"
    journal = fw.journal(r.out)
    assert states(journal) == {NAMES[0]: "not_restored", NAMES[2]: "done"}
    msg = journal["sites"][NAMES[0]]["message"]
    assert f"deployer recover --site {NAMES[0]} --break-lock" in msg, msg
    # and the one command named works
    rec = fw.cli("recover", "--site", NAMES[0], "--break-lock", "--yes")
    assert rec.code == 1, rec.text  # the half-done run is rolled back: exit 1 as for any run restored
    again = fw.apply("--site", NAMES[0])
    assert again.code == 0, again.text


def test_a_fleet_recover_or_rollback_over_a_killed_site_is_not_reported_restored(fw: FleetWs):
    _killed_fleet(fw, f"{NAMES[0]},{NAMES[1]}")
    r = fw.cli("rollback", "--site", f"{NAMES[0]},{NAMES[2]}", "--yes", "--fleet-dir", fw.journals)
    assert r.code == 4, r.text
    assert states(fw.journal(r.out))[NAMES[0]] == "not_restored"


# --- item 8: what changed between the stop and the resume ---------------------------------------


def _stopped(fw: FleetWs) -> str:
    fw.break_site(NAMES[0])
    first = fw.apply("--site", f"{NAMES[0]},{NAMES[1]}")
    assert first.code == 1, first.text
    return fw.journal(first.out)["id"]


@pytest.mark.parametrize("change", ["payload_bytes", "payload_time", "manifest", "inventory", "payload_new"])
def test_resume_refuses_what_changed_and_names_it(fw: FleetWs, change: str):
    fid = _stopped(fw)
    fw.own_payloads()  # this test changes a payload: its own copy, never the template's
    payloads = sorted((fw.path / "payloads" / "q241656").rglob("*.*"))
    payload = next(p for p in payloads if p.is_file())
    if change == "payload_bytes":
        data = bytearray(payload.read_bytes())
        data[-1] ^= 1  # same size, same time: only the bytes differ
        st = payload.stat()
        payload.write_bytes(bytes(data))
        os.utime(payload, ns=(st.st_atime_ns, st.st_mtime_ns))
        needle = f"{payload.relative_to(fw.path / 'payloads' / 'q241656').as_posix()} changed (content)"
    elif change == "payload_time":
        st = payload.stat()
        os.utime(payload, ns=(st.st_atime_ns, st.st_mtime_ns - 86_400 * 10**9))
        needle = "changed (modified time)"
    elif change == "payload_new":
        (payload.parent / "EXTRA.DLL").write_bytes(b"x" * 10)
        needle = "EXTRA.DLL is new"
    elif change == "manifest":
        m = fw.path / "manifests" / "q241656.yaml"
        m.write_text(m.read_text() + "\n# edited\n")
        needle = "the manifest"
    else:
        inv = fw.inventory.read_text().replace(f"  {NAMES[0]}:\n", f"  {NAMES[0]}:\n    description: moved\n", 1)
        fw.inventory.write_text(inv)
        needle = f"the inventory entry of site {NAMES[0]} changed"
    r = fw.cli("apply", "--resume", fid, "--fleet-dir", fw.journals, "--yes")
    assert r.code == 2, r.text
    assert needle in r.err and "--accept-changes" in r.err, r.err
    assert states(_journal(fw, fid))[NAMES[0]] == "failed"  # nothing was started or journaled


def test_resume_with_accept_changes_goes_on_and_records_what_it_accepted(fw: FleetWs, fleet_template):
    fid = _stopped(fw)
    m = fw.path / "manifests" / "q241656.yaml"
    m.write_text(m.read_text() + "\n# edited\n")
    # the operator mends the broken site (its folder back as it was) and resumes with the edited manifest
    broken = fw.root(NAMES[0]) / "SITE.SRV" / "MAINCFG.BOX" / "CLIENT.SRC" / "ALPHA.BIN"
    broken.unlink()
    shutil.copytree(fleet_template / broken.relative_to(fw.path), broken)
    r = fw.cli("apply", "--resume", fid, "--fleet-dir", fw.journals, "--yes", "--accept-changes")
    assert r.code == 0, r.text
    assert set(states(_journal(fw, fid)).values()) == {"done"}
    assert _journal(fw, fid)["fingerprint"]["manifest"]["sha256"] == file_sha256(m)  # what it accepted


def test_accept_changes_without_resume_is_refused(fw: FleetWs):
    r = fw.apply("--site", NAMES[0], "--accept-changes")
    assert r.code == 2 and "--accept-changes goes with --resume" in r.err, r.text


# --- a fleet journal damaged between the stop and the resume -------------------------------------


@pytest.mark.parametrize("damage", ["empty", "torn", "not_a_mapping", "site_not_a_mapping", "no_id", "no_inventory",
                                    "playbook_not_text", "fingerprint_not_a_mapping"])
def test_a_damaged_fleet_journal_is_refused_with_a_way_forward(fw: FleetWs, damage: str):
    """Whatever shape the file is in (a disk that filled up, a hand edit), `--resume` says which file is
    damaged and what to do instead (start the rollout again: done sites have nothing to do), exit 2,
    never a traceback, and touches no site."""
    fid = _stopped(fw)
    path = fw.journals / f"{fid}.json"
    data = json.loads(path.read_text())
    if damage == "empty":
        text = ""
    elif damage == "torn":
        text = path.read_text()[:50]
    elif damage == "not_a_mapping":
        text = json.dumps([data])
    else:
        if damage == "site_not_a_mapping":
            data["sites"][NAMES[0]] = "failed"
        elif damage == "no_id":
            del data["id"]
        elif damage == "no_inventory":
            del data["inventory"]
        elif damage == "playbook_not_text":
            data["playbook"] = 42
        else:  # a fingerprint that is not one must never turn the check of what changed off
            data["fingerprint"] = "x"
        text = json.dumps(data)
    path.write_text(text)
    before = {n: fw.state(n) for n in NAMES[:2]}
    r = fw.cli("apply", "--resume", fid, "--fleet-dir", fw.journals, "--yes")
    assert r.code == 2, r.text
    assert "Traceback" not in r.text and "internal error" not in r.text, r.text
    assert str(path) in r.err and "damaged" in r.err, r.err
    assert "start the rollout again" in r.err, r.err
    assert {n: fw.state(n) for n in NAMES[:2]} == before


def test_a_remaining_site_gone_from_the_inventory_is_named_and_accepted_only_when_said(fw: FleetWs):
    """A site still to do that left the inventory (retired, renamed) is a change like an edited entry:
    `--resume` names it and goes on only with --accept-changes, which journals it not started;
    without that way forward the rollout could never be resumed."""
    import re

    fid = _stopped(fw)
    text = re.sub(rf"  {NAMES[0]}:\n(?:    .*\n)+", "", fw.inventory.read_text(), count=1)
    fw.inventory.write_text(text)
    r = fw.cli("apply", "--resume", fid, "--fleet-dir", fw.journals, "--yes")
    assert r.code == 2, r.text
    assert f"site {NAMES[0]} is no longer in the inventory" in r.err and "--accept-changes" in r.err, r.err
    assert states(_journal(fw, fid))[NAMES[0]] == "failed"
    r = fw.cli("apply", "--resume", fid, "--fleet-dir", fw.journals, "--yes", "--accept-changes")
    assert r.code == 0, r.text
    assert NAMES[0] in r.out and "no longer in the inventory" in r.out, r.out
    assert states(_journal(fw, fid))[NAMES[0]] == "not_started"
