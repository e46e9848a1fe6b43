"""The fleet path of the commands: several sites selected, one question, one journal, one rollout
on the engine (fleet/engine.py), one report.

Each command module (plan.py, apply.py, ...) parses its options (the site options declared once
in selection.py) and hands over here when more than one site is selected; one site keeps the
one-site output. Here, in the commands layer, because a rollout asks the operator, reads the
global options and may send sites to regional workers (workers/), which the fleet layer below
must not import."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import typer

from ..fleet import resume as fleet_resume, work as fleet_work
from . import fleet_question as _question
from ..errors import ExitCode, InputError, Location
from ..fleet.engine import Fleet, FleetResult, SiteState, Work
from ..fleet.journal import FleetJournal, file_sha256
from ..fleet.options import FleetArgs
from ..fleet.report import Heading, render_file, render_summary
from ..fleet.view import FleetConsole, _stdin_tty
from ..model.inventory import LoadedInventory, SiteRef
from ..steps.playbook import LoadedPlaybook
from ..plan.planner import PayloadCache
from ..report import formats, out as outmod
from .common import emit as write_output  # (run_fleet has an `emit` argument of its own)


@contextlib.contextmanager
def _signals(fleet: Fleet, view: FleetConsole) -> Iterator[None]:
    """Before any site started, a signal interrupts (nothing was done, exit 130); after, it
    cancels the rollout: no new site starts, running sites stop at their next safe point and
    roll back (an undo in progress finishes)."""

    def on_signal(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        fleet.cancel.cancel(name)
        with fleet._lock:
            started = fleet.started_any
        if not started:
            raise KeyboardInterrupt
        view.note(f"  ({name} received: no new site starts; running sites stop at the next safe point and roll "
                  "back)")

    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_report_path(path: Path | None, *, force: bool = False) -> None:
    """A report that could not be written after the rollout would end a finished fleet run in
    an error: refuse the path before any site starts."""
    if path is None:
        return
    outmod.check_replace(path, what="the fleet report", force=force)


def refuse_prompted_passwords(sites: list[SiteRef]) -> None:
    """Sites run on threads under a live panel: a password prompt from each of them would
    interleave on the terminal. A fleet takes its passwords from {env:} or {file:}."""
    for ref in sites:
        for server_name, server in ref.site.servers.items():
            for part in ("files", "services"):
                pw = getattr(getattr(server, part), "password", None)
                if pw is not None and getattr(pw, "prompt", None):
                    raise ref.inventory.doc.error(
                        ("sites", ref.name, "servers", server_name, part, "password"),
                        f"site {ref.name}: a password to be asked (prompt: true) cannot be used by a fleet, whose "
                        "sites run at the same time; use {env: VARIABLE} or {file: PATH}, or run this site alone")


def confirm(question: str, yes: bool, *, canary: bool = False) -> None:
    """One question for the whole fleet, on a terminal; without one, --yes is needed (exit 2), except
    that a --canary rollout runs its canary sites and pauses before the others (fleet_view.ask)."""
    if not yes and not canary and not _stdin_tty():
        from ..report.console import no_terminal

        raise no_terminal(question)
    if not yes and _stdin_tty() and not typer.confirm(question, default=False, err=True):
        outmod.stdout().line("Nothing was done.")
        raise typer.Exit(0)


def run_fleet(command: str, title: str, sites: list[SiteRef], work: Work, args: FleetArgs, *, fmt: str,
              yes: bool = False, journal: FleetJournal | None = None, emit: str | None = None,
              head: Heading | None = None) -> FleetResult:
    """Run `work` on every site and print the per-site lines and the totals (fmt text) or the
    report (`emit`: json, junit; default json when fmt is json); --report writes it to a file."""
    rollout = args.rollout(yes)
    check_report_path(args.report, force=args.force)
    refuse_prompted_passwords(sites)
    stdout = outmod.stdout()
    draw = fmt == "text"
    from .common import OPTIONS

    view = FleetConsole(stdout if draw else outmod.stderr(), outmod.stderr(), title=title, total=len(sites),
                        draw=draw, yes=yes, live=not OPTIONS.quiet)
    from ..fleet.procs import for_fleet

    work = for_fleet(work, len(sites), args.processes, rollout.forks, rollout.max_per_host)
    fleet = Fleet(command, sites, work, rollout, view, journal=journal)
    try:
        with _signals(fleet, view), view:
            result = fleet.run()
    finally:
        getattr(work, "close", lambda: None)()  # worker processes, when the fleet had them
    head = head or Heading()
    head.note, head.codes = args.note, {s.name: s.code for s in sites}
    if args.report is not None:
        write_output(render_file(result, args.report_fmt, head), args.report, "", what="the fleet report",
             force=args.force)  # said below, with the totals
    emit = emit or ("json" if fmt == "json" else "summary")
    if emit == "summary":
        render_summary(result, stdout, resume_hint=command == "apply")
        if args.report is not None:
            stdout.line(f"  Report written to {args.report}", "dim")
    elif emit != "none":
        sys.stdout.write(render_file(result, emit, head))
    return result


# --- the commands' fleet paths (each command calls its own when several sites are selected) -----


def apply(pb: LoadedPlaybook, inv: LoadedInventory, sites: list[SiteRef], args: FleetArgs, *, fmt: str, yes: bool,
          break_lock: bool, journal: FleetJournal | None = None, broker: str | None = None,
          worker_wait: float = 300.0, recover_first: bool = False, checksum: bool = False) -> int:
    args.rollout(yes)  # bad input is refused before the question
    check_report_path(args.report, force=args.force)
    refuse_prompted_passwords(sites)
    regional = bool(broker and any(s.site.region for s in sites))
    if regional:
        from ..workers.broker import broker as broker_of, check

        check(broker_of(broker))  # a refused password or a broker out of reach: said before anything is journaled
    if journal is None:
        asks = not yes and _stdin_tty()  # then each site's action count is planned for the question (issue 22)
        confirm(f"Apply {pb.kb} to {describe_rollout(len(sites), args)}: "
                f"{_question.describe(_question.planned(pb, sites, args.forks)) if asks else preview(sites)}?", yes, canary=args.canary > 0)
        journal = new_journal(args, "apply", sites, pb.path, inv, yes, fingerprint=fleet_resume.fingerprint(pb, sites))
    work = fleet_work.apply_work(pb, PayloadCache(), break_lock=break_lock, recover_first=recover_first,
                                 keep_reports=fmt == "json" or args.report is not None, checksum=checksum)
    dispatcher = None
    if regional:
        from ..workers.remote import dispatcher_for

        # one rollout on the broker per fleet run (a resumed run gets a new one): payloads published once
        try:
            dispatcher = dispatcher_for(pb, inv.path, broker, start_timeout=worker_wait)
        except BaseException as exc:
            # the broker went away between the check and now: no site was started, and the journal says so
            close_unstarted(journal, sites, f"the broker could not be used ({exc})")
            raise
        work = fleet_work.regional_work(work, dispatcher, pb.kb)
    try:
        return run_fleet("apply", f"{pb.kb} apply", sites, work, args, fmt=fmt, yes=yes, journal=journal,
                         head=Heading(pb.kb, pb.head.title)).exit_code
    finally:
        if dispatcher is not None:
            dispatcher.close()


def close_unstarted(journal: FleetJournal, sites: list[SiteRef], why: str) -> None:
    """A rollout that ends before its first site: every site is journaled not started, never left waiting."""
    try:
        for s in sites:
            journal.record(s.name, "not_started", message=f"not started: {why}")
        journal.note(stopped=why, finished_utc=_utc())
    except OSError:
        pass  # the error that ended the rollout is what the operator is told


def apply_resumed(fleet_id: str, args: FleetArgs, *, fmt: str, yes: bool, break_lock: bool,
                  broker: str | None = None, worker_wait: float = 300.0, accept_changes: bool = False) -> int:
    from ..fleet import workflow
    from ..steps.playbook import load_playbook

    journal, playbook, inv_path, left = resume(args, fleet_id)
    if not left:
        outmod.stdout().line(f"Fleet run {fleet_id} is complete: every site is done; nothing to resume.", "good")
        return 0
    pb = load_playbook(playbook)
    pb.refuse_draft()
    inv = workflow.inventory(inv_path)
    known = {name.casefold() for name in inv.inventory.sites}
    gone = [name for name in left if name.casefold() not in known]
    # a site still to do that left the inventory is a change like an edited entry: named, and left
    # out only when the operator says so (else the rollout could never be resumed)
    if gone and not accept_changes:
        raise InputError(", ".join(f"site {n} is no longer in the inventory" for n in gone) + f" ({inv_path}); "
                         "put it back, or resume with --accept-changes to leave it out of the rollout "
                         "(journaled not started)", Location(str(journal.path)))
    sites = [inv.site(name) for name in left if name not in gone]
    fleet_resume.refuse_if_changed(journal, pb, sites, accept=accept_changes)
    for name in gone:
        journal.record(name, "not_started", message="not started: no longer in the inventory (--accept-changes)")
        outmod.stdout().line(f"Site {name} is no longer in the inventory: left out of the rollout (not started).")
    if not sites:
        journal.note(resumed_utc=_utc(), finished_utc=_utc())
        outmod.stdout().line(f"Fleet run {fleet_id}: no site left to resume.", "good")
        return 0
    if broker and any(s.site.region for s in sites):
        from ..workers.broker import broker as broker_of, check

        check(broker_of(broker))  # before the sites are journaled waiting again
    confirm(f"Resume fleet run {fleet_id}: apply {pb.kb} to the {describe_rollout(len(sites), args)} not done yet: "
            f"{preview(sites)}?", yes, canary=args.canary > 0)
    for s in sites:
        journal.record(s.name, "waiting")
    journal.note(resumed_utc=_utc(),
                 fingerprint=fleet_resume.merged(journal.data.get("fingerprint"), fleet_resume.fingerprint(pb, sites)))
    return apply(pb, inv, sites, args, fmt=fmt, yes=yes, break_lock=break_lock, journal=journal, broker=broker,
                 worker_wait=worker_wait, recover_first=True)


def plan(pb: LoadedPlaybook, sites: list[SiteRef], args: FleetArgs, *, fmt: str, detailed: bool = False,
         checksum: bool = False) -> int:
    json_report = fmt != "text" or (args.report is not None and args.report_fmt != "text")
    work = fleet_work.plan_work(pb, PayloadCache(), keep_plans=json_report, checksum=checksum)
    result = run_fleet("plan", f"{pb.kb} plan", sites, work, args, fmt="text" if fmt == "text" else "json",
                       emit=None if fmt in ("text", "json") else fmt, head=Heading(pb.kb, pb.head.title))
    # --detailed-exitcode: every site planned and some site has actions (a plan_work DONE)
    if detailed and result.exit_code == ExitCode.OK and result.by_state(SiteState.DONE):
        return int(ExitCode.CHANGES_PENDING)
    return result.exit_code


def verify(target: Any, sites: list[SiteRef], args: FleetArgs, *, fmt: str, output: Path | None,
           checksum: bool = False) -> int:
    work = fleet_work.verify_work(target, PayloadCache(), checksum=checksum,
                                  keep_reports=fmt != "text" or output is not None or args.report is not None)
    kb = getattr(getattr(target, "manifest", None), "kb", None) or getattr(target, "kb", "")
    loaded = getattr(target, "manifest", target)  # a playbook's manifest, or the manifest itself
    head = Heading(kb, getattr(getattr(loaded, "manifest", None), "title", None))
    result = run_fleet("verify", f"{kb} verify".strip(), sites, work, args, fmt="text" if fmt == "text" else "json",
                       emit="none" if output else (None if fmt == "text" else fmt), head=head)
    if output:
        write_output(render_file(result, fmt, head), output, "", what="the report", force=args.force)
        if fmt == "text":
            render_summary(result, outmod.stdout(), resume_hint=False)
        outmod.stderr().line(f"Report written to {output}: {'PASSED' if result.exit_code == 0 else 'FAILED'}")
    return result.exit_code


def rollback(inv: LoadedInventory, sites: list[SiteRef], run: str | None, args: FleetArgs, *, yes: bool,
             force: bool, break_lock: bool) -> int:
    args.rollout(yes)
    check_report_path(args.report, force=args.force)
    if run is not None:
        raise InputError(f"a run ID ({run}) belongs to one site; with several sites, leave it out and each site's "
                         "latest committed run is rolled back")
    confirm(f"Roll back the latest committed run on {describe_rollout(len(sites), args)}: {preview(sites)}?", yes)
    journal = new_journal(args, "rollback", sites, None, inv, yes)
    work = fleet_work.rollback_work(force=force, break_lock=break_lock)
    return run_fleet("rollback", "rollback", sites, work, args, fmt="text", yes=yes, journal=journal).exit_code


def recover(inv: LoadedInventory, sites: list[SiteRef], args: FleetArgs, *, yes: bool, break_lock: bool) -> int:
    check_report_path(args.report, force=args.force)
    confirm(f"Recover the unfinished runs on {describe_rollout(len(sites), args)}: {preview(sites)}?", yes)
    journal = new_journal(args, "recover", sites, None, inv, yes)
    work = fleet_work.recover_work(break_lock=break_lock)
    return run_fleet("recover", "recover", sites, work, args, fmt="text", yes=yes, journal=journal).exit_code


def runs(sites: list[SiteRef], args: FleetArgs, *, fmt: str) -> int:
    # text: each site's table, as `runs` shows a site alone; any other format: the fleet's document in it
    result = run_fleet("runs", "runs", sites, fleet_work.runs_work(), args, fmt="json",
                       emit="none" if fmt == "text" else fmt)
    if fmt == "text":
        stdout = outmod.stdout()
        for o in result.outcomes:  # in the order asked, whichever site answered first
            stdout.line(f"Site {o.site}:", "head")
            if isinstance(o.detail, list):  # each site as `runs` shows it alone
                formats.show("text", "runs", formats.SiteReport(site=o.site, runs=o.detail), stdout)
            else:
                stdout.line(f"  {o.message}", "bad")
            stdout.line()
    return result.exit_code


def preview(sites: list[SiteRef], shown: int = 8) -> str:
    names = ", ".join(s.name for s in sites[:shown])
    return names + (f" and {len(sites) - shown} more" if len(sites) > shown else "")


def _utc() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_journal(args: FleetArgs, command: str, sites: list[SiteRef], playbook: Path | None,
                inv: LoadedInventory, yes: bool, fingerprint: dict | None = None) -> FleetJournal:
    return FleetJournal.create(args.folder, command=command, sites=[s.name for s in sites], playbook=playbook,
                               inventory=inv.path, options={**args.rollout(yes).to_json()}, fingerprint=fingerprint)


def resume(args: FleetArgs, fleet_id: str) -> tuple[FleetJournal, Path, Path, list[str]]:
    """The journal, playbook, inventory and sites left of an earlier apply fleet run."""
    journal = FleetJournal.open(args.folder, fleet_id)
    loc = Location(str(journal.path))
    if journal.data.get("command") != "apply" or not journal.data.get("playbook"):
        raise InputError(f"fleet run {fleet_id} was a `{journal.data.get('command')}`; only an apply resumes", loc)
    playbook = Path(journal.data["playbook"])
    if not playbook.is_file():
        raise InputError(f"the playbook of fleet run {fleet_id}, {playbook}, is gone", loc)
    # with a fingerprint, fleet_resume.refuse_if_changed names this change with the others
    if "fingerprint" not in journal.data and file_sha256(playbook) != journal.data.get("playbook_sha256"):
        raise InputError(f"the playbook {playbook} changed since fleet run {fleet_id} started; a rollout resumes "
                         "only with the playbook it started with (start a new one instead)", loc)
    left = [s for s, state in journal.site_states().items() if state not in ("done", "nothing")]
    return journal, playbook, Path(journal.data["inventory"]), left


def describe_rollout(n: int, args: FleetArgs) -> str:
    parts = [f"{args.forks} at a time"]
    if args.canary:
        parts.append(f"canary {args.canary}")
    if args.batch:
        parts.append(f"batches of {args.batch}")
    if args.max_fail is not None:
        parts.append(f"stop after more than {args.max_fail} failures")
    return f"{n} sites ({', '.join(parts)})"
