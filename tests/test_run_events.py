"""Runs emit events to a sink; a sink (or the terminal behind it) that fails never stops a
run or its undo: the site ends fully patched or byte-identical to before, every time."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from conftest import Workspace
from deployer import failpoints
from deployer.fleet import workflow
from deployer.steps.playbook import load_playbook
from deployer.run.context import Cancelled, CancelToken, RunContext


def _ctx(site: str, sink) -> RunContext:
    return RunContext(site, sink)


def _apply(ws: Workspace, sink):
    pb = load_playbook(ws.playbook)
    site = workflow.inventory(ws.inventory).site("DEMO")
    return workflow.apply_playbook(pb, site, _ctx(site.name, sink))


def _rollback(ws: Workspace) -> None:
    site = workflow.inventory(ws.inventory).site("DEMO")
    out = workflow.rollback_run(site, None, _ctx(site.name, lambda e: True))
    assert out.result is not None and out.result.status == "rolled_back", out.result


class Pristine:
    """The site as it was before the first run, put back between the runs of a sample: a copy
    (about a third of a rollback's time, which the sample paid once per point), and every run of
    the sample then starts where the run its points were chosen from started."""

    def __init__(self, ws: Workspace, where: Path):
        self.ws, self.copy = ws, where / "pristine-site"
        self.before = ws.state()
        shutil.copytree(ws.site, self.copy, symlinks=True)

    def probe(self, run):
        """`run()` (a run that patches the site, whose events or writes choose the points), the
        site as it patched it, then that run's own rollback, once; `run()`'s result."""
        result = run()
        self.patched = self.ws.state()
        _rollback(self.ws)
        assert self.ws.state() == self.before
        return result

    def restore(self) -> None:
        shutil.rmtree(self.ws.site)
        shutil.copytree(self.copy, self.ws.site, symlinks=True)


class Raising:
    """A sink that answers every question yes and raises at its k-th event."""

    def __init__(self, k: int):
        self.k = k
        self.n = 0
        self.events: list[tuple[str, str]] = []  # (kind, text) of each event, in order

    def __call__(self, event):
        self.n += 1
        self.events.append((event.kind, event.text))
        if self.n == self.k:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        return True


def _count(ws: Workspace, arm: str | None = None):
    counter = Raising(0)
    if arm:
        failpoints.arm(arm)
    outcome = _apply(ws, counter)
    failpoints.reset()
    return counter, outcome


def _first_word(text: str) -> str:
    rest = re.sub(r"^\s*(\[\d+/\d+\]|\d+\.)\s*", "", text)
    word = (rest.split() or [""])[0]
    return "#" if word[:1].isdigit() else word.rstrip(":")


def event_kinds(events: list[tuple[str, str]]) -> list[int]:
    """A deterministic sample of a run's events (1-based): the first event of each kind (its
    kind, the question, a step line, a progress report, a warning..., and the first word of its
    text once an action's number is taken off: "stop", "replace", "restore", a server name...)
    and the last event."""
    seen: set[tuple[str, str]] = set()
    points = []
    for i, (kind, text) in enumerate(events, 1):
        key = (kind, _first_word(text))
        if key not in seen or i == len(events):
            seen.add(key)
            points.append(i)
    return points


def _sink_raising_at(ws: Workspace, points_of, tmp_path: Path) -> None:
    site = Pristine(ws, tmp_path)
    counter, outcome = site.probe(lambda: _count(ws))
    total = counter.n
    assert outcome.result.status == "committed"
    points = points_of(counter)
    for k in points:
        site.restore()
        outcome = _apply(ws, Raising(k))
        # a failing question is "no": nothing runs; any later event: the run completes
        if outcome.result is None:
            assert ws.state() == site.before, f"event {k}: declined, yet the site changed"
            continue
        assert outcome.result.status == "committed", f"event {k}: {outcome.result}"
        assert ws.state() == site.patched, f"event {k}: not fully patched"
    print(f"{len(points)} of {total} events: the sink raised at each in turn; every run committed or was declined")


@pytest.mark.slow  # started first (tests/conftest.py)
def test_a_sink_that_raises_at_each_kind_of_event_never_stops_the_run(ws: Workspace, tmp_path: Path):
    """The sink raises at one event per run, for a deterministic sample of the events
    (event_kinds: the first of each kind, and the last). Every event is
    test_a_sink_that_raises_at_any_event_never_stops_the_run, run with -m full."""
    _sink_raising_at(ws, lambda counter: event_kinds(counter.events), tmp_path)


@pytest.mark.full
def test_a_sink_that_raises_at_any_event_never_stops_the_run(ws: Workspace, tmp_path: Path):
    _sink_raising_at(ws, lambda counter: range(1, counter.n + 1), tmp_path)


def _sink_raising_in_a_failing_run(ws: Workspace, points_of) -> None:
    before = ws.state()
    counter, outcome = _count(ws, "apply.action.8.after")
    total = counter.n
    assert outcome.result.status == "rolled_back"
    assert ws.state() == before
    points = points_of(counter)
    for k in points:
        failpoints.arm("apply.action.8.after")
        outcome = _apply(ws, Raising(k))
        failpoints.reset()
        if outcome.result is not None:
            assert outcome.result.status == "rolled_back", f"event {k}: {outcome.result}"
        assert ws.state() == before, f"event {k}: the site is not byte-identical to before"
    print(f"{len(points)} of {total} events of a failing run: the sink raised at each in turn; the undo always "
          "completed")


@pytest.mark.slow  # started first (tests/conftest.py)
def test_a_sink_that_raises_at_each_kind_of_event_of_a_failing_run_never_stops_its_undo(ws: Workspace):
    """As above, in a run that fails after action 8 and is undone: the events of the undo
    (restore, remove, stop again...) are kinds of their own in the sample. Every event is
    test_a_sink_that_raises_during_a_failing_run_never_stops_its_undo, run with -m full."""
    _sink_raising_in_a_failing_run(ws, lambda counter: event_kinds(counter.events))


@pytest.mark.full
def test_a_sink_that_raises_during_a_failing_run_never_stops_its_undo(ws: Workspace):
    _sink_raising_in_a_failing_run(ws, lambda counter: range(1, counter.n + 1))


def test_the_event_sample_keeps_the_first_of_each_kind_and_the_last():
    events = [("question", "Apply?"), ("say", "[1/3] stop A"), ("progress", "copy X"), ("progress", "copy X"),
              ("say", "[2/3] stop B"), ("say", "[3/3] replace C"), ("say", "  restore C"), ("warn", "W"),
              ("say", "  restore D")]
    assert event_kinds(events) == [1, 2, 3, 6, 7, 8, 9]


class FailingStream(io.TextIOBase):
    """Standard output that fails (EPIPE or EIO) from its k-th write on, as `| head` or a lost terminal does."""

    def __init__(self, k: int, code: int):
        self.k = k
        self.code = code
        self.writes = 0
        self.texts: list[str] = []

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self.writes += 1
        self.texts.append(text)
        if self.k and self.writes >= self.k:
            raise OSError(self.code, os.strerror(self.code))
        return len(text)

    def flush(self) -> None:
        if self.k and self.writes >= self.k:
            raise OSError(self.code, os.strerror(self.code))


def _cli_with_stdout(ws: Workspace, stream, *args: str) -> int:
    from deployer.cli import main

    old_argv, old_cwd, old_out = sys.argv, os.getcwd(), sys.stdout
    sys.argv = ["deployer", *map(str, args)]
    os.chdir(ws.path)
    sys.stdout = stream
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                main()
            except SystemExit as exc:
                return int(exc.code or 0)
        return 0
    finally:
        sys.argv, sys.stdout = old_argv, old_out
        os.chdir(old_cwd)


def write_kinds(writes: list[str]) -> list[int]:
    """A deterministic sample of an output's writes (1-based): the first write of each kind and
    the last write. A write's kind is the section it is in (sections end at blank lines: the
    plan's head, its actions, its summary, the run's step lines, the report), whether it is
    indented, and its first word once an action's number is taken off ("stop", "replace",
    "reset", a server name, a number...). For the whole article's apply that is 38 of its 157
    writes, every kind of line of every section among them."""
    seen: set[tuple] = set()
    points, section = [], 0
    for i, text in enumerate(writes, 1):
        if not text.strip():
            section = min(section + 1, 4)  # the report's blank lines between tables are one section
        kind = (section, text.startswith(" "), _first_word(text))
        if kind not in seen or i == len(writes):
            seen.add(kind)
            points.append(i)
    return points


def _stdout_failing_at(ws: Workspace, code: int, points_of, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "dup2", lambda *a: None)  # pytest's own stdout is not ours to close
    site = Pristine(ws, tmp_path)
    probe = FailingStream(0, code)
    assert site.probe(lambda: _cli_with_stdout(ws, probe, "apply", ws.playbook, "--site", "DEMO", "--yes", "-i",
                                               ws.inventory)) == 0
    points = points_of(probe)
    for k in points:
        site.restore()
        rc = _cli_with_stdout(ws, FailingStream(k, code), "apply", ws.playbook, "--site", "DEMO", "--yes",
                              "-i", ws.inventory)
        assert rc == 0, f"write {k}: exit {rc}"
        assert ws.state() == site.patched, f"write {k}: the site is not fully patched"
    print(f"{len(points)} of {probe.writes} writes to stdout failing with {errno.errorcode[code]} in turn: the site "
          "ended fully patched every time (and was put back as it was between)")


@pytest.mark.slow  # started first (tests/conftest.py)
@pytest.mark.parametrize("code", [errno.EPIPE, errno.EIO], ids=["EPIPE", "EIO"])
def test_standard_output_failing_at_each_kind_of_write_leaves_the_site_whole(ws: Workspace, code: int,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             tmp_path: Path):
    """Standard output fails from write k on, for a deterministic sample of k (write_kinds: the
    first write of each kind of line of each section, and the last); EIO, the same code path
    behind another errno, at every other of those. Every write is
    test_standard_output_failing_at_every_write_leaves_the_site_whole, run with -m full."""
    def points_of(probe):
        kinds = write_kinds(probe.texts)
        return kinds if code == errno.EPIPE else sorted({*kinds[::2], kinds[-1]})

    _stdout_failing_at(ws, code, points_of, monkeypatch, tmp_path)


@pytest.mark.full
@pytest.mark.parametrize("code", [errno.EPIPE, errno.EIO], ids=["EPIPE", "EIO"])
def test_standard_output_failing_at_every_write_leaves_the_site_whole(ws: Workspace, code: int,
                                                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    # every write for EPIPE (what `| head` does); every fifth for EIO, the same code path behind another errno
    _stdout_failing_at(ws, code, lambda probe: range(1, probe.writes + 1) if code == errno.EPIPE
                       else range(1, probe.writes + 1, 5), monkeypatch, tmp_path)


def test_the_write_sample_meets_every_section_and_kind_of_line():
    writes = ["Plan: X\n", "\n", "  1. stop A\n", "       1 bytes\n", "  2. stop B\n", "  3. replace C\n",
              "\n", "[1/3] stop A\n", "[2/3] stop B\n", "[3/3] replace C\n", "  SRV: detail\n", "Applied\n",
              "\n", "SRV  C:\\X\n", "  9/10/99 ok\n", "  9/10/99 ok\n", "\n", "SRV  C:\\Y\n", "Summary\n"]
    # not 5 (a second stop in the plan), 9 (a second stop in the run), 16 (a second table row)
    assert write_kinds(writes) == [1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 17, 18, 19]


def test_cancel_token_rolls_a_run_back_and_is_shared_by_children(ws: Workspace):
    before = ws.state()
    parent = CancelToken()
    pb = load_playbook(ws.playbook)
    site = workflow.inventory(ws.inventory).site("DEMO")

    def sink(event):
        if event.kind == "say" and event.text.startswith("[5/"):
            parent.cancel("a fleet's max-fail")  # another thread could do this just the same
        return True

    ctx = RunContext(site.name, sink, parent.child())
    outcome = workflow.apply_playbook(pb, site, ctx)
    assert outcome.result.status == "rolled_back"
    assert "interrupted (a fleet's max-fail)" in outcome.result.error
    assert ws.state() == before
    with pytest.raises(Cancelled):
        ctx.cancel.check()
