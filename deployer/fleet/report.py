"""A fleet's report: the site reports plus a roll-up, in every format.

Text, JSON, JUnit and HTML all start with the same heading (the command, the fleet run,
the KB, the operator's --note) and the counts by outcome, then each site as its one-site
report has it, the sites that need attention first. This module makes the fleet's parts
ready (report/formats.FleetDoc); each format of report/formats writes them, each site's
section by the writer that writes it alone, so a site reads the same alone and in a fleet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .engine import FleetResult, SiteOutcome, SiteState
from ..run.prune import human
from ..report import formats
from ..report.formats import FleetDoc
from ..report.out import Out
from ..sms.verify import Report

STYLE = {SiteState.DONE: "good", SiteState.NOTHING: "good", SiteState.FAILED: "bad", SiteState.NOT_RESTORED: "bad",
         SiteState.MISMATCH: "bad", SiteState.UNREACHABLE: "bad", SiteState.NOT_STARTED: "warn"}
LABEL = {SiteState.DONE: "done", SiteState.NOTHING: "nothing to do", SiteState.FAILED: "failed, restored",
         SiteState.NOT_RESTORED: "NOT RESTORED", SiteState.MISMATCH: "mismatch", SiteState.UNREACHABLE: "unreachable",
         SiteState.NOT_STARTED: "not started"}
# the status word of a site's section (the one-site page's words); DONE depends on the command
SECTION_STATUS = {SiteState.NOTHING: "NOTHING TO DO", SiteState.FAILED: "ROLLED BACK",
                  SiteState.NOT_RESTORED: "NOT RESTORED", SiteState.MISMATCH: "FAILED",
                  SiteState.UNREACHABLE: "UNREACHABLE", SiteState.NOT_STARTED: "NOT STARTED"}
# the sites that need attention first, in the report's order
ATTENTION = [SiteState.NOT_RESTORED, SiteState.FAILED, SiteState.UNREACHABLE, SiteState.MISMATCH,
             SiteState.NOT_STARTED, SiteState.DONE, SiteState.NOTHING]

DONE_WORD = {"plan": "planned", "verify": "passed", "rollback": "rolled back", "recover": "recovered",
             "runs": "listed"}
# (count key, words) in the order the totals say them; "done" and "nothing" always, the others when any
OUTCOME_WORDS = (("mismatch", "mismatched"), ("failed", "failed and restored"), ("unreachable", "unreachable"),
                 ("not_restored", "NOT restored"), ("not_started", "not started"))


@dataclass
class Heading:
    """What a fleet report says above its sites, beyond the FleetResult."""

    kb: str = ""
    title: str | None = None
    note: str | None = None
    codes: dict[str, str] = field(default_factory=dict)  # site -> site code


def counts(result: FleetResult) -> list[tuple[str, int, str]]:
    """(words, sites, tone) for each outcome, as the totals say them."""
    c = result.counts()
    # a zero is shown (the operator reads "0 nothing to do" as checked), but greyed, not green
    out = [(DONE_WORD.get(result.command, "done"), c["done"], "good" if c["done"] else "none"),
           ("nothing to do", c["nothing"], "good" if c["nothing"] else "none")]
    for key, words in OUTCOME_WORDS:
        if c.get(key):
            out.append((words, c[key], STYLE[SiteState(key)]))
    return out


def totals(result: FleetResult) -> str:
    parts = [f"{n} {words}" for words, n, _ in counts(result)]
    moved = f" {human(result.bytes)} uploaded." if result.bytes else ""
    return (f"{len(result.outcomes)} sites in {result.seconds:.1f} s: " + ", ".join(parts) + "." + moved)


def names(result: FleetResult, *states: SiteState) -> str:
    return ", ".join(o.site for o in result.by_state(*states))


def ordered(result: FleetResult) -> list[SiteOutcome]:
    """Failed sites first, then unreachable, mismatched, not started, done; the fleet's order within each."""
    return sorted(result.outcomes, key=lambda o: ATTENTION.index(o.state) if o.state in ATTENTION else 0)


def command_line(result: FleetResult) -> str:
    """`verify (fleet 20261207T...)`, or `verify (fleet of 30 sites)` when no fleet journal was kept."""
    return f"{result.command} (fleet {result.fleet_id or f'of {len(result.outcomes)} sites'})"


def summary_lines(result: FleetResult, *, resume_hint: bool) -> list[tuple[str, str | None]]:
    """The closing lines of a fleet command: totals, the sites that need attention, the journal."""
    bad = result.by_state(SiteState.FAILED, SiteState.NOT_RESTORED, SiteState.MISMATCH, SiteState.UNREACHABLE)
    lines: list[tuple[str, str | None]] = [("", None), (
        f"Fleet{' ' + result.fleet_id if result.fleet_id else ''}: {totals(result)}",
        "bad" if bad else ("warn" if result.by_state(SiteState.NOT_STARTED) else "good"))]
    for state, what in ((SiteState.FAILED, "Failed and restored"), (SiteState.MISMATCH, "Files do not match"),
                        (SiteState.UNREACHABLE, "Unreachable (nothing changed there)"),
                        (SiteState.NOT_RESTORED, "NOT restored (run `deployer recover --site NAME`)")):
        if result.by_state(state):
            lines.append((f"  {what}: {names(result, state)}", "bad"))
    if result.journal:
        lines.append((f"  Fleet journal: {result.journal}", "dim"))
    if resume_hint and result.fleet_id and any(not o.state.finished_well for o in result.outcomes):
        lines.append((f"  Continue with: deployer apply --resume {result.fleet_id}", "dim"))
    return lines


def render_summary(result: FleetResult, out: Out, *, resume_hint: bool) -> None:
    for text, style in summary_lines(result, resume_hint=resume_hint):
        out.line(text, style)


def section(o: SiteOutcome, result: FleetResult, head: Heading):
    """The site's section as its one-site report renders it: the one the site's work built
    (apply: actions, rollback record), else one made from what the outcome holds."""
    from ..report import html

    if o.section is not None:
        return o.section
    detail = o.detail
    if isinstance(detail, html.SiteSection):
        return detail
    if isinstance(detail, Report):
        s = html.verify_section(detail)
        if o.state not in (SiteState.DONE, SiteState.MISMATCH):
            s.status = SECTION_STATUS.get(o.state, s.status)
        return s
    report = getattr(detail, "report", None)
    report = report if isinstance(report, Report) else None
    status = SECTION_STATUS.get(o.state) or ("PASSED" if result.command in ("apply", "verify") else "DONE")
    return html.SiteSection(o.site, report.site_code if report else head.codes.get(o.site, ""),
                            report.kb if report else head.kb, report.title if report else head.title, status,
                            report=report, run=o.run, seconds=o.seconds,
                            error=None if o.state.finished_well else o.message)


def _heading_lines(result: FleetResult, head: Heading) -> list[tuple[str, str | None]]:
    title = f": {head.title}" if head.title else ""
    lines: list[tuple[str, str | None]] = [(f"{head.kb or 'deployer'}{title}", "head"),
                                           (f"Command: deployer {command_line(result)}", None)]
    if head.note:
        lines.append((f"Note: {head.note}", None))
    bad = any(not o.state.finished_well for o in result.outcomes)
    lines.append((f"Outcome: {totals(result)}", "bad" if bad else "good"))
    if result.stopped:
        lines.append((f"Stopped: {result.stopped}", "warn"))
    return lines


def document(result: FleetResult, head: Heading | None = None) -> FleetDoc:
    """The fleet's report made ready for any format: the roll-up's parts and each site's section."""
    head = head or Heading()
    found = {(o.section.kb, o.section.title) for o in result.outcomes if o.section is not None and o.section.kb}
    if not head.kb and len(found) == 1:  # rollback, recover: no playbook named, each run's hotfix is known
        from dataclasses import replace

        (kb, title), = found
        head = replace(head, kb=kb, title=title)
    sites = ordered(result)
    data = result.to_json()
    data.update(note=head.note, kb=head.kb or None, title=head.title, command_line=f"deployer {command_line(result)}")
    for site, o in zip(data["sites"], result.outcomes):
        site.setdefault("code", head.codes.get(site["site"]))
        if o.section is not None:  # rollback, recover: the hotfix, the run, each action undone or finished
            site["section"] = o.section.to_json()
    rollup = {"command": f"deployer {command_line(result)}", "fleet": result.fleet_id or "",
              **{f"sites.{str(k)}": str(v) for k, v in result.counts().items()},
              "outcome": totals(result)}
    return FleetDoc(
        command=result.command,
        name=f"deployer {result.command} {head.kb}".strip() + (f" {result.fleet_id}" if result.fleet_id else ""),
        command_line=command_line(result), note=head.note, heading=_heading_lines(result, head),
        table=[[o.site, LABEL.get(o.state, str(o.state)), o.run or "-", str(o.actions), f"{o.seconds:.1f}", o.message]
               for o in sites],
        sections=[section(o, result, head) for o in sites],
        summary=summary_lines(result, resume_hint=result.command == "apply"),
        data=data, rollup=rollup, counts=counts(result), seconds=result.seconds, fleet_id=result.fleet_id,
        journal=result.journal, stopped=result.stopped)


def site_report(o: SiteOutcome, command: str, fmt: str, head: Heading) -> str:
    """`rollback`/`recover --report FILE` for one site: its section as a fleet's report has it, by
    the format's site writer (a site alone and a site in a fleet read the same)."""
    from ..model.secrets import redact

    s = section(o, FleetResult(None, command, [o], seconds=o.seconds), head)
    return redact(formats.write_site(fmt, command, formats.SiteReport(note=head.note, section=s, data=o.to_json())))


def render_file(result: FleetResult, fmt: str, head: Heading | None = None) -> str:
    """The fleet's report in format `fmt` (report/formats: each format's own fleet writer)."""
    from ..model.secrets import redact

    # a site's message may quote an error that echoed a secret (a URL with its password): never in a report
    return redact(formats.write_fleet(fmt, document(result, head)))
