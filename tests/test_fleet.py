"""Fleets on the embedded mock target: many sites in one command, concurrently.

A fleet here is N copies of a one-server site (deployer/simulator/fleet_lab.py), each its own mock
site folder. Failures are injected per site by breaking that site's files (a folder made
a file), never with failpoints, which are process-global and would hit every site.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Project, lab_project, run_cli, services, sigint_once, snapshot
from deployer import failpoints
from deployer.simulator.fleet_lab import site_names

# the twenty-site template is built once per xdist worker: its tests share one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("fleet")

N = 20
GROUPS = {"EAST": ["SITE00[1-5]"], "WEST": ["SITE016", "SITE02*"]}


@pytest.fixture(scope="session")
def fleet_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lab_project(tmp_path_factory.mktemp("fleet-template"), N, GROUPS)


@dataclass
class FleetWs(Project):
    @property
    def journals(self) -> Path:
        return self.path / "fleets"

    def site(self, name: str) -> Path:
        return self.path / "lab" / name

    def root(self, name: str) -> Path:
        return self.site(name) / f"SRV{name[-3:]}" / "C" / "SMS"

    def cli(self, *args: str):
        return run_cli(*args, "-i", self.inventory, cwd=self.path)

    def apply(self, *args: str):
        return self.cli("apply", self.playbook, "--yes", "--fleet-dir", self.journals, *args)

    def state(self, name: str):
        return snapshot(self.site(name)), services(self.site(name))

    def break_site(self, name: str) -> None:
        """A folder the playbook replaces files in becomes a file: that site's run fails at the
        first replace there and rolls back."""
        folder = self.root(name) / "SITE.SRV" / "MAINCFG.BOX" / "CLIENT.SRC" / "ALPHA.BIN"
        shutil.rmtree(folder)
        folder.write_bytes(b"not a folder")

    def own_payloads(self) -> None:
        """The payloads as a copy of this workspace's own, for a test that changes them (they are
        a link to the template's, shared by every fleet test on this worker)."""
        link = self.path / "payloads"
        if link.is_symlink():
            target = link.resolve()
            link.unlink()
            shutil.copytree(target, link)

    def journal(self, text: str) -> dict:
        fid = next(line.split()[1].rstrip(":") for line in text.splitlines() if line.startswith("Fleet "))
        return json.loads((self.journals / f"{fid}.json").read_text())


def _fleet_copy(template: Path, dest: Path, sites: list[str]) -> FleetWs:
    """The project files and inventory of the template, its stand-in payloads shared (a link; a
    test that changes a payload takes its own copy first: FleetWs.own_payloads), and the lab
    folders of `sites` only."""
    dest.mkdir()
    for name in ("playbooks", "manifests"):
        shutil.copytree(template / name, dest / name)
    shutil.copy(template / "sites.yaml", dest / "sites.yaml")
    (dest / "payloads").symlink_to(template / "payloads", target_is_directory=True)
    for name in sites:
        shutil.copytree(template / "lab" / name, dest / "lab" / name, symlinks=True)
    return FleetWs(dest)


@pytest.fixture
def fw(fleet_template: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FleetWs]:
    """A fleet workspace holding the lab sites the test works on: those its `fleet_sites` marker
    names (each test selects sites by name or glob, and the other sites of the inventory are
    never reached), or all twenty. Copying twenty 16 MB sites for a test that uses three was
    most of this module's time.

    A test marked `readonly_fleet` (refusals, plans: it must change nothing) gets one
    twenty-site workspace shared by all such tests, and is checked after to have changed
    nothing in it: every file of it (payloads aside) keeps its name, size and write time, no
    new file appears, and the inventory keeps its bytes."""
    if request.node.get_closest_marker("readonly_fleet"):
        shared = request.getfixturevalue("shared_fleet")
        before = _fingerprint(shared)
        yield shared
        assert _fingerprint(shared) == before, "a test that must change nothing changed the shared fleet workspace"
        return
    marker = request.node.get_closest_marker("fleet_sites")
    sites = list(marker.args) if marker else site_names(N)
    yield _fleet_copy(fleet_template, tmp_path / "fleet", sites)


@pytest.fixture(scope="module")
def shared_fleet(fleet_template: Path, tmp_path_factory: pytest.TempPathFactory) -> FleetWs:
    return _fleet_copy(fleet_template, tmp_path_factory.mktemp("shared-fleet") / "fleet", site_names(N))


def _fingerprint(fw: FleetWs) -> tuple:
    files = sorted((str(p.relative_to(fw.path)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in fw.path.rglob("*") if p.is_file() and p.parts[len(fw.path.parts)] != "payloads")
    return fw.inventory.read_bytes(), files


readonly_fleet = pytest.mark.readonly_fleet


def fleet_sites(*numbers: int):
    """The sites SITE<n> a test's workspace holds (see `fw`)."""
    return pytest.mark.fleet_sites(*(f"SITE{n:03d}" for n in numbers))


NAMES = site_names(N)


def states(journal: dict) -> dict[str, str]:
    return {k: v["state"] for k, v in journal["sites"].items()}


# --- selecting sites ------------------------------------------------------------------------------


def _selected(fw: FleetWs, *args: str) -> list[str]:
    r = fw.cli("plan", fw.playbook, "-f", "json", *args)
    assert r.code == 0, r.text
    return [s["site"] for s in json.loads(r.out)["sites"]]


@readonly_fleet
def test_sites_are_selected_by_repeats_commas_globs_groups_and_all(fw: FleetWs):
    assert _selected(fw, "--site", "SITE003", "--site", "site001,SITE002") == ["SITE003", "SITE001", "SITE002"]
    assert _selected(fw, "--site", "SITE01*") == [f"SITE{i:03d}" for i in range(10, 20)]
    assert _selected(fw, "--group", "EAST") == [f"SITE{i:03d}" for i in range(1, 6)]
    assert _selected(fw, "--group", "west", "--site", "SITE001") == ["SITE001", "SITE016", "SITE020"]
    assert _selected(fw, "--all") == NAMES


@readonly_fleet
def test_a_site_alone_and_in_a_fleet_is_planned_and_verified_the_same(fw: FleetWs):
    """One work per command (fleet/work.py): a site's plan and verification read the same alone
    (the one-site JSON) and as one site of a fleet (its entry in the fleet's JSON report)."""
    pair = ("--site", "SITE001", "--site", "SITE002")
    def timeless(plan: dict) -> dict:  # the two plans are made a moment apart: all but when must agree
        return {k: v for k, v in plan.items() if k != "created_utc"}

    one_plan = timeless(json.loads(fw.cli("plan", fw.playbook, "--site", "SITE002", "-f", "json").out))
    fleet_plan = json.loads(fw.cli("plan", fw.playbook, *pair, "-f", "json").out)
    assert [timeless(s["plan"]) for s in fleet_plan["sites"] if s["site"] == "SITE002"] == [one_plan]
    one = fw.cli("verify", fw.playbook, "--site", "SITE002", "-f", "json")
    fleet = fw.cli("verify", fw.playbook, *pair, "-f", "json")
    assert one.code == fleet.code == 3, one.text + fleet.text  # not patched yet: mismatch, alone and in a fleet
    alone = {k: v for k, v in json.loads(one.out).items() if k != "traffic"}
    assert [s["report"] for s in json.loads(fleet.out)["sites"] if s["site"] == "SITE002"] == [alone]


@readonly_fleet
def test_one_selected_site_keeps_the_one_site_output(fw: FleetWs):
    one = fw.cli("plan", fw.playbook, "--site", "SITE001")
    glob = fw.cli("plan", fw.playbook, "--site", "SITE00[1]")
    assert one.code == glob.code == 0
    assert one.out == glob.out
    assert "1. stop SMS_PACKAGE_COMMAND_MANAGER_NT on SRV001" in one.out and "Fleet" not in one.out


@readonly_fleet
@pytest.mark.parametrize("args, needle", [
    (("--site", "NOPE*"), "--site 'NOPE*' matches no site of the inventory"),
    (("--site", "SITE001,,SITE002"), "an empty site name"),
    (("--group", "NORTH"), "no group named 'NORTH' in the inventory; groups: EAST, WEST"),
    (("--all", "--site", "SITE001"), "--all already selects every site"),
    (("--site", "SITE001,site001"), "--site is given more than once for site001"),
    ((), "name the sites to work on"),
])
def test_bad_selections_are_refused_with_exit_2(fw: FleetWs, args, needle):
    before = fw.state("SITE001")
    r = fw.cli("apply", fw.playbook, "--yes", *args)
    assert r.code == 2, r.text
    assert needle in r.err
    assert "Traceback" not in r.text
    assert fw.state("SITE001") == before


@fleet_sites()
def test_a_group_member_that_matches_no_site_is_refused_at_its_line(fw: FleetWs):
    text = fw.inventory.read_text().replace("'SITE016'", "'SITE16'")
    fw.inventory.write_text(text)
    r = fw.cli("plan", fw.playbook, "--all")
    assert r.code == 2, r.text
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "WEST:" in ln)
    assert f"sites.yaml:{line}:" in r.err and "'SITE16' matches no site" in r.err


@readonly_fleet
@pytest.mark.parametrize("opt, value", [("--batch", "0"), ("--batch", "150%"), ("--max-fail", "x"),
                                        ("--forks", "0")])
def test_bad_rollout_options_are_refused(fw: FleetWs, opt, value):
    r = fw.apply("--all", opt, value)
    assert r.code == 2, r.text
    assert opt in r.err and "Traceback" not in r.text
    assert not list(fw.path.glob("lab/*/*/C/SMS/.deployer"))


# --- applying a fleet -----------------------------------------------------------------------------


def test_twenty_sites_apply_concurrently_then_a_second_run_does_nothing(fw: FleetWs):
    r = fw.apply("--all", "--report", fw.path / "fleet.xml")
    assert r.code == 0, r.text
    for name in NAMES:
        # the whole article's playbook comes to 16 actions on a one-server site (its LOGON.SRV awaited too)
        assert f"{name}: applied Q241656: 16 actions" in r.out
    assert f"{N} sites in" in r.out and f"{N} done" in r.out
    journal = fw.journal(r.out)
    assert set(states(journal).values()) == {"done"}
    # they overlapped: each site's run was journaled on its own server, and the runs' windows intersect
    # each site's suites as the one-site JUnit writes them: its server's files, then its run
    suites = {s.get("name"): s for s in ET.parse(fw.path / "fleet.xml").getroot()}
    files = [f"Q241656.{n}.SRV{n[-3:]}" for n in NAMES]
    assert [n for n in suites if n.count(".") == 2] == files
    assert all(suites[n].get("failures") == "0" and suites[n].get("tests") == "16" for n in files)  # 11, and 5 in its LOGON.SRV
    assert all(suites[f"Q241656.{n}"].get("failures") == "0" for n in NAMES)

    before = {n: fw.state(n) for n in NAMES}
    again = fw.apply("--all")
    assert again.code == 0, again.text
    assert f"0 done, {N} nothing to do" in again.out
    assert {n: fw.state(n) for n in NAMES} == before

    v = fw.cli("verify", fw.playbook, "--all", "-f", "json")
    assert v.code == 0, v.text
    data = json.loads(v.out)
    assert data["counts"]["done"] == N and all(s["report"]["passed"] for s in data["sites"])


@fleet_sites(*range(1, 9))
def test_sites_really_run_at_the_same_time(fw: FleetWs):
    """With --forks 4, four sites are inside their runs at once, and never more."""
    inside, peak, cond = [0], [0], threading.Condition()

    def enter(name: str) -> None:
        with cond:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
            cond.notify_all()
            # wait for the others to arrive (sequential sites would all time out here)
            cond.wait_for(lambda: inside[0] >= 4, timeout=10)
        with cond:
            inside[0] -= 1

    failpoints.arm("apply.action.1.before", "call", enter)
    r = fw.apply("--site", "SITE00[1-8]", "--forks", "4")
    assert r.code == 0, r.text
    assert peak[0] == 4


def test_three_failing_sites_are_restored_and_named_the_rest_patched(fw: FleetWs):
    bad = ["SITE003", "SITE009", "SITE015"]
    for name in bad:
        fw.break_site(name)
    before = {n: fw.state(n) for n in bad}
    r = fw.apply("--all", "-f", "json")
    assert r.code == 1, r.text
    data = json.loads(r.out)  # nothing but JSON on stdout
    by_site = {s["site"]: s for s in data["sites"]}
    assert sorted(n for n, s in by_site.items() if s["state"] == "failed") == bad
    assert all(by_site[n]["state"] == "done" for n in NAMES if n not in bad)
    for name in bad:
        assert "is a file, not a folder" in by_site[name]["message"]
        assert fw.state(name) == before[name]  # byte for byte, services included
    text = fw.cli("verify", fw.playbook, "--all")
    assert text.code == 3
    assert "Files do not match: SITE003, SITE009, SITE015" in text.out


@fleet_sites(*range(1, 7))
def test_text_output_names_the_failed_sites(fw: FleetWs):
    for name in ("SITE002", "SITE004"):
        fw.break_site(name)
    r = fw.apply("--site", "SITE00[1-6]")
    assert r.code == 1, r.text
    assert "Failed and restored: SITE002, SITE004" in r.out
    assert "SITE002: FAILED and restored" in r.out
    assert "Continue with: deployer apply --resume " in r.out


@fleet_sites(*range(1, 10))
def test_max_fail_stops_starting_sites_after_the_third_failure(fw: FleetWs):
    for name in NAMES[:5]:
        fw.break_site(name)
    untouched = {n: fw.state(n) for n in NAMES[3:]}
    r = fw.apply("--site", "SITE00*", "--forks", "1", "--max-fail", "2")
    assert r.code == 1, r.text
    journal = fw.journal(r.out)
    got = states(journal)
    assert [got[n] for n in NAMES[:3]] == ["failed"] * 3
    assert [got[n] for n in NAMES[3:9]] == ["not_started"] * 6
    assert "3 sites failed, more than --max-fail 2 allows" in r.out
    for n in NAMES[3:9]:
        assert fw.state(n) == untouched[n]
        assert not (fw.root(n) / ".deployer").exists()


@fleet_sites(*range(1, 5))
def test_max_fail_as_a_percentage(fw: FleetWs):
    fw.break_site("SITE001")
    r = fw.apply("--site", "SITE00[1-4]", "--forks", "1", "--max-fail", "0%", "-f", "json")
    assert r.code == 1
    assert [s["state"] for s in json.loads(r.out)["sites"]] == ["failed", "not_started", "not_started", "not_started"]


@fleet_sites(*range(1, 8), *range(10, 16))
def test_batches_and_a_canary_pause_without_a_terminal_then_resume(fw: FleetWs):
    r = fw.apply("--site", "SITE00[1-7]", "--canary", "2", "--batch", "50%")
    # run_cli has no terminal and no --yes was given... but apply() passes --yes: use the CLI directly
    assert r.code == 0, r.text
    assert "SITE007: applied" in r.out  # --yes goes on when the canary passed

    r = fw.cli("apply", fw.playbook, "--fleet-dir", fw.journals, "--site", "SITE01[0-5]", "--canary", "2")
    assert r.code == 0, r.text
    assert "the rollout pauses here" in r.err
    journal = fw.journal(r.out)
    assert list(states(journal).values()) == ["done", "done"] + ["not_started"] * 4
    fid = journal["id"]
    again = fw.cli("apply", "--resume", fid, "--fleet-dir", fw.journals, "--yes")
    assert again.code == 0, again.text
    assert "SITE010" not in again.out and "SITE015: applied" in again.out
    assert set(states(json.loads((fw.journals / f"{fid}.json").read_text())).values()) == {"done"}
    done = fw.cli("apply", "--resume", fid, "--fleet-dir", fw.journals)
    assert done.code == 0 and "nothing to resume" in done.out


@fleet_sites(*range(1, 6))
def test_a_failing_canary_stops_the_rollout(fw: FleetWs):
    fw.break_site("SITE001")
    r = fw.apply("--site", "SITE00[1-5]", "--canary", "1")
    assert r.code == 1, r.text
    assert "the canary failed on SITE001" in r.out
    assert "4 not started" in r.out


@fleet_sites(*range(1, 7))
def test_ctrl_c_cancels_the_rollout_and_resume_finishes_it(fw: FleetWs):
    """SIGINT mid-run: the running site stops at its next safe point and rolls back, no new
    site starts, exit 1; `--resume` then applies every site that is not done."""
    sites = NAMES[:6]
    before = fw.state(sites[0])
    interrupt = sigint_once()
    failpoints.arm("apply.action.3.before", "call", interrupt)
    r = fw.apply("--site", "SITE00[1-6]", "--forks", "1")
    failpoints.reset()
    assert r.code == 1, r.text
    assert "SIGINT received" in r.out
    journal = fw.journal(r.out)
    got = states(journal)
    assert got[sites[0]] == "failed" and [got[n] for n in sites[1:]] == ["not_started"] * 5
    assert fw.state(sites[0]) == before  # rolled back byte for byte

    again = fw.cli("apply", "--resume", journal["id"], "--fleet-dir", fw.journals, "--yes")
    assert again.code == 0, again.text
    assert set(states(json.loads((fw.journals / f"{journal['id']}.json").read_text())).values()) == {"done"}
    v = fw.cli("verify", fw.playbook, "--site", "SITE00[1-6]")
    assert v.code == 0, v.text


@fleet_sites(1, 2)
def test_resume_refuses_an_unknown_run_and_a_changed_playbook(fw: FleetWs):
    r = fw.cli("apply", "--resume", "nope", "--fleet-dir", fw.journals)
    assert r.code == 2 and "no fleet run 'nope'" in r.err
    fw.break_site("SITE001")
    first = fw.apply("--site", "SITE00[1-2]")
    assert first.code == 1
    fw.playbook.write_text(fw.playbook.read_text() + "\n# edited\n")
    r = fw.cli("apply", "--resume", fw.journal(first.out)["id"], "--fleet-dir", fw.journals, "--yes")
    assert r.code == 2 and "changed since fleet run" in r.err


@fleet_sites(1, 2)
def test_runs_shows_backup_space_for_a_fleet_as_for_one_site(fw: FleetWs):
    """`runs` is one work for a site and for a fleet's sites: the Backups column and the JSON
    backup fields a site alone shows, each site of a fleet shows too."""
    assert fw.apply("--site", "SITE00[1-2]").code == 0
    one = json.loads(fw.cli("runs", "--site", "SITE001", "-f", "json").out)
    fleet = json.loads(fw.cli("runs", "--site", "SITE00[1-2]", "-f", "json").out)
    assert [s["runs"] for s in fleet["sites"] if s["site"] == "SITE001"] == [one]
    for s in fleet["sites"]:
        [run] = s["runs"]
        assert run["backup_bytes"] > 0 and run["backup_servers"] and run["pruned"] is None
    text = fw.cli("runs", "--site", "SITE00[1-2]")
    alone = fw.cli("runs", "--site", "SITE002")
    assert text.code == 0 and alone.code == 0, text.text + alone.text
    assert text.out.count("Backups") == 2 and "Backups" in alone.out
    backups = [line for line in alone.out.splitlines() if " on " in line and "server" in line]
    assert backups and backups[0].strip() in text.out


@fleet_sites(1, 2, 3)
def test_rollback_and_runs_over_a_fleet(fw: FleetWs):
    before = {n: fw.state(n) for n in NAMES[:3]}
    assert fw.apply("--site", "SITE00[1-3]").code == 0
    runs = fw.cli("runs", "--site", "SITE00[1-3]", "-f", "json")
    assert runs.code == 0
    assert [len(s["runs"]) for s in json.loads(runs.out)["sites"]] == [1, 1, 1]
    rb = fw.cli("rollback", "--site", "SITE00[1-3]", "--yes", "--fleet-dir", fw.journals)
    assert rb.code == 0, rb.text
    assert "rolled back: every file and service is as before it" in rb.out
    for n in NAMES[:3]:
        assert fw.state(n) == before[n]
    refused = fw.cli("rollback", "--site", "SITE00[1-3]", "SOMERUN", "--yes")
    assert refused.code == 2 and "belongs to one site" in refused.err


@fleet_sites(1, 2, 3)
def test_verify_all_exits_3_when_one_site_mismatches(fw: FleetWs):
    assert fw.apply("--site", "SITE00[1-3]").code == 0
    f = fw.root("SITE002") / "SITE.SRV" / "X86.BIN" / "PCMSVC32.EXE"
    os.utime(f, ns=(0, 0))
    r = fw.cli("verify", fw.playbook, "--site", "SITE00[1-3]", "-f", "junit", "-o", fw.path / "v.xml")
    assert r.code == 3, r.text
    # the site writer's suites (report/junit.py): one per server, named KB.SITE.SERVER
    suites = {s.get("name"): s for s in ET.parse(fw.path / "v.xml").getroot()}
    assert suites["Q241656.SITE002.SRV002"].get("failures") == "1"
    assert suites["Q241656.SITE001.SRV001"].get("failures") == "0"


@readonly_fleet
def test_payloads_are_hashed_once_per_fleet_run(fw: FleetWs, monkeypatch):
    import deployer.plan.planner as planner

    calls = []
    real = planner.local_sha256
    monkeypatch.setattr(planner, "local_sha256", lambda p: calls.append(p) or real(p))
    # in this process: worker processes (fleet_procs.py) each keep a cache of their own
    r = fw.cli("plan", fw.playbook, "--all", "--processes", "0")
    assert r.code == 0, r.text
    assert len(calls) == 9  # the article's nine files, not 9 x 20
    assert len(set(calls)) == 9


def test_the_live_view_takes_events_from_many_threads(tmp_path: Path):
    """The terminal renderer, fed by 8 site threads at once, ends with one line per site."""
    import io

    from deployer.fleet.engine import SiteOutcome, SiteState
    from deployer.fleet.view import FleetConsole
    from deployer.report.out import Out
    from deployer.run.context import Event

    buf = io.StringIO()
    out = Out(buf, True)
    sites = [f"S{i}" for i in range(8)]
    view = FleetConsole(out, Out(io.StringIO(), False), title="T", total=len(sites))

    def site(name: str) -> None:
        view.site_started(name)
        for k in range(200):
            view.site_event(Event(name, "progress", f"step {k}", {"done": k, "total": 200}))
            view.site_event(Event(name, "say", f"[{k}/200] something"))
        view.site_finished(SiteOutcome(name, SiteState.DONE, "applied"))

    with view:
        threads = [threading.Thread(target=site, args=(s,)) for s in sites]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    text = buf.getvalue()
    for s in sites:
        assert text.count(f"{s}: applied") == 1
    assert view.running == {} and view.finished == {SiteState.DONE: 8}


@readonly_fleet
def test_a_report_path_that_cannot_be_written_is_refused_before_any_site(fw: FleetWs):
    r = fw.apply("--all", "--report", fw.path / "no" / "such" / "folder" / "fleet.xml")
    assert r.code == 2, r.text
    assert "cannot write the report" in r.err and "does not exist" in r.err  # refused as -o FILE is, one site or a fleet
    assert not list(fw.path.glob("lab/*/*/C/SMS/.deployer"))


@fleet_sites(1, 2, 3)
def test_a_fleet_refuses_passwords_to_be_asked(fw: FleetWs):
    """Sites run at once under a live panel: prompts from each would interleave."""
    text = fw.inventory.read_text().replace(
        "      SRV002: {role: site_server, platform: x86, sms_root: 'C:\\SMS'}",
        "      SRV002:\n        role: site_server\n        platform: x86\n        sms_root: 'C:\\SMS'\n"
        "        files: {transport: smb, host: 127.0.0.1, share: SMS_SHRC, username: u, password: {prompt: true}}")
    fw.inventory.write_text(text)
    r = fw.apply("--site", "SITE00[1-3]")
    assert r.code == 2, r.text
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "prompt: true" in ln)
    assert f"sites.yaml:{line}:" in r.err and "cannot be used by a fleet" in r.err
    assert not list(fw.path.glob("lab/*/*/C/SMS/.deployer"))


@readonly_fleet
def test_one_site_commands_still_refuse_a_repeated_site(fw: FleetWs, tmp_path: Path):
    r = fw.cli("sendcode", "--site", "SITE001", "--site", "SITE002", "SMS_SITE_CONFIG_MANAGER", "194")
    assert r.code == 2, r.text
    assert "`deployer sendcode` works on one site" in r.err
    # global options before the command do not hide it, and fleet commands accept the repeat
    r = run_cli("--log", tmp_path / "x.log", "plan", fw.playbook, "-i", fw.inventory, "--site", "SITE001",
                "--site", "SITE002", cwd=fw.path)
    assert r.code == 0, r.text


def test_a_fleet_report_page_has_a_row_per_site_linking_to_its_section(fw: FleetWs, tmp_path: Path):
    """The change-ticket page of a fleet: the summary lists every site and links to its section,
    where the site's verification stands in the article's layout."""
    import re as _re

    r = fw.apply("--all", "--report", fw.path / "fleet.html")
    assert r.code == 0, r.text
    page = (fw.path / "fleet.html").read_text()
    for name in NAMES:
        assert f'href="#site-{name}"' in page and f'id="site-{name}"' in page, name
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    assert len(_re.findall(r"<th[^>]*>File name</th>", page)) >= N  # each site's table, as the article lays it out
    v = fw.cli("verify", fw.playbook, "--all", "-i", fw.inventory, "-f", "html", "-o", fw.path / "verify.html")
    assert v.code == 0, v.text
    page = (fw.path / "verify.html").read_text()
    assert all(f'href="#site-{name}"' in page for name in NAMES) and "FAILED" not in page
