"""Long waits as the operator sees them (issue 22, item 8): the live panel's clock runs while
every site waits, piped output says every 30 s that a wait goes on, and preparing does not
show the labels of steps that have not begun. Counted, never timed: the clock is a fake one."""

from __future__ import annotations

import io
import stat

from conftest import Workspace
from deployer.fleet import view as fleet_view, workflow
from deployer.fleet.view import FleetConsole
from deployer.steps.playbook import load_playbook
from deployer.report.out import Out
from deployer.run.context import Event, RunContext
from deployer.steps import kind_of

WAIT_TEXT = "waiting for replication to DEMOLOG1"


def _waits(site: str, upto: int) -> list[Event]:
    """A 600 s replication wait polled once a second, `upto` seconds in."""
    return [Event(site, "wait", WAIT_TEXT, {"elapsed": float(s) + 0.3, "timeout": 600.0}) for s in range(upto + 1)]


def test_piped_fleet_output_says_every_30_s_that_a_wait_goes_on():
    buf = io.StringIO()
    view = FleetConsole(Out(buf, False), Out(io.StringIO(), False), title="Q241656 apply", total=2)
    with view:
        view.site_started("DEMO")
        view.site_started("EAST")
        for event in _waits("DEMO", 125):
            view.site_event(event)
        for event in _waits("EAST", 40):
            view.site_event(event)
    lines = buf.getvalue().splitlines()
    assert [x for x in lines if x.startswith("DEMO:")] == [
        f"DEMO: {WAIT_TEXT}, {s} s of 600" for s in (30, 60, 90, 120)]
    assert [x for x in lines if x.startswith("EAST:")] == [f"EAST: {WAIT_TEXT}, 30 s of 600"]


class _Clock:
    now = 1000.0

    @classmethod
    def monotonic(cls) -> float:
        return cls.now


def test_the_live_panel_clock_runs_while_a_site_waits(monkeypatch):
    """The panel drawn 28 s after the last event says 28 s (it said 0 s until the next event)."""
    monkeypatch.setattr(fleet_view, "time", _Clock)
    out = Out(io.StringIO(), True)
    view = FleetConsole(out, Out(io.StringIO(), False), title="Q241656 apply", total=1)
    with view:
        view.site_started("DEMO")
        view.site_event(_waits("DEMO", 0)[0])
        _Clock.now += 28
        assert view.live is not None
        shown = io.StringIO()
        from rich.console import Console

        Console(file=shown, width=120).print(view.live.renderable)
    assert "(0/1, 28 s)" in shown.getvalue(), shown.getvalue()
    assert f"DEMO: {WAIT_TEXT}, 0 s of 600" in shown.getvalue()


def test_a_real_replication_wait_reports_its_clock_and_preparing_shows_no_later_labels(ws: Workspace):
    """On the mock site, with DEMOLOG1 refusing Maintenance Manager's copies and a 2 s timeout."""
    text = ws.playbook.read_text().replace("wait_for_replication: {timeout: 600}", "wait_for_replication: {timeout: 2}")
    book = ws.playbook.with_name("variant.yaml")
    book.write_text(text)
    pb = load_playbook(book)
    site = workflow.inventory(ws.inventory).site("DEMO")
    events: list[Event] = []
    folder = ws.server("DEMOLOG1") / "LOGON.SRV" / "X86.BIN"
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        # the sink answers the run's question yes, as --yes does
        outcome = workflow.apply_playbook(pb, site, RunContext("DEMO", lambda e: events.append(e) or True))
    finally:
        folder.chmod(0o755)
    assert outcome.result is not None and str(outcome.result.status) == "rolled_back"
    waits = [e for e in events if e.kind == "wait"]
    assert waits and all(e.text == WAIT_TEXT and e.data["timeout"] == 2 for e in waits)
    labels = {kind_of(a).describe(a) for a in outcome.plan.actions}
    preparing = [e.text for e in events if e.kind == "progress" and e.text.startswith("preparing")]
    assert preparing and not [t for t in preparing if any(label in t for label in labels)]
