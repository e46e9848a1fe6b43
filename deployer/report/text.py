"""Plans, runs and verification reports as text for operators."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from ..plan.model import Plan
from ..run.journal import RunInfo
from ..steps import groups, kind_of
from ..sms.verify import STATUSES, Report
from .out import Out


def render_plan(plan: Plan, out: Out) -> None:
    tz = ZoneInfo(plan.timezone)
    title = f' "{plan.title}"' if plan.title else ""
    out.line(f"Plan: {plan.kb}{title} on site {plan.site} ({plan.site_code})", "head")
    out.line(f"Dates and times are local to the site ({plan.timezone}); rule: {plan.rule}.", "dim")
    out.line()
    if plan.empty:
        out.line("Nothing to do: every file is already at (or later than) the manifest.", "good")
    for a in plan.actions:
        for k, (text, style) in enumerate(kind_of(a).render(a, tz)):
            out.line(f"{a.number:>3}. {text}" if k == 0 else text, style)
    for p in plan.problems:
        out.line(f"Warning: {p}", "warn")
    if plan.skipped:
        out.line()
        out.line(f"Skipped ({len(plan.skipped)}):", "head")
        for s in plan.skipped:
            out.line(f"  - {s.what} on {s.server}: {s.reason}" if not s.what.startswith(s.server)
                     else f"  - {s.what}: {s.reason}", "dim")
    out.line()
    out.line(summary(plan), "head")
    if gone := unreachable(plan):  # "nothing to do" is not "done" while a machine was not looked at
        out.line(f"Not reachable, so neither updated nor verified: {', '.join(gone)}; apply again once "
                 f"{'it is' if len(gone) == 1 else 'they are'} back.", "warn")


def unreachable(plan: Plan) -> list[str]:
    """The machines the plan skipped because they could not be reached."""
    return sorted({s.server for s in plan.skipped if s.reason.startswith("unreachable")})


def summary(plan: Plan) -> str:
    if plan.empty:
        return "Plan: nothing to do."
    parts = []
    for kinds in groups().values():
        actions = [a for a in plan.actions if kind_of(a) in kinds]
        part = kinds[0].summarize(actions)
        if part:
            parts.append(part)
    return f"Plan: {len(plan.actions)} actions: " + ", ".join(parts) + "."


def render_report(report: Report, out: Out) -> None:
    title = f": {report.title}" if report.title else ""
    out.line(f"{report.kb}{title}", "head")
    out.line(f"File attribute verification on site {report.site} ({report.site_code}); rule {report.rule} "
             f"({'a later file passes' if report.rule == 'or-later' else 'exact attributes only'}); "
             f"times in {report.timezone}.", "dim")
    groups: dict[tuple[str, str], list] = {}
    for f in report.files:
        folder = f.path.rsplit("\\", 1)[0]
        groups.setdefault((f.server, folder), []).append(f)
    for (server, folder), files in groups.items():
        out.line()
        out.line(f"{server}  {folder}", "head")
        rows, styles = [], []
        for f in files:
            found = "-" if f.actual_size is None else f"{f.actual_date} {f.actual_time} {f.actual_size:,}"
            if f.actual_version:
                found += f" v{f.actual_version}"
            rows.append([f.expected_date, f.expected_time, f.expected_size, f.name, f.platform, f.status,
                         found + (f"  ({f.detail})" if f.detail and f.status != "ok" else "")])
            styles.append(f.status)
        out.table(["Date", "Time", "Size", "File name", "Platform", "Status", "Found"], rows, styles)
    if report.loose:  # a pass on a loosely checked row is not a full check: say which
        out.line()
        out.line(f"Checked loosely ({len(report.loose)}):", "head")
        for f in report.loose:
            out.line(f"  {f.server} {f.path}: {'; '.join(f.loose)}", "dim")
    if report.unchecked:  # unchecked is never passed: say which machines and why
        out.line()
        for line in report.not_verified():
            out.line(f"NOT VERIFIED: {line}", "bad")
    out.line()
    c = report.counts
    verdict = report.verdict
    extra = f", {c['unchecked']} not verified" if report.unchecked else ""
    out.line(f"Summary: {len(report.files)} files: " + ", ".join(f"{c[s]} {s}" for s in STATUSES) + extra
             + f". {verdict}", "good" if report.ok else "bad")
    if report.unchecked:
        out.line("Verify again once every machine can be reached; `deployer apply` updates a machine that is "
                 "behind.", "dim")


def render_runs(site: str, runs: list[RunInfo], out: Out, backups: dict[str, str] | None = None) -> None:
    if not runs:
        out.line(f"No runs recorded on site {site}.")
        return
    rows = [[r.run, r.state, r.kb or "?", r.command or "?", r.who or "?", r.started or "?", str(r.actions_done)]
            + ([backups.get(r.run, "-")] if backups is not None else []) for r in runs]
    out.table(["Run", "State", "KB", "Command", "By", "Started (UTC)", "Actions done"]
              + (["Backups"] if backups is not None else []), rows)
