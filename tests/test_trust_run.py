"""Trust, round 3, the run store: a run killed at each instant before its first change (run
folder made, plan.json empty or half-written, no journal, a torn first journal line, the
journal's first events, a backup folder made) is closed by `recover` and never blocks `apply`."""

from __future__ import annotations

import json
import shutil
import signal

import pytest

from conftest import Workspace, diff, run_subprocess
from test_fleet import FleetWs, fleet_sites, fleet_template, fw  # noqa: F401 (fixtures)

EARLY = ["run.create.folder", "run.create.plan.empty", "run.create.plan.partial", "run.create.plan.written",
         "apply.journal.run", "apply.journal.folders", "apply.backup.3"]


def _killed(ws: Workspace, point: str) -> None:
    r = run_subprocess("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, cwd=ws.path,
                       env={"DEPLOYER_FAILPOINTS": f"{point}=kill"})
    assert r.code == -signal.SIGKILL, f"{point}: {r.text[-500:]}"


def _run_folder(ws: Workspace):
    [run] = (ws.server("DEMOSRV") / ".deployer" / "runs").iterdir()
    return run


def _recovered_then_applied(ws: Workspace, before, what: str) -> list[str]:
    problems = []
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    if rec.code != 1 or "rolled back" not in rec.out or "Traceback" in rec.text:
        return [f"{what}: recover exited {rec.code}: {rec.text[-600:]}"]
    if "nothing on the site had changed" not in rec.out:
        problems.append(f"{what}: recover did not say that nothing had changed: {rec.out[-400:]}")
    if " stop " in rec.out or " start " in rec.out:
        problems.append(f"{what}: recover stopped or started a service though nothing had changed: {rec.out[-400:]}")
    if ws.state() != before:
        problems.append(f"{what}: not the before state: {diff(before[0], ws.state()[0])[:3]}")
    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    if [x["state"] for x in runs] != ["rolled_back"]:
        problems.append(f"{what}: journal states {runs}")
    again = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    if again.code != 0 or "Nothing to recover" not in again.out:
        problems.append(f"{what}: a second recover found more to do: {again.text[-300:]}")
    leftovers = [p for p in ws.site.rglob("*~dpl*") if ".deployer" not in p.parts]
    if leftovers:
        problems.append(f"{what}: temporary files left: {leftovers}")
    app = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    if app.code != 0:
        problems.append(f"{what}: apply after recover exited {app.code}: {app.text[-300:]}")
    return problems


@pytest.mark.slow  # started first (tests/conftest.py)
def test_a_kill_before_the_first_change_is_closed_by_recover(workspace_template, tmp_path):
    problems = []
    before = None
    for i, point in enumerate(EARLY):
        ws = Workspace(tmp_path / f"k{i}")
        shutil.copytree(workspace_template, ws.path, symlinks=True)
        before = before or ws.state()
        _killed(ws, point)
        nxt = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
        if nxt.code != 2 or "deployer recover" not in nxt.err:
            problems.append(f"{point}: apply did not point to recover: {nxt.text[-300:]}")
        problems += _recovered_then_applied(ws, before, point)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("journal", [b"", b'{"event": "run", "seq": 1, "ts": "2026-'])
def test_an_unflushed_plan_with_an_empty_or_torn_journal_is_nothing_done(ws: Workspace, journal: bytes):
    before = ws.state()
    _killed(ws, "run.create.plan.partial")
    run = _run_folder(ws)
    (run / "plan.json").write_bytes(b'{"actions": [{"kind": "rep')  # the bytes that reached the disk
    (run / "journal.jsonl").write_bytes(journal)
    problems = _recovered_then_applied(ws, before, repr(journal))
    assert not problems, "\n".join(problems)


def test_an_unreadable_plan_after_a_change_stays_an_error(ws: Workspace):
    """The other side: a journal that says an action began (or backups that say the run got
    far) keeps the unreadable plan an error, exit 4, the site untouched by recover."""
    _killed(ws, "apply.action.4.after")
    run = _run_folder(ws)
    (run / "plan.json").write_bytes(b"")
    state = ws.state()
    r = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 4 and "the plan of run" in r.err, r.text
    (run / "journal.jsonl").write_bytes(b"")  # and the journal lost too: the backups still tell
    r = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 4 and "the run made backups" in r.err, r.text
    assert ws.state() == state


# every writer of a temporary name beside the site's files, killed between its write and its rename
WRITERS = {
    "Maintenance Manager's copy lists (client update)": "mock.maintman.copylist.written",
    "Maintenance Manager's replication": "mock.maintman.copy.written",
    "the site reset's Helper.srv copies": "mock.reset.copy.written",
    "deployer's staging": "apply.stage.5.written",
    "deployer's restore": "apply.action.12.after=raise;undo.restore.written",
}


def _temps_left(ws: Workspace) -> list:
    from deployer.targets import temps

    return [p for p in ws.site.rglob("*") if ".deployer" not in p.parts and temps.parse(p.name) is not None]


@pytest.mark.slow  # started first (tests/conftest.py)
def test_a_kill_during_each_writer_of_a_temporary_name_is_recovered(workspace_template, tmp_path):
    problems = []
    before = None
    for i, (what, point) in enumerate(WRITERS.items()):
        ws = Workspace(tmp_path / f"w{i}")
        shutil.copytree(workspace_template, ws.path, symlinks=True)
        before = before or ws.state()
        *extra, last = point.split(";")
        r = run_subprocess("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, cwd=ws.path,
                           env={"DEPLOYER_FAILPOINTS": ";".join([*extra, f"{last}=kill"])})
        if r.code != -signal.SIGKILL:
            problems.append(f"{what}: apply was not killed (exit {r.code}): {r.text[-300:]}")
            continue
        if not _temps_left(ws):
            problems.append(f"{what}: the kill left no temporary copy to recover from")
        rec = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
        if rec.code != 1 or "rolled back" not in rec.out:
            problems.append(f"{what}: recover exited {rec.code}: {rec.text[-600:]}")
            continue
        if _temps_left(ws):
            problems.append(f"{what}: temporary copies left: {_temps_left(ws)}")
        if ws.state() != before:
            problems.append(f"{what}: not the before state: {diff(before[0], ws.state()[0])[:3]}")
        again = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
        if "Nothing to recover" not in again.out:
            problems.append(f"{what}: a second recover found more to do: {again.text[-300:]}")
    assert not problems, "\n".join(problems)


def test_every_registered_temporary_name_new_in_a_touched_folder_is_removed_by_the_undo(ws: Workspace):
    """Beside a file the run does not touch, a new temporary copy in any registered writer's name
    (deployer/targets/temps.py) is recognised as an interrupted write's leftover and removed."""
    from deployer import failpoints
    from deployer.targets import temps

    before = ws.state()
    folder = next(p for p in ws.server("DEMOSRV").rglob("*") if p.name.casefold() == "x86.bin"
                  and p.parent.name.casefold() == "client.src")  # a folder the run replaces files in

    def leave_temps(_: str) -> None:
        for kind in temps.KINDS:  # a name no step of the run touches (a writer's own file)
            (folder / temps.temp_name("CL_NEW.TXT", kind, "ab12-new" if kind.open else "")).write_bytes(b"x")

    failpoints.arm("apply.action.12.after", "call", leave_temps)
    failpoints.arm("apply.action.13.before")
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 1 and "failed and the site was restored" in r.err, r.text
    assert not _temps_left(ws) and ws.state() == before
    assert "Maintenance Manager" in r.out and "Site Configuration Manager" in r.out


def test_no_writer_names_a_temporary_file_outside_the_registry():
    """A temporary name spelled out in a writer (`dst + ".~mm"`) is one recovery does not know:
    every writer takes its name from deployer/targets/temps.py."""
    import re
    from pathlib import Path

    import deployer

    root = Path(deployer.__file__).parent
    spelled = re.compile(r"""(["']|\})[^"'\s]{0,3}\.~[A-Za-z]""")
    found = [f"{p.relative_to(root)}:{n}: {line.strip()}" for p in sorted(root.rglob("*.py")) if p.name != "temps.py"
             for n, line in enumerate(p.read_text().splitlines(), 1) if spelled.search(line)]
    assert not found, "temporary names outside deployer/targets/temps.py:\n" + "\n".join(found)


def _unplug(monkeypatch, server: str) -> dict:
    """From the moment `state["off"]` is set, every file and service operation on `server`
    fails as a machine that left the network does (the mock checks reachability only when a
    site is opened; a real server can go away mid-command)."""
    from deployer.errors import ConnectFailed
    from deployer.targets.mock import MockServices
    from deployer.simulator.fs import MockFiles

    state = {"off": False}

    def wrap(cls, name):
        real = getattr(cls, name)

        def gone(self, *args, **kwargs):
            if state["off"] and self.server == server:
                raise ConnectFailed("cannot be reached (the network path was not found)", server=server, winerror=53)
            return real(self, *args, **kwargs)
        monkeypatch.setattr(cls, name, gone)

    for name in ("stat", "listdir", "read_chunks", "sha256", "write_file", "append", "copy", "hard_link", "rename",
                 "remove", "rmdir", "mkdir", "makedirs", "set_mtime"):
        wrap(MockFiles, name)
    for name in ("query", "stop", "start", "control"):
        wrap(MockServices, name)
    return state


def _on(snap: dict, server: str) -> dict:
    return {k: v for k, v in snap.items() if k.split("/", 1)[0] == server}


@pytest.mark.parametrize("failing", [14, 15, 16])  # after the site reset, the replication, the client update
def test_an_unreachable_server_never_stops_the_undo_of_the_others(ws: Workspace, monkeypatch, failing: int):
    from deployer import failpoints

    before = ws.state()
    line = _unplug(monkeypatch, "DEMOLOG1")
    failpoints.arm(f"apply.action.{failing}.after")
    failpoints.arm(f"undo.action.{failing}.before", "call", lambda _: line.update(off=True))
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 4, r.text
    files, svcs = ws.state()
    for server in ("DEMOSRV", "DEMOAXP1"):  # every reachable server is back as before the run
        assert diff(_on(before[0], server), _on(files, server)) == [], server
        assert svcs[server] == before[1][server]
    assert diff(_on(before[0], "DEMOLOG1"), _on(files, "DEMOLOG1"))  # the unreachable one is not
    assert "not restored on DEMOLOG1" in r.text and "DEMOLOG1 could not be reached" in r.text
    assert "not restored on DEMOSRV" not in r.text and "not restored on DEMOAXP1" not in r.text
    failpoints.reset()
    line["off"] = False  # back on the network: recover finishes the rest
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert rec.code == 1 and "rolled back" in rec.out, rec.text
    assert ws.state() == before


# --- a file missing before the run that a service needs (run/before_state.py) --------------------

SITE_BASE = ("DEMOSRV", "SITE.SRV/X86.BIN/BASE.DLL")  # SMS_EXECUTIVE and the PCM service load it
HELPER_BASE = ("DEMOLOG1", "HELPER.SRV/X86.BIN/BASE.DLL")  # the logon server's PCM service loads it


def _lose(ws: Workspace, where: tuple[str, str]) -> None:
    """The file goes missing while its services run (the mock checks a service's files at start)."""
    server, rel = where
    path = ws.server(server) / rel
    assert path.is_file()
    path.unlink()


def _ends_restored(ws: Workspace, before, r, service: str, server: str) -> None:
    files, svcs = ws.state()
    assert diff(before[0], files) == []  # the file is absent again, as before the run
    assert f"{server} service {service} ran before the run but cannot start" in r.text, r.text
    assert "BASE.DLL" in r.text and "the before-state already lacked" in r.text
    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert runs[-1]["state"] == "rolled_back", runs
    again = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert again.code == 0 and "Nothing to recover" in again.out, again.text
    app = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)  # the way forward
    assert app.code == 0, app.text
    folder, name = (ws.server(SITE_BASE[0]) / SITE_BASE[1]).parent, SITE_BASE[1].rsplit("/", 1)[1]
    assert any(p.name.casefold() == name.casefold() for p in folder.iterdir())  # created by the new run


@pytest.mark.parametrize("lost, failing, service", [
    (SITE_BASE, 14, "SMS_EXECUTIVE"),  # the undo of the run's stop steps starts it again
    (HELPER_BASE, 14, "SMS_PACKAGE_COMMAND_MANAGER_NT"),  # the undo of the site reset restarts it
])
def test_a_failed_apply_restores_a_file_missing_before_and_ends_rolled_back(ws: Workspace, lost, failing, service):
    from deployer import failpoints

    _lose(ws, lost)
    before = ws.state()
    failpoints.arm(f"apply.action.{failing}.after")
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 1 and "failed and the site was restored" in r.err, r.text
    failpoints.reset()
    _ends_restored(ws, before, r, service, lost[0])


def test_rollback_of_a_run_that_created_a_file_a_service_needs(ws: Workspace):
    _lose(ws, SITE_BASE)
    before = ws.state()
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0 and "rolled back" in r.out, r.text
    _ends_restored(ws, before, r, "SMS_EXECUTIVE", "DEMOSRV")


def test_recover_of_a_killed_run_that_created_a_file_a_service_needs(ws: Workspace):
    _lose(ws, SITE_BASE)
    before = ws.state()
    _killed(ws, "apply.action.8.after")
    r = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 1 and "rolled back" in r.out, r.text
    _ends_restored(ws, before, r, "SMS_EXECUTIVE", "DEMOSRV")


def test_a_service_that_cannot_start_because_the_restore_failed_is_still_an_error(ws: Workspace):
    """The other side: when a file the run touched is not back as before, a service that cannot
    start is a failed restore (exit 4), never excused as the before-state's."""
    from deployer import failpoints

    _lose(ws, SITE_BASE)
    failpoints.arm("apply.action.14.after")
    failpoints.arm("undo.action.4.before")  # the removal of the created BASE.DLL fails... and PCMSVC32's
    failpoints.arm("undo.action.3.before")
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 4 and "the before-state already lacked" not in r.text, r.text


def test_a_kill_after_the_lock_before_the_run_folder_leaves_only_a_stale_lock(ws: Workspace):
    before = ws.state()
    _killed(ws, "run.create.begin")
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 2 and "stale: that process is gone" in r.err and "--break-lock" in r.err, r.text
    r = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 0 and "Nothing to recover" in r.out, r.text
    assert ws.state() == before
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0


# on the worker of test_fleet.py's group, whose twenty-site template is built once there; the
# workspace holds the two sites the test works on
@pytest.mark.xdist_group("fleet")
@fleet_sites(1, 2)
def test_a_fleet_rollback_of_a_run_that_created_a_file_a_service_needs(fw: FleetWs):
    lost = fw.root("SITE002") / "SITE.SRV" / "X86.BIN" / "BASE.DLL"
    lost.unlink()
    before = {n: fw.state(n) for n in ("SITE001", "SITE002")}
    assert fw.apply("--site", "SITE00[1-2]").code == 0
    rb = fw.cli("rollback", "--site", "SITE00[1-2]", "--yes", "--fleet-dir", fw.journals)
    assert rb.code == 0, rb.text
    assert "SMS_EXECUTIVE ran before the run but cannot start" in rb.out and "BASE.DLL" in rb.out.upper()
    for n in ("SITE001", "SITE002"):
        assert fw.state(n)[0] == before[n][0]
    rec = fw.cli("recover", "--site", "SITE00[1-2]", "--yes", "--fleet-dir", fw.journals)
    assert rec.code == 0, rec.text


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_the_warning_of_a_file_missing_before_reaches_the_apply_report(ws: Workspace, fmt):
    """The report for the change ticket (-f json, -f html) says what the restored before-state
    lacks, as the console does: a report without it reads as "every service as before"."""
    from deployer import failpoints

    _lose(ws, SITE_BASE)
    failpoints.arm("apply.action.14.after")
    out = ws.path / f"report.{fmt}"
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, "-f", fmt, "-o", out)
    failpoints.reset()
    assert r.code == 1, r.text
    text = out.read_text(encoding="utf-8")
    if fmt == "json":
        warnings = json.loads(text)["warnings"]
        assert any("SMS_EXECUTIVE ran before the run but cannot start" in w and "BASE.DLL" in w for w in warnings)
    else:
        assert "SMS_EXECUTIVE ran before the run but cannot start" in text and "BASE.DLL" in text


@pytest.mark.xdist_group("fleet")
@fleet_sites(1, 2)
def test_a_fleet_apply_that_fails_on_a_site_missing_a_file_says_what_its_before_state_lacks(fw: FleetWs):
    """The fleet's own apply, not only its rollback: the site ends restored, and the console and the
    fleet report name the service the before-state cannot start, as a one-site apply does."""
    from deployer import failpoints

    (fw.root("SITE002") / "SITE.SRV" / "X86.BIN" / "BASE.DLL").unlink()
    report = fw.path / "fleet.json"
    failpoints.arm("apply.action.14.after")
    try:
        r = fw.apply("--site", "SITE00[1-2]", "--report", report)
    finally:
        failpoints.reset()
    assert r.code == 1, r.text
    assert "SMS_EXECUTIVE ran before the run but cannot start" in r.out and "BASE.DLL" in r.out.upper(), r.out
    assert "SMS_EXECUTIVE ran before the run but cannot start" in report.read_text(encoding="utf-8")


def test_prune_goes_on_past_a_server_unreachable_mid_prune_and_says_which(ws: Workspace, monkeypatch):
    """Like the undo (item 6), pruning never gives up at the first server it cannot reach: every
    other server's backups of every chosen run are removed, the one left is named with the way
    forward, and a second prune, once the server is back, removes what was left."""
    from deployer.run import prune as prunemod

    for _ in range(2):
        assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
        assert ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    runs_dir = ".deployer/runs"
    held = {s: sorted(p.name for p in (ws.server(s) / runs_dir).iterdir() if (p / "backup").is_dir())
            for s in ("DEMOSRV", "DEMOLOG1", "DEMOAXP1")}
    assert all(len(v) == 2 for v in held.values()), held
    line = _unplug(monkeypatch, "DEMOLOG1")
    real, calls = prunemod.remove_tree, []

    def cut_off_once(files, path):  # the server goes off the network once pruning has begun
        if not calls:
            line.update(off=True)
        calls.append(path)
        return real(files, path)
    monkeypatch.setattr(prunemod, "remove_tree", cut_off_once)
    r = ws.cli("prune", "--site", "DEMO", "--keep", "0", "--yes", "-i", ws.inventory)
    assert r.code == 1, r.text
    assert "DEMOLOG1" in r.err and "prune" in r.err and "again" in r.err, r.err
    for s in ("DEMOSRV", "DEMOAXP1"):  # every reachable server lost the backups of both runs
        assert not [p for p in (ws.server(s) / runs_dir).iterdir() if (p / "backup").exists()], s
    assert len([p for p in (ws.server("DEMOLOG1") / runs_dir).iterdir() if (p / "backup").exists()]) == 2
    line["off"] = False
    again = ws.cli("prune", "--site", "DEMO", "--keep", "0", "--yes", "-i", ws.inventory)
    assert again.code == 0, again.text
    assert not [p for p in (ws.server("DEMOLOG1") / runs_dir).iterdir() if (p / "backup").exists()]


def test_runs_and_prune_with_a_server_unreachable_from_the_start(ws: Workspace, monkeypatch):
    """The runs' journals live on the site server: `runs` lists them when another server cannot be
    reached, saying whose backups it could not measure; `prune` prunes what it can reach and names
    the rest (exit 1), never stopping at the first server."""
    for _ in range(2):
        assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
        assert ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    line = _unplug(monkeypatch, "DEMOLOG1")
    line["off"] = True
    r = ws.cli("runs", "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert r.out.count("rolled_back") == 2 and "DEMOLOG1 not reached" in r.out, r.out
    js = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert [x["backup_unreached"] for x in js] == [["DEMOLOG1"], ["DEMOLOG1"]], js
    p = ws.cli("prune", "--site", "DEMO", "--keep", "0", "--yes", "-i", ws.inventory)
    assert p.code == 1 and "DEMOLOG1" in p.err and "again" in p.err, p.text
    assert not [x for x in (ws.server("DEMOSRV") / ".deployer/runs").iterdir() if (x / "backup").exists()]
    line["off"] = False
    assert ws.cli("prune", "--site", "DEMO", "--keep", "0", "--yes", "-i", ws.inventory).code == 0
    assert not [x for x in (ws.server("DEMOLOG1") / ".deployer/runs").iterdir() if (x / "backup").exists()]


@pytest.mark.parametrize("torn", [b'{"event": "pruned", "bytes": 12', b'{"event": "undo_beg'])
def test_a_torn_last_journal_line_stays_harmless_once_a_later_command_writes_after_it(ws: Workspace, torn: bytes):
    """A kill while `prune` (or a rollback) appends its first record tears the journal's last line:
    that loses nothing that ran, and the next writer starts on a line of its own. The torn line must
    not then count as damage in the middle of the journal (the run "interrupted" for ever after a
    clean rollback: apply refused, recover rolling it back again and exiting 1)."""
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    [run] = (ws.server("DEMOSRV") / ".deployer" / "runs").iterdir()
    [journal] = [p for p in run.iterdir() if p.name.startswith("journal")]
    with open(journal, "ab") as fh:
        fh.write(torn)
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert [x["state"] for x in runs] == ["rolled_back"], runs
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert rec.code == 0 and "Nothing to recover" in rec.out, rec.text
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
