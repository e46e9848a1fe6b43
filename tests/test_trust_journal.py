"""Journal and lock corruption corpus: a run killed half-way (SIGKILL after action 8 of 14:
files replaced, services stopped), then its journal or its lock damaged in every way a
crash, a disk or a hand can damage them. On each, `runs`, `verify`, `apply` and `recover`
never print a traceback; the unfinished run is never lost from view; recovery works from
the plan and the backups (never from one line of a journal it cannot trust) and leaves the
site byte-identical to before; after it a plain `apply` works."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path
from typing import Callable

import pytest

from conftest import Workspace, copy_workspace, diff, run_subprocess

KILL_AT = "apply.action.8.after"


@pytest.fixture(scope="module")
def crashed(workspace_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """A half-patched site left by a killed apply, and the site fully before and fully after."""
    ref = Workspace(copy_workspace(workspace_template, tmp_path_factory.mktemp("ref") / "ws"))
    before = ref.state()
    assert ref.cli("apply", ref.playbook, "--site", "DEMO", "--yes", "-i", ref.inventory).code == 0
    after = ref.state()
    ws = Workspace(copy_workspace(workspace_template, tmp_path_factory.mktemp("crashed") / "ws"))
    r = run_subprocess("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, cwd=ws.path,
                       env={"DEPLOYER_FAILPOINTS": f"{KILL_AT}=kill"})
    assert r.code == -signal.SIGKILL, r.text
    assert ws.state() not in (before, after)  # really half-patched
    return ws.path, before, after


@pytest.fixture
def copy(crashed: tuple, tmp_path: Path) -> Workspace:
    """This test's own copy of the crashed site, to damage."""
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(crashed[0], ws.path, symlinks=True)
    return ws


def _journal(ws: Workspace) -> Path:
    [path] = (ws.server("DEMOSRV") / ".deployer" / "runs").glob("*/journal.jsonl")
    return path


def _lock(ws: Workspace) -> Path:
    return ws.server("DEMOSRV") / ".deployer" / "lock"


def _lines(p: Path) -> list[bytes]:
    return p.read_bytes().split(b"\n")


def _put(p: Path, lines: list[bytes]) -> None:
    p.write_bytes(b"\n".join(lines))


def _middle(p: Path) -> None:
    lines = _lines(p)
    lines[5] = lines[5][:12] + b"\xff\x00#" + lines[5][15:]  # a sector damaged in the middle
    _put(p, lines)


def _folder(p: Path) -> None:
    p.unlink()
    p.mkdir()
    (p / "x").write_text("?")


JOURNAL: dict[str, Callable[[Path], None]] = {
    "torn last line": lambda p: p.write_bytes(p.read_bytes()[:-25]),
    "a JSON list": lambda p: p.write_bytes(p.read_bytes() + b"[1, 2]\n"),
    "an object without event": lambda p: p.write_bytes(p.read_bytes() + b'{"seq": 99, "action": 3}\n'),
    "a done without a whole action": lambda p: p.write_bytes(p.read_bytes() + b'{"event": "done", "action": "8"}\n'),
    "a corrupted middle line": _middle,
    "a lost first line": lambda p: _put(p, _lines(p)[1:]),
    "a forged end after damage": lambda p: (_middle(p), p.write_bytes(p.read_bytes() + b'{"event": "committed"}\n')),
    "garbage": lambda p: p.write_bytes(b"\x00\xff\xfe garbage \x80" * 40),
    "empty": lambda p: p.write_bytes(b""),
    "a folder": _folder,
}

LOCK: dict[str, Callable[[Path], None]] = {
    "garbage": lambda p: p.write_bytes(b"\xff\xfe\x00\x81 not a lock"),
    "empty": lambda p: p.write_bytes(b""),
    "valid JSON of the wrong shape": lambda p: p.write_text('["holder", 1]'),
    "a holder of the wrong shape": lambda p: p.write_text('{"holder": {"pid": "x", "host": 7}, "since": 3}'),
    "a folder": lambda p: (p.mkdir(), (p / "x").write_text("?")),
}


def _no_traceback(r, what: str) -> None:
    assert "Traceback" not in r.text and r.code in (0, 1, 2, 3, 4), f"{what}: exit {r.code}\n{r.text[-2000:]}"


def _check_cycle(ws: Workspace, before, after, *, lock_damaged: bool) -> None:
    runs = ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    _no_traceback(runs, "runs")
    assert runs.code == 0
    listed = json.loads(runs.out)
    assert [r["state"] for r in listed] == ["interrupted"], listed  # never dropped, never trusted as ended
    assert listed[0]["kb"] == "Q241656"  # from the plan when the journal lost it

    verify = ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    _no_traceback(verify, "verify")
    assert verify.code == 3 and "unfinished run" in verify.err

    apply = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    _no_traceback(apply, "apply")
    assert apply.code == 2
    assert "deployer recover --site DEMO --break-lock" in apply.err
    if lock_damaged:
        assert "unreadable lock file" in apply.err

    rec = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    _no_traceback(rec, "recover")
    assert rec.code == 1, rec.text
    assert "rolled back" in rec.out
    files, svcs = ws.state()
    assert diff(before[0], files) == [] and svcs == before[1]

    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert [r["state"] for r in runs] == ["rolled_back"], runs
    again = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert again.code == 0, again.text
    assert ws.state() == after


@pytest.mark.parametrize("damage", list(JOURNAL))
def test_a_damaged_journal_is_recovered_from_the_plan_and_backups(crashed, copy: Workspace, damage: str):
    _, before, after = crashed
    ws = copy
    JOURNAL[damage](_journal(ws))
    _check_cycle(ws, before, after, lock_damaged=False)


def test_a_journal_damaged_in_the_middle_is_not_trusted_to_say_where_the_run_stopped(crashed, copy: Workspace):
    _, before, _ = crashed
    ws = copy
    _middle(_journal(ws))
    r = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 1
    assert "no action had started" not in r.text  # the wrong diagnosis of the old main
    assert "journal cannot tell (journal damaged: line 6: not a JSON line)" in r.text
    assert "the plan and the backups on the servers say what to restore" in r.text


def test_a_journal_that_is_a_folder_is_kept_aside_as_evidence(crashed, copy: Workspace):
    _, before, _ = crashed
    ws = copy
    journal = _journal(ws)
    _folder(journal)
    r = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 1, r.text
    assert "cannot be read; it is kept as" in r.out
    kept = list(journal.parent.glob("journal.jsonl.unreadable-*"))
    assert len(kept) == 1 and (kept[0] / "x").read_text() == "?"
    assert journal.is_file()
    assert ws.state() == before


@pytest.mark.parametrize("damage", list(LOCK))
def test_a_damaged_lock_is_reported_and_broken_by_the_one_command(crashed, copy: Workspace, damage: str):
    _, before, after = crashed
    ws = copy
    lock = _lock(ws)
    lock.unlink()
    LOCK[damage](lock)
    _check_cycle(ws, before, after, lock_damaged=damage != "a holder of the wrong shape")
    assert not lock.exists()


def test_a_damaged_plan_is_said_in_words_with_exit_4(copy: Workspace):
    ws = copy
    plan = _journal(ws).parent / "plan.json"
    for content in (b"\xff{ not json", b'{"actions": [{"kind": "nope"}]}', b"[]"):
        plan.write_bytes(content)
        r = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
        _no_traceback(r, f"recover with plan {content!r}")
        assert r.code == 4, r.text
        assert "the plan of run" in r.err and "backup" in r.err
