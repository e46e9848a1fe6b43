"""Verification and run reports as one self-contained HTML page (for change tickets).

The page is built from a list of site sections, so a fleet report is one more caller: each
section is one site's verification and, for `apply`, its run (actions with timings, the
rollback record). The template ships in the package; jinja2 autoescapes every value, and
the page fetches nothing (inline CSS, no scripts, no links outside itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .. import __version__
from ..run.store import whoami
from ..sms.verify import STATUSES, FileResult, Report
from .escape import visible

GOOD = ("PASSED", "NOTHING TO DO", "COMMITTED", "DONE", "FINISHED")
STATUS_LABEL = {"ok": "OK", "newer": "NEWER", "older": "OLDER", "missing": "MISSING", "mismatch": "MISMATCH",
                "unchecked": "NOT VERIFIED"}


@dataclass
class FileRow:
    file: FileResult
    folder: str
    found: str
    label: str

    @property
    def passed(self) -> bool:
        return self.file.passed


@dataclass
class ServerTable:
    server: str
    rows: list[FileRow]

    @property
    def failed(self) -> int:
        return sum(1 for r in self.rows if not r.passed)


@dataclass
class ActionTiming:
    number: int
    what: str
    outcome: str  # done, failed, not run
    started: str | None = None  # UTC, as the journal recorded it
    seconds: float | None = None


@dataclass
class RollbackRecord:
    reason: str
    status: str  # rolled_back, rollback_failed
    undone: list[ActionTiming] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    # what the restored before-state lacks (a service it cannot start): the ticket says so, as the console does
    warnings: list[str] = field(default_factory=list)


@dataclass
class SiteSection:
    """One site's part of a report."""

    site: str
    site_code: str
    kb: str
    title: str | None
    status: str  # PASSED, FAILED, NOTHING TO DO, ROLLED BACK, NOT RESTORED
    report: Report | None = None
    run: str | None = None
    seconds: float | None = None
    error: str | None = None
    actions: list[ActionTiming] = field(default_factory=list)
    rollback: RollbackRecord | None = None

    @property
    def anchor(self) -> str:
        return "site-" + "".join(c if c.isalnum() else "-" for c in self.site)

    def to_json(self) -> dict[str, Any]:
        """What the section says, for a JSON report (the verification's files are the report's own key)."""
        from dataclasses import asdict

        return {"kb": self.kb or None, "title": self.title, "status": self.status, "run": self.run,
                "seconds": self.seconds, "error": self.error, "actions": [asdict(a) for a in self.actions],
                "rollback": asdict(self.rollback) if self.rollback else None}

    @property
    def good(self) -> bool:
        return self.status in GOOD

    @property
    def tone(self) -> str:
        """The badge's colour: good, bad, or warn for a site the rollout never started."""
        return "good" if self.good else ("warn" if self.status == "NOT STARTED" else "bad")

    @property
    def files_summary(self) -> str:
        if self.report is None:
            return "-"
        return f"{sum(1 for f in self.report.files if f.passed)} of {len(self.report.files)} ok"

    @property
    def actions_summary(self) -> str:
        numbered = [a for a in self.actions if a.number]  # not the preparation
        if not numbered:
            return "-"
        return f"{sum(1 for a in numbered if a.outcome == 'done')} of {len(numbered)} done"

    @property
    def unreachable(self) -> bool:
        return self.status == "UNREACHABLE"

    def tables(self) -> list[ServerTable]:
        return server_tables(self.report) if self.report else []


def _found(f: FileResult) -> str:
    if f.actual_size is None:
        return "-"
    text = f"{f.actual_date} {f.actual_time}  {f.actual_size:,}"
    return text + (f"  v{f.actual_version}" if f.actual_version else "")


def server_tables(report: Report) -> list[ServerTable]:
    """Per server, the files with those that fail first (in report order within each group)."""
    by_server: dict[str, list[FileRow]] = {}
    for f in report.files:
        row = FileRow(f, f.path.rsplit("\\", 1)[0], _found(f), STATUS_LABEL.get(f.status, f.status.upper()))
        by_server.setdefault(f.server, []).append(row)
    return [ServerTable(server, sorted(rows, key=lambda r: r.passed)) for server, rows in by_server.items()]


def verify_section(report: Report) -> SiteSection:
    return SiteSection(report.site, report.site_code, report.kb, report.title,
                       report.verdict, report=report)


@dataclass
class Rollup:
    """What a fleet page says above its sites: which fleet run, and how many sites ended how
    (each count with its badge colour), in the order the sites' sections follow."""

    fleet_id: str | None
    command: str
    counts: list[tuple[str, int, str]]  # (outcome words, sites, tone)
    seconds: float = 0.0
    journal: str | None = None
    stopped: str | None = None


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _timings(events: Sequence[dict[str, Any]], begin: str, end: str, failed: str | None,
             describe: dict[int, str]) -> list[ActionTiming]:
    """Per action, from the journal's begin and end records (their timestamps are the timings)."""
    started: dict[int, str] = {}
    out: dict[int, ActionTiming] = {}
    for ev in events:
        n = ev.get("action")
        if not isinstance(n, int):
            continue
        if ev["event"] == begin:
            started[n] = ev["ts"]
            out[n] = ActionTiming(n, describe.get(n, f"action {n}"), "failed", ev["ts"])
        elif ev["event"] in (end, failed) and n in out:
            out[n].outcome = "done" if ev["event"] == end else "failed"
            out[n].seconds = (_ts(ev["ts"]) - _ts(started[n])).total_seconds()
    return list(out.values())  # in the order they ran (an undo runs in reverse)


def _preparation(events: Sequence[dict[str, Any]]) -> ActionTiming | None:
    """Backups and uploads happen before the first action: from the run's start to its first begin."""
    start = next((e["ts"] for e in events if e["event"] == "run"), None)
    first = next((e["ts"] for e in events if e["event"] == "begin"), None)
    backups = sum(1 for e in events if e["event"] == "backup")
    staged = sum(1 for e in events if e["event"] == "staged")
    if start is None:
        return None
    end = first or next((e["ts"] for e in events if e["event"] == "failed"), None)
    return ActionTiming(0, f"prepare: {backups} backups, {staged} uploads staged under temporary names",
                        "done" if first else "failed", start, (_ts(end) - _ts(start)).total_seconds() if end else None)


def apply_section(plan: Any, result: Any, describe: dict[int, str] | None = None) -> SiteSection:
    """The section of an `apply`: `plan` is the Plan, `result` its RunResult, `describe` each
    action number's one-line description (default: describe_actions(plan))."""
    if describe is None:
        describe = describe_actions(plan)
    state = str(result.status)
    status = {"nothing": "NOTHING TO DO", "committed": "PASSED" if result.report is None else result.report.verdict, "rolled_back": "ROLLED BACK", "rollback_failed": "NOT RESTORED"}.get(state, state.upper())
    events = list(result.events)
    actions = _timings(events, "begin", "done", None, describe)
    for n, what in describe.items():  # actions the run never reached
        if all(a.number != n for a in actions):
            actions.append(ActionTiming(n, what, "not run"))
    actions.sort(key=lambda a: a.number)
    prep = _preparation(events)
    if prep is not None:
        actions.insert(0, prep)
    if state == "committed":
        for a in actions:
            a.outcome = "done" if a.outcome != "not run" else a.outcome
    rollback = None
    if state in ("rolled_back", "rollback_failed"):
        rollback = RollbackRecord(result.error or "", state,
                                  _timings(events, "undo_begin", "undone", "undo_failed", describe),
                                  list(result.remaining), list(getattr(result, "warnings", [])))
    return SiteSection(plan.site, plan.site_code, plan.kb, plan.title, status, report=result.report, run=result.run,
                       seconds=result.seconds, error=result.error, actions=actions, rollback=rollback)


def undo_section(plan: Any, result: Any, describe: dict[int, str], reason: str, *, start: str = "rollback_begin"
                 ) -> SiteSection | None:
    """The section of a `rollback`: what the run had applied (`plan`) and what the undo restored,
    action by action from the journal's undo records (None: the journal holds none to show)."""
    undone = _timings(result.events, "undo_begin", "undone", "undo_failed", describe)
    if not undone:
        return None
    state = str(result.status)
    record = RollbackRecord(reason, state, undone, list(result.remaining), list(result.warnings))
    # how long the undo took, by the journal's clock: from the rollback's first record to its last
    began = [e["ts"] for e in result.events if e.get("event") == start]  # (recover: its recover_begin)
    ended = [e["ts"] for e in result.events if e.get("event") in ("undone", "undo_failed")]
    seconds = (_ts(ended[-1]) - _ts(began[-1])).total_seconds() if began and ended else None
    # the command did what it was asked when every file is back: DONE, as its exit code says
    return SiteSection(plan.site, plan.site_code, plan.kb, plan.title,
                       "DONE" if state == "rolled_back" else "NOT RESTORED", run=result.run, seconds=seconds,
                       error=None if state == "rolled_back" else result.error, rollback=record)


def recover_section(plan: Any, result: Any, describe: dict[int, str]) -> SiteSection:
    """The section of a `recover`: the hotfix the interrupted run was applying, the run, and what
    the recovery did, from the journal: the actions it finished (a run found complete) or each
    action it undid, as a rollback's section has them."""
    state = str(result.status)
    if state == "finished":  # every action had completed: the run is closed as committed
        section = apply_section(plan, result, describe)
        section.status, section.error, section.seconds = "FINISHED", None, None  # the run's time is not known here
        return section
    status = "ROLLED BACK" if state == "rolled_back" else "NOT RESTORED"
    section = undo_section(plan, result, describe, result.error or "", start="recover_begin")
    if section is None:  # stopped before its first change: nothing to undo but what it staged
        record = RollbackRecord(result.error or "", state, [], list(result.remaining), list(result.warnings))
        return SiteSection(plan.site, plan.site_code, plan.kb, plan.title, status, run=result.run, rollback=record)
    section.status, section.error = status, None if state == "rolled_back" else result.error
    return section


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _env() -> Environment:
    env = Environment(loader=PackageLoader("deployer.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["seconds"] = _duration
    env.filters["clock"] = lambda ts: "-" if not ts else _ts(ts).strftime("%H:%M:%S.%f")[:-3]
    return env


def render(sections: Sequence[SiteSection], *, command: str, when: datetime | None = None,
           who: str | None = None, note: str | None = None, rollup: Rollup | None = None) -> str:
    """The page: a summary (site or fleet, KB, when, by whom, overall status, the operator's
    note), then one section per site, each rendered by the same partial (_site.html.j2) a
    one-site page uses. A fleet (`rollup`) adds its counts by outcome and one row per site
    linking to its section."""
    when = when or datetime.now(timezone.utc)
    if who is None:
        me = whoami()
        who = f"{me['user']}@{me['host']}"
    overall = "PASSED" if all(s.good for s in sections) else "FAILED"
    if len(sections) == 1 and not sections[0].good and rollup is None:
        overall = sections[0].status
    kbs = sorted({s.kb for s in sections if s.kb})  # a site that failed before its plan has no KB of its own
    titles = sorted({s.title for s in sections if s.title})
    # autoescape handles markup; control characters (an ESC in a file name) are made visible
    return visible(_env().get_template("report.html.j2").render(
        sections=sections, command=command, when=when.strftime("%Y-%m-%d %H:%M:%S UTC"), who=who, overall=overall,
        overall_good=overall == "PASSED", kbs=", ".join(kbs) or "-", title=titles[0] if len(titles) == 1 else None,
        statuses=STATUSES, version=__version__, fleet=rollup is not None or len(sections) > 1, rollup=rollup,
        note=note))


def describe_actions(plan: Any) -> dict[int, str]:
    from ..steps import kind_of  # each action kind's own one-line wording

    return {a.number: kind_of(a).describe(a) for a in plan.actions}


def apply_page(plan: Any, result: Any, note: str | None = None) -> str:
    return render([apply_section(plan, result)], command="apply", note=note)


def verify_page(report: Report, note: str | None = None) -> str:
    return render([verify_section(report)], command="verify", note=note)
