"""The `deployer` command: parse, call a workflow, render, exit. Nothing here touches a site."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import typer

from . import __version__
from .commands import clients as cli_clients
from .fleet.options import (DEFAULT_FORKS, DEFAULT_MAX_PER_HOST, MaxPerHostOpt, ProcessesOpt, AllOpt, BatchOpt,
                            CanaryOpt, FleetArgs, FleetDirOpt, ForksOpt, GroupOpt, AcceptChangesOpt,
                            MaxFailOpt, NoteOpt, ReportOpt, ResumeOpt, SitesOpt, complete_site, report_file)
from .errors import EXIT_CODES_HELP, DeployerError, ExitCode, InputError, RestoreFailed, VerificationMismatch
from .model.numbers import decimal, whole
from .report import out as outmod
from .report.owned import ForceOpt
from .run.store import RunState

# What a command needs is imported when it runs (`_lazy`), so that `deployer --help` and a
# one-site plan load only what they use: pydantic models, jinja2, the transports and the
# mock site cost more than the command itself.
if TYPE_CHECKING:
    from .plan.model import Plan
    from .run.context import RunContext


class _Lazy:
    """`workflow.x` imports deployer.fleet.workflow on first use."""

    def __init__(self, module: str):
        self._module = module

    def __getattr__(self, name: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._module, __package__), name)


workflow = _Lazy(".fleet.workflow")
lab = _Lazy(".simulator.lab")
fleet_cli = _Lazy(".fleet.commands")  # only when several sites are selected


def select_sites(inv, sites, groups, all_sites):
    from .fleet.select import select_sites as select

    return select(inv, sites, groups, all_sites)


def load_playbook(path: Path):
    from .steps.playbook import load_playbook as load

    return load(path)


def render_plan(plan, out) -> None:
    from .report.text import render_plan as render

    render(plan, out)


def render_report(report, out) -> None:
    from .report.text import render_report as render

    render(report, out)

app = typer.Typer(
    name="deployer",
    help="Apply vendor hotfixes to Windows server sites from declarative playbooks, safely: plan, apply, verify, "
         "roll back.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; --site completes from the inventory
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
lab_app = typer.Typer(help="Lab sites on the embedded mock target, for trying deployer without a server.",
                      no_args_is_help=True, epilog=EXIT_CODES_HELP)
app.add_typer(lab_app, name="lab")
manifest_app = typer.Typer(help="Manifests: a KB article's file attribute table as data.", no_args_is_help=True,
                           epilog=EXIT_CODES_HELP)
app.add_typer(manifest_app, name="manifest")
kb_app = typer.Typer(help="KB articles: their file attribute tables as manifests, their procedures as draft playbooks.",
                     no_args_is_help=True, epilog=EXIT_CODES_HELP)
app.add_typer(kb_app, name="kb")
app.add_typer(cli_clients.inventory_app, name="inventory")
app.command("clients", epilog=EXIT_CODES_HELP)(cli_clients.clients)


@dataclass
class Options:
    """The options every command shares (given before the command: `deployer -v apply ...`)."""

    quiet: bool = False
    verbose: bool = False
    log: Path | None = None
    no_log: bool = False
    log_path: Path | None = None  # where this command's log is being written
    closing: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


OPTIONS = Options()
# commands that work on a site write a log (report/log.py)
LOGGED = {"plan", "apply", "verify", "rollback", "recover", "sendcode", "preflight", "prune", "scan"}


def _version(value: bool) -> None:
    if value:
        print(f"deployer {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    typer_ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show only results, warnings and errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show debug detail on stderr (never secrets).")] = False,
    log: Annotated[Optional[Path], typer.Option("--log", help="Write this command's log to FILE (default: a new file under ~/.local/state/deployer/logs/).")] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Write no log file.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", is_eager=True, callback=_version, help="Print deployer's version and exit.")] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour in the output (so does NO_COLOR=1 in the environment).")] = False,
) -> None:
    """Apply vendor hotfixes to Windows server sites from declarative playbooks, safely."""
    outmod.set_color(not no_color)
    if quiet and verbose:
        raise InputError("--quiet and --verbose contradict each other; give one")
    OPTIONS.quiet, OPTIONS.verbose, OPTIONS.log, OPTIONS.no_log = quiet, verbose, log, no_log
    command = typer_ctx.invoked_subcommand or ""
    if (command in LOGGED or verbose) and not _help_or_completion():
        from .report.log import command_log

        # closed by main() after the command's last word (its error message included) is logged
        OPTIONS.log_path = OPTIONS.closing.enter_context(
            command_log(command, log, verbose=verbose, enabled=command in LOGGED and not no_log))


def _help_or_completion() -> bool:
    """`-h`/`--help` anywhere, or a completion request: nothing runs, so nothing is logged."""
    return any(a in ("-h", "--help") for a in sys.argv[1:]) or "_DEPLOYER_COMPLETE" in os.environ


class Format(str, Enum):
    text = "text"
    json = "json"


class ReportFormat(str, Enum):
    text = "text"
    json = "json"
    junit = "junit"
    html = "html"


ApplyFormat = ReportFormat  # apply reports its run in the same four formats as verify


_complete_site = complete_site


InventoryOpt = Annotated[Optional[Path], typer.Option("--inventory", "-i", help="Site inventory (default: $DEPLOYER_INVENTORY, else ./sites.yaml).")]
SiteOpt = Annotated[str, typer.Option("--site", "-s", help="Site name from the inventory.", autocompletion=_complete_site)]
OutAlias = Annotated[Optional[Path], typer.Option("--out", hidden=True)]  # the old spelling of --output
BreakLockOpt = Annotated[bool, typer.Option("--break-lock", help="Break a site lock left by a run that is gone.")]


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"


def _json(data: Any) -> None:
    sys.stdout.write(_dumps(data))


@contextmanager
def _run_context(site: str, *, fmt: Format = Format.text, yes: bool = False, show_plan: bool = True
                 ) -> Iterator[RunContext]:
    """A run context whose events a console renderer draws, and whose cancel token SIGINT,
    SIGTERM and SIGHUP set while the site is being changed (before that they interrupt the
    command: nothing was touched, exit 130)."""
    from .report.console import ConsoleRenderer
    from .run.context import RunContext

    text = fmt == Format.text
    stdout = outmod.stdout()
    out = stdout if text else outmod.stderr()

    def show(p: Plan) -> None:
        if text and not p.empty:
            render_plan(p, stdout)
            stdout.line()

    renderer = ConsoleRenderer(out, outmod.stderr(), yes=yes, show_plan=show if show_plan else None,
                               bar=text and out.console is not None and not OPTIONS.quiet, quiet=OPTIONS.quiet)
    ctx = RunContext(site, renderer)

    def on_signal(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if not ctx.changing:
            raise KeyboardInterrupt
        if ctx.undoing:
            ctx.say(f"  ({name} received: the rollback finishes first, it is not stopped half-way)")
        else:
            ctx.say(f"  ({name} received: stopping at the next safe point, then rolling back)")
        ctx.cancel.cancel(name)

    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in sigs}
        # a reader that goes away must never kill a run half-way, whatever the parent set:
        # writes fail with EPIPE instead, and the renderer is detached (run/context.py)
        previous[signal.SIGPIPE] = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        with renderer:
            yield ctx
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if renderer.refused:  # no terminal, no --yes: the question was answered no, nothing was done
        from .report.console import no_terminal

        raise no_terminal(renderer.refused)


@app.command(epilog=EXIT_CODES_HELP)
def plan(
    playbook: Annotated[Path, typer.Argument(help="Playbook YAML.")],
    site: SitesOpt = None,
    inventory: InventoryOpt = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Save the plan; `deployer apply FILE` applies exactly it.")] = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
    out_alias: OutAlias = None,
    group: GroupOpt = None,
    all_sites: AllOpt = False,
    forks: ForksOpt = DEFAULT_FORKS,
    max_per_host: MaxPerHostOpt = DEFAULT_MAX_PER_HOST,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", help="Exit 5 when there are changes to "
                                                    "apply, 0 when there is nothing to do (as Terraform's).")] = False,
    force: ForceOpt = False,
    processes: ProcessesOpt = None,
    report: ReportOpt = None,
    note: NoteOpt = None,
) -> None:
    """Show exactly what `apply` would change (a dry run: nothing on the site is written)."""
    out = output or out_alias
    if out:
        outmod.check_replace(out, what="the plan", force=force)  # before the site is read, not after
    pb = load_playbook(playbook)
    if pb.head.draft:  # a saved plan is made to be applied: not from a draft
        if out:
            pb.refuse_draft()
        outmod.stderr().line(f"Warning: {playbook} is a draft (draft: true): apply refuses it until it is finished.",
                             "warn")
    refs = select_sites(workflow.inventory(inventory), site, group, all_sites)
    if len(refs) > 1:
        # a fleet's -o FILE is its report (-f text or json), as for every fleet command
        rfmt, rfile = report_file(format.value, out, report, allowed=("text", "json"))
        fargs = FleetArgs(forks=forks, max_per_host=max_per_host, report=rfile, report_format=rfmt, note=note,
                          force=force, processes=processes)
        raise typer.Exit(fleet_cli.plan(pb, refs, fargs, fmt="text" if rfile else format.value,
                                        detailed=detailed_exitcode))
    if report is not None:
        report_file(format.value, None, report, allowed=("text", "json"))  # refuses .html, .xml
        fleet_cli.check_report_path(report, force=force)
    site_ref = refs[0]
    with _run_context(site_ref.name, fmt=format) as ctx:
        p = workflow.make_plan(pb, site_ref, ctx)
    if out:
        from .plan.saved import save_plan

        save_plan(p, out, force=force)
    if report is not None:
        if report_file(format.value, None, report)[0] == "json":
            doc = _dumps({**p.to_json(), **({"note": note} if note else {})})
        else:
            buf = io.StringIO()
            if note:
                outmod.Out(buf, False).line(f"Note: {note}")
            render_plan(p, outmod.Out(buf, False))
            doc = buf.getvalue()
        outmod.write_atomic(report, doc, what="the report", force=force)
        outmod.stderr().line(f"Report written to {report}.")
    if format == Format.json:
        _json(p.to_json())
    elif OPTIONS.quiet:
        outmod.stdout().line(workflow.summary_line(p))
    else:
        render_plan(p, outmod.stdout())
        if out:
            outmod.stdout().line(f"Saved to {out}; apply it with: deployer apply {out}")
    if detailed_exitcode and not p.empty:
        raise typer.Exit(int(ExitCode.CHANGES_PENDING))


@app.command(epilog=EXIT_CODES_HELP)
def apply(
    target: Annotated[Optional[Path], typer.Argument(help="Playbook YAML, or a plan saved by `deployer plan --out`.")] = None,
    site: SitesOpt = None,
    inventory: InventoryOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before acting.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan (same as `deployer plan`).")] = False,
    format: Annotated[ApplyFormat, typer.Option("--format", "-f", help="html: a page for the change ticket (with -o).")] = ApplyFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the json or html report to FILE.")] = None,
    break_lock: BreakLockOpt = False,
    broker: Annotated[Optional[str], typer.Option("--broker", help="Send sites that name a region: to that region's workers through this Redis (URL without password).")] = None,
    worker_wait: Annotated[float, typer.Option("--worker-wait", parser=decimal, help="Seconds a site may wait for a worker of its region before it is reported as not started.")] = 300.0,
    group: GroupOpt = None,
    all_sites: AllOpt = False,
    forks: ForksOpt = DEFAULT_FORKS,
    max_per_host: MaxPerHostOpt = DEFAULT_MAX_PER_HOST,
    batch: BatchOpt = None,
    canary: CanaryOpt = 0,
    max_fail: MaxFailOpt = None,
    resume: ResumeOpt = None,
    accept_changes: AcceptChangesOpt = False,
    fleet_dir: FleetDirOpt = None,
    report: ReportOpt = None,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", help="With --dry-run: exit 5 when there "
                                                    "are changes to apply, 0 when there is nothing to do.")] = False,
    force: ForceOpt = False,
    processes: ProcessesOpt = None,
    note: NoteOpt = None,
) -> None:
    """Apply a playbook (or a saved plan) to a site or a fleet: back up, stage, swap, verify; roll back on any failure."""
    from .plan.saved import looks_like_plan

    # -f FORMAT -o FILE, or --report FILE (the format by its suffix): one spelling, site or fleet
    rfmt, output = report_file(format.value, output, report)
    format = ApplyFormat(rfmt)
    fargs = FleetArgs(forks, batch, canary, max_fail, fleet_dir, output, max_per_host, report_format=rfmt, note=note, force=force, processes=processes)
    if resume is not None:
        if target is not None or site or group or all_sites or dry_run:
            raise InputError("--resume continues a fleet run with its own playbook and sites; give no playbook, "
                             "--site, --group, --all or --dry-run with it")
        raise typer.Exit(fleet_cli.apply_resumed(resume, fargs, fmt=format.value, yes=yes, break_lock=break_lock,
                                                 broker=broker, worker_wait=worker_wait,
                                                 accept_changes=accept_changes))
    if accept_changes:
        raise InputError("--accept-changes goes with --resume FLEETRUN: it accepts files changed since that rollout "
                         "started")
    if target is None:
        raise InputError("give a playbook or a saved plan to apply (or --resume FLEETRUN)")
    if broker:  # refused as a fleet refuses it (a password in the URL), even when no site given has a region
        from .workers.broker import broker as parse_broker

        parse_broker(broker)
    is_plan = looks_like_plan(target)
    if dry_run:
        if is_plan:
            raise InputError("--dry-run takes a playbook; a saved plan is shown by `deployer plan`")
        if format in (ApplyFormat.html, ApplyFormat.junit):
            raise InputError(f"--format {format.value} reports a run; --dry-run shows the plan as text or json")
        return plan(target, site, inventory, output, Format(format.value), None, group, all_sites, forks, max_per_host,
                    detailed_exitcode, force, processes)
    if detailed_exitcode:
        raise InputError("--detailed-exitcode goes with --dry-run (or `deployer plan`): a run's exit code already "
                         "says what it did")
    if output is not None:
        outmod.check_replace(output, what="the report", force=force)  # before the run, not after it
    # with -o FILE the terminal shows the run as text while the report goes to the file
    text = format == ApplyFormat.text or output is not None
    shown = Format.text if text else Format.json
    stdout = outmod.stdout()
    if is_plan:
        if group or all_sites or len(site or []) > 1 or fargs.used_rollout_options():
            raise InputError("a saved plan is for the one site it names; fleets apply a playbook")
        one = site[0] if site else None
        with _run_context(one or "", fmt=shown, yes=yes) as ctx:
            outcome = workflow.apply_saved(target, inventory, one, ctx, break_lock=break_lock)
    else:
        pb = load_playbook(target)
        pb.refuse_draft()
        inv = workflow.inventory(inventory)
        refs = select_sites(inv, site, group, all_sites)
        if len(refs) > 1 or fargs.used_rollout_options():
            if format in (ApplyFormat.html, ApplyFormat.junit) and output is None:
                raise InputError(f"-f {format.value} writes a report file: add -o FILE (or give --report FILE)")
            # with a report file the terminal shows the rollout as text
            raise typer.Exit(fleet_cli.apply(pb, inv, refs, fargs, fmt="text" if output else format.value, yes=yes,
                                             break_lock=break_lock, broker=broker, worker_wait=worker_wait))
        site_ref = refs[0]
        if broker and site_ref.site.region:
            if format in (ApplyFormat.html, ApplyFormat.junit) or output is not None:
                raise InputError("-f html/junit and -o are not available yet for a site run by its region's workers "
                                 "(--broker); the workers' result is shown as text or json")
            return _apply_remote(pb, site_ref, broker, yes=yes, fmt=shown, wait=worker_wait)
        with _run_context(site_ref.name, fmt=shown, yes=yes) as ctx:
            outcome = workflow.apply_playbook(pb, site_ref, ctx, break_lock=break_lock, evidence=output is not None)
    result = outcome.result
    if (format != ApplyFormat.text or output is not None) and (result is not None or format == ApplyFormat.json):
        from .report import html

        noted = {"note": note} if note else {}
        if format == ApplyFormat.html:
            doc = html.apply_page(outcome.plan, result, note=note)
        elif format == ApplyFormat.junit:
            from .report.junit import document

            doc = document([html.apply_section(outcome.plan, result, html.describe_actions(outcome.plan))],
                           name=f"{outcome.plan.kb} on {outcome.plan.site}", command="apply", note=note)
        elif format == ApplyFormat.text:
            doc = _apply_text(outcome, result, note)
        elif result is None:
            doc = _dumps({"run": None, "status": "declined", "plan": outcome.plan.to_json(), **noted})
        else:
            doc = _dumps({"run": result.run, "status": str(result.status), "error": result.error, "journal": result.journal,
                          "remaining": result.remaining, "warnings": result.warnings, "seconds": round(result.seconds, 3),
                          "plan": outcome.plan.to_json(), "report": result.report.to_json() if result.report else None,
                          "traffic": ctx.traffic, **noted})
        _emit(doc, output, f"Report written to {output}.", force=force)
    if result is None:
        if text:
            stdout.line("Nothing was done.")
        raise typer.Exit(0)
    if not text:
        result.raise_for_status()
        return
    if result.status == RunState.NOTHING:
        files = sum(1 for s in outcome.plan.skipped if "manifest" in s.reason)
        from .report.text import unreachable

        gone = unreachable(outcome.plan)
        stdout.line(f"Nothing to do: site {outcome.plan.site} already has {outcome.plan.kb}: {files} files at (or "
                    "later than) the manifest, Helper.srv copies current. No service was touched.",
                    "warn" if gone else "good")
        if gone:
            stdout.line(f"INCOMPLETE: not reachable, so neither updated nor verified: {', '.join(gone)}; apply "
                        "again once it can be reached.", "bad")
        return
    if result.status == RunState.COMMITTED:
        verdict = f" Verification {result.report.verdict}." if OPTIONS.quiet and result.report else ""
        stdout.line(f"Applied {outcome.plan.kb} to site {outcome.plan.site}: {result.actions_done} actions in "
                    f"{result.seconds:.1f} s (run {result.run}; journal {result.journal}).{verdict}", "good")
        if not OPTIONS.quiet:
            stdout.line()
            render_report(result.report, stdout)  # type: ignore[arg-type]
        return
    result.raise_for_status()


def _apply_text(outcome, result, note: str | None) -> str:
    """`apply -o FILE` as text: the site's section (actions, rollback record, files) as the fleet's text report has it."""
    from .fleet.report import site_text
    from .report import html

    return site_text(html.apply_section(outcome.plan, result, html.describe_actions(outcome.plan)), note=note,
                     command="apply")


def _apply_remote(pb, site_ref, broker: str, *, yes: bool, fmt: Format, wait: float) -> None:
    """One site through its region's workers: the plan is made and run there, events come back here."""
    from .workers.remote import dispatcher_for
    from .workers.tasks import exit_code_of

    region = site_ref.site.region
    stdout = outmod.stdout()
    with _run_context(site_ref.name, fmt=fmt, yes=yes) as ctx:
        if not ctx.ask(f"Apply {pb.kb} to site {site_ref.name} through the workers of region {region}?"):
            stdout.line("Nothing was done.")
            return
        d = dispatcher_for(pb, site_ref.inventory.path, broker, start_timeout=wait)
        ctx.changing = True  # from here a signal cancels the rollout: queued sites are revoked, running ones roll back
        try:
            outcome = d.run(site_ref.name, region, ctx)
        finally:
            ctx.changing = False
            d.close()
    r = outcome.result
    if fmt == Format.json:
        _json({"rollout": d.rollout, "region": region, **r})
    else:
        where = f" on {r['worker']}" if r.get("worker") else ""
        status = r.get("status")
        style = "good" if status in ("committed", "nothing") else "bad"
        stdout.line(f"Site {site_ref.name} (region {region}{where}): {status}"
                    + (f": {r['error']}" if r.get("error") else "")
                    + (f" (run {r['run']})" if r.get("run") else ""), style)
        for rec in r.get("recovered") or []:
            stdout.line(f"  recovered run {rec['run']} first: {rec['status']} ({rec['reason']})")
        for line in r.get("remaining") or []:
            stdout.line(f"  {line}", "bad")
        rep = r.get("report")
        if rep:
            stdout.line(f"Verification: {rep['summary']['total']} files, {rep['summary']['ok']} ok: "
                        + ("PASSED" if rep["passed"] else "FAILED"), "good" if rep["passed"] else "bad")
    code = exit_code_of(r) if r.get("status") != "not_started" else int(ExitCode.FAILED_RESTORED)
    if code:
        raise typer.Exit(code)


@app.command(epilog=EXIT_CODES_HELP)
def verify(
    target: Annotated[Path, typer.Argument(help="Playbook or manifest YAML.")],
    site: SitesOpt = None,
    inventory: InventoryOpt = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to FILE.")] = None,
    group: GroupOpt = None,
    all_sites: AllOpt = False,
    forks: ForksOpt = DEFAULT_FORKS,
    max_per_host: MaxPerHostOpt = DEFAULT_MAX_PER_HOST,
    force: ForceOpt = False,
    processes: ProcessesOpt = None,
    report: ReportOpt = None,
    note: NoteOpt = None,
) -> None:
    """Check every file's date, time and size (version, hash where listed) against the manifest. Exit 3 on mismatch."""
    rfmt, output = report_file(format.value, output, report)
    format = ReportFormat(rfmt)
    if output is not None:
        outmod.check_replace(output, what="the report", force=force)  # before any site is read
    loaded = workflow.load_target(target)
    refs = select_sites(workflow.inventory(inventory), site, group, all_sites)
    if len(refs) > 1:
        raise typer.Exit(fleet_cli.verify(loaded, refs, FleetArgs(forks=forks, max_per_host=max_per_host, note=note, force=force, processes=processes),
                                          fmt=format.value, output=output))
    site_ref = refs[0]
    with _run_context(site_ref.name, fmt=Format.json if format != ReportFormat.text else Format.text) as ctx:
        report = workflow.verify_target(loaded, site_ref, ctx)
    if format == ReportFormat.json:
        text = json.dumps({**report.to_json(), "traffic": ctx.traffic, **({"note": note} if note else {})}, indent=1,
                          sort_keys=True) + "\n"
    elif format == ReportFormat.junit:
        from .report.junit import to_junit

        text = to_junit(report, note=note)
    elif format == ReportFormat.html:
        from .report.html import verify_page

        text = verify_page(report, note=note)
    else:
        text = None
    if note and text is None and output is None and not OPTIONS.quiet:
        outmod.stdout().line(f"Note: {note}")
    if output:
        if text is None:
            buf = io.StringIO()
            if note:
                outmod.Out(buf, False).line(f"Note: {note}")
            render_report(report, outmod.Out(buf, False))
            text = buf.getvalue()
        outmod.write_atomic(output, text, what="the report", force=force)
        outmod.stderr().line(f"Report written to {output}: {report.verdict}"
                             + "".join(f"\nNOT VERIFIED: {line}" for line in report.not_verified()))
    elif text is None and OPTIONS.quiet:
        c = report.to_json()["summary"]
        outmod.stdout().line(f"Verification of {report.kb} on site {report.site}: {c['ok']} of {c['total']} files "
                             f"match: {report.verdict}", "good" if report.ok else "bad")
    elif text is None:
        render_report(report, outmod.stdout())
    else:
        sys.stdout.write(text)
    if not report.ok:
        raise VerificationMismatch("")


@app.command(epilog=EXIT_CODES_HELP)
def rollback(
    site: SitesOpt = None,
    run: Annotated[Optional[str], typer.Argument(help="Run ID (default: the latest committed run).")] = None,
    inventory: InventoryOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before acting.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Restore even files changed since the run (and replace a "
                                        "--report FILE deployer did not write).")] = False,
    break_lock: BreakLockOpt = False,
    group: GroupOpt = None,
    all_sites: AllOpt = False,
    forks: ForksOpt = DEFAULT_FORKS,
    max_per_host: MaxPerHostOpt = DEFAULT_MAX_PER_HOST,
    max_fail: MaxFailOpt = None,
    fleet_dir: FleetDirOpt = None,
    report: ReportOpt = None,
    processes: ProcessesOpt = None,
    note: NoteOpt = None,
) -> None:
    """Restore a run's backups: files byte for byte with their write times, services as they were."""
    inv = workflow.inventory(inventory)
    refs = select_sites(inv, site, group, all_sites)
    if len(refs) > 1:
        raise typer.Exit(fleet_cli.rollback(inv, refs, run, FleetArgs(forks, None, 0, max_fail, fleet_dir, report, max_per_host, note=note, force=force, processes=processes),
                                            yes=yes, force=force, break_lock=break_lock))
    site_ref = refs[0]
    stdout = outmod.stdout()
    with _run_context(site_ref.name, yes=yes) as ctx:
        outcome = workflow.rollback_run(site_ref, run, ctx, force=force, break_lock=break_lock)
    result = outcome.result
    if result is None:
        stdout.line("Nothing was done.")
    elif result.status == RunState.NOTHING:
        stdout.line(f"Nothing to roll back: {result.error}.", "good")
    elif result.status == RunState.ROLLED_BACK and result.warnings:  # a service the before-state cannot start
        stdout.line(f"Run {result.run} rolled back: every file of site {site_ref.name} is as before it.", "good")
        for w in result.warnings:
            stdout.line(f"  Warning: {w}.", "bad")
    elif result.status == RunState.ROLLED_BACK:
        stdout.line(f"Run {result.run} rolled back: every file and service of site {site_ref.name} is as before it.",
                    "good")
    else:
        raise RestoreFailed(f"run {result.run} could not be fully rolled back:\n  " + "\n  ".join(result.remaining))


@app.command(epilog=EXIT_CODES_HELP)
def recover(
    site: SitesOpt = None,
    inventory: InventoryOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before acting.")] = False,
    break_lock: BreakLockOpt = False,
    group: GroupOpt = None,
    all_sites: AllOpt = False,
    forks: ForksOpt = DEFAULT_FORKS,
    max_per_host: MaxPerHostOpt = DEFAULT_MAX_PER_HOST,
    fleet_dir: FleetDirOpt = None,
    report: ReportOpt = None,
    force: ForceOpt = False,
    processes: ProcessesOpt = None,
    note: NoteOpt = None,
) -> None:
    """Finish or roll back a run that was interrupted (killed, disconnected) or could not be rolled back."""
    inv = workflow.inventory(inventory)
    refs = select_sites(inv, site, group, all_sites)
    if len(refs) > 1:
        raise typer.Exit(fleet_cli.recover(inv, refs, FleetArgs(forks, None, 0, None, fleet_dir, report, max_per_host, note=note, force=force, processes=processes), yes=yes,
                                           break_lock=break_lock))
    site_ref = refs[0]
    stdout = outmod.stdout()
    with _run_context(site_ref.name, yes=yes) as ctx:
        results = workflow.recover(site_ref, ctx, break_lock=break_lock)
    if not results:
        stdout.line(f"Nothing to recover: site {site_ref.name} has no unfinished run.", "good")
        return
    worst = ExitCode.OK
    for r in results:
        if r.status == RunState.FINISHED:
            stdout.line(f"Run {r.run} finished: {r.error}.", "good")
        elif r.status == RunState.ROLLED_BACK:
            stdout.line(f"Run {r.run} rolled back: {r.error}. Every file "
                        + ("is as before the run." if r.warnings else "and service is as before the run."), "good")
            for w in r.warnings:
                stdout.line(f"  Warning: {w}.", "bad")
            worst = max(worst, ExitCode.FAILED_RESTORED)
        else:
            stdout.line(f"Run {r.run} could NOT be fully rolled back ({r.error}):", "bad")
            for line in r.remaining:
                stdout.line(f"  {line}", "bad")
            worst = ExitCode.NOT_RESTORED
    raise typer.Exit(int(worst))


@app.command(epilog=EXIT_CODES_HELP)
def runs(site: SitesOpt = None, inventory: InventoryOpt = None,
         format: Annotated[Format, typer.Option("--format", "-f")] = Format.text,
         group: GroupOpt = None, all_sites: AllOpt = False, forks: ForksOpt = DEFAULT_FORKS,
         max_per_host: MaxPerHostOpt = DEFAULT_MAX_PER_HOST, processes: ProcessesOpt = None) -> None:
    """List the runs journaled on a site, newest last."""
    from .run import prune as prunemod

    refs = select_sites(workflow.inventory(inventory), site, group, all_sites)
    if len(refs) > 1:
        raise typer.Exit(fleet_cli.runs(refs, FleetArgs(forks=forks, max_per_host=max_per_host, processes=processes), fmt=format.value))
    site_ref = refs[0]
    found = prunemod.runs_with_space(site_ref)
    if format == Format.json:
        _json([{**r.__dict__, "backup_bytes": s.bytes, "backup_servers": s.servers, "pruned": s.pruned,
                "backup_unreached": s.unreached}
               for r, s in found])
    else:
        from .report.text import render_runs

        render_runs(site_ref.name, [r for r, _ in found], outmod.stdout(), {r.run: prunemod.describe(s) for r, s in found})


@app.command(epilog=EXIT_CODES_HELP)
def prune(
    site: SiteOpt,
    keep: Annotated[Optional[int], typer.Option("--keep", parser=whole, help="The newest N runs keep their backups.")] = None,
    older_than: Annotated[Optional[str], typer.Option("--older-than", help="Only runs older than this (30d, 12h, 2w).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed; remove nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before removing.")] = False,
    inventory: InventoryOpt = None,
    break_lock: BreakLockOpt = False,
) -> None:
    """Remove old runs' backups from the servers; never those of the last committed run or an unfinished one."""
    from .run import prune as prunemod

    age = prunemod.parse_age(older_than) if older_than is not None else None
    site_ref = workflow.inventory(inventory).site(site)
    stdout = outmod.stdout()

    with _run_context(site_ref.name, yes=yes) as ctx:
        def confirm(result: prunemod.PruneResult) -> bool:
            if not yes and sys.stdin.isatty():  # the operator sees what goes before answering
                prunemod.render(prunemod.PruneResult(result.choices, True), stdout)
            return ctx.ask(f"Remove these backups from site {site_ref.name}? Those runs can no longer be rolled back.")

        result = prunemod.run(site_ref, keep=keep, older_than=age, dry_run=dry_run, ctx=ctx, confirm=confirm,
                              break_lock=break_lock)
    prunemod.render(result, stdout)


@lab_app.command("init", epilog=EXIT_CODES_HELP)
def lab_init(
    site_arg: Annotated[Optional[str], typer.Argument(metavar="[SITE]", help="Site to create (a mock site of the inventory); same as --site.", autocompletion=_complete_site)] = None,
    site_opt: Annotated[Optional[str], typer.Option("--site", "-s", help="Site to create (a mock site of the inventory).", autocompletion=_complete_site)] = None,
    all_sites: Annotated[bool, typer.Option("--all", help="Every mock site of the inventory.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Recreate sites that exist (their state is lost) and rewrite lab's own stand-ins; files lab did not write are never replaced.")] = False,
    inventory: InventoryOpt = None,
    playbooks: Annotated[Optional[list[Path]], typer.Option("--playbook", "-p", help="Playbooks whose stand-in payloads to write (default: every playbook under playbooks/ beside the inventory).")] = None,
    patched_with: Annotated[Optional[list[str]], typer.Option("--patched-with", metavar="Q[:FILE+FILE],...", help="Create the site with these hotfixes' files at their manifests' level (only the FILEs named: half-patched); needs a new site or --force.")] = None,
    catalog: Annotated[Optional[Path], typer.Option("--catalog", "-c", help="Manifests for --patched-with (default: manifests/ beside the inventory).")] = None,
) -> None:
    """Create a pre-hotfix SMS 1.2 site on the mock target, and stand-in hotfix files."""
    if site_arg and site_opt and site_arg.casefold() != site_opt.casefold():
        raise InputError(f"two sites named: {site_arg} and --site {site_opt}; name one")
    site = site_opt or site_arg
    inv = workflow.inventory(inventory)
    if all_sites == (site is not None):
        raise InputError("name one site, or pass --all")
    targets = inv.all_sites() if all_sites else [inv.site(site)]  # type: ignore[arg-type]
    targets = [t for t in targets if t.site.mock is not None]
    if not targets:
        raise InputError("no mock site to create (a mock site has mock: {path: ...} in the inventory)")
    stdout = outmod.stdout()
    patches = _catalog.lab_patches(patched_with, catalog, inventory, targets, force)
    for t in targets:
        from .run.lab_claim import claimed  # --force deletes a site only under its lock, no run unfinished

        rep = lab.init_mock_site(t, force=force, patch=patches(t) if patches else None, claim=claimed)
        if rep.created:
            servers = ", ".join(t.site.servers) + "".join(f"; PCM service host {h}" for h in t.site.pcm_hosts)
            stdout.line(f"Created mock site {t.name} ({t.code}) at {rep.created[0]}: servers {servers}; "
                        f"platforms {', '.join(p.key for p in t.site.platform_list)}.")
        else:
            stdout.line(f"Mock site {t.name} exists at {rep.kept[0]}; left as it is (--force recreates it).")
    books = playbooks or sorted((inv.path.parent / "playbooks").glob("*.yaml"))
    for b in books:
        pay = lab.init_payloads(load_playbook(b), force=force)
        if pay.written:
            stdout.line(f"Wrote {len(pay.written)} stand-in hotfix files for {b.name} under "
                        f"{Path(pay.written[0]).parent.parent}.")
        for kept in pay.kept:  # lab rewrites only its own stand-ins, --force or not
            stdout.line(f"Kept {kept}: not a stand-in lab wrote (a real hotfix file?); lab init never overwrites "
                        "it. Remove it yourself to get a stand-in there.")


ArticlesArg = Annotated[list[Path], typer.Argument(help="KB articles (text or the kbarchive markdown form).")]
KbOutputOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Write the manifest to FILE, or one manifest per article into DIR (<kb>.yaml).")]


@kb_app.command("import", epilog=EXIT_CODES_HELP)
def kb_import(
    articles: ArticlesArg,
    output: KbOutputOpt = None,
    playbook: Annotated[bool, typer.Option("--playbook", help="Also draft a playbook from the article's procedure.")]
    = False,
    playbook_dir: Annotated[Optional[Path], typer.Option(
        "--playbook-dir", help="Where draft playbooks go (default: beside the manifest).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite manifests and playbooks that kb import did not "
                                        "write (or that were edited since).")] = False,
) -> None:
    """Import every file attribute table of KB articles as manifests: every row imported, or flagged for review
    with its article line (exit 3 when any row needs review)."""
    from .kb.command import run_import

    code = run_import(articles, output, playbook, playbook_dir, force)
    if code:
        raise typer.Exit(code)


@manifest_app.command("from-kb", epilog=EXIT_CODES_HELP)
def manifest_from_kb(articles: ArticlesArg, output: KbOutputOpt = None, force: Annotated[bool, typer.Option(
        "--force", help="Overwrite a manifest kb import did not write.")] = False) -> None:
    """The same as `deployer kb import` (kept for scripts that use it)."""
    kb_import(articles, output, False, None, force)


class SchemaKind(str, Enum):
    playbook = "playbook"
    manifest = "manifest"
    sites = "sites"


@app.command("schema", epilog=EXIT_CODES_HELP)
def schema_cmd(
    kind: Annotated[SchemaKind, typer.Argument(help="Which file: playbook, manifest or sites (the inventory).")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the schema to FILE.")] = None,
    force: ForceOpt = False,
) -> None:
    """Print the JSON Schema of a YAML file kind (for editors: `# yaml-language-server: $schema=...`)."""
    from . import schema

    _emit(schema.text(kind.value), output, force=force)


def _emit(text: str, output: Path | None, done: str | None = None, *, force: bool = False) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    outmod.write_atomic(output, text, what="the output", force=force)
    outmod.stderr().line(done or f"Wrote {output}.")


@app.command(epilog=EXIT_CODES_HELP)
def worker(
    region: Annotated[str, typer.Option("--region", "-r", help="Consume this region's queue (sites with region: NAME).")],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", parser=whole, help="Sites run at once.")] = 4,
    broker: Annotated[Optional[str], typer.Option("--broker", help="Redis URL without password (default: $DEPLOYER_BROKER); the password comes from $DEPLOYER_BROKER_PASSWORD or the 0600 file named by $DEPLOYER_BROKER_PASSWORD_FILE.")] = None,
    project: Annotated[Optional[Path], typer.Option("--project", metavar="DIR", help="The folder the inventory's relative paths (mock folders, key and password files) are read from on this worker (default: $DEPLOYER_WORKER_PROJECT, else the folder the worker is started in).")] = None,
) -> None:
    """Run sites of one region for controllers elsewhere (Celery worker; needs `pip install 'deployer[workers]'`)."""
    from .workers.serve import serve

    serve(region, concurrency, broker, project=project)


from .commands import pcm as _pcm, preflight as _preflight, sendcode as _sendcode  # noqa: E402  (issue 11)

app.command("sendcode", epilog=EXIT_CODES_HELP)(_sendcode.sendcode)
app.add_typer(_pcm.app, name="pcm")
app.command("preflight", epilog=EXIT_CODES_HELP)(_preflight.preflight)
from .commands import catalog as _catalog  # noqa: E402  (issue 23: catalog list|graph, scan)

_catalog.register(app)
from .commands import helpfmt as _helpfmt, inventory_show as _inventory_show, validate as _validate  # noqa: E402,E501  (issue 22)

app.command("validate", epilog=_validate.EPILOG)(_validate.validate)
cli_clients.inventory_app.command("show", epilog=_inventory_show.EPILOG)(_inventory_show.show)
_helpfmt.install(app)  # -h, per-command exit codes, readable value names, whole summaries


@app.command("version", hidden=True)
def version_cmd() -> None:
    """Print deployer's version."""
    print(__version__)


def _wants_json(argv: list[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg in ("-f", "--format") and i + 1 < len(argv) and argv[i + 1] == "json":
            return True
        if arg in ("--format=json", "-fjson"):
            return True
    return False


def _fail(exc: DeployerError, as_json: bool) -> None:
    from .model.redact import redact

    text = redact(str(exc))  # an error may echo what it refused: a URL with its password, a --password value
    if as_json:
        with contextlib.suppress(OSError):
            _json({"error": text or type(exc).__name__, "exit_code": int(exc.exit_code),
                   "kind": type(exc).__name__})
    if text:
        outmod.stderr().line(f"deployer: {text}", "bad" if exc.exit_code != ExitCode.MISMATCH else None)


def _close_stdout() -> None:
    """Flush what is left; a reader that went away (`| head`) is not an error of the run."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# the commands that take several sites (a fleet); the others take exactly one --site
FLEET_COMMANDS = {"plan", "apply", "verify", "rollback", "recover", "runs"}


def _check_repeated(argv: list[str]) -> None:
    """typer keeps the last of a repeated single-valued option: `sendcode --site A --site B`
    would quietly act on B alone."""
    command, skip = "", False
    for a in argv:
        if skip:
            skip = False
        elif a == "--log":  # the one option before the command that takes a value
            skip = True
        elif not a.startswith("-"):
            command = a
            break
    if command in FLEET_COMMANDS:
        return
    sites = [a for a in argv if a in ("--site", "-s") or a.startswith("--site=")]
    if len(sites) > 1:
        raise InputError(f"--site is given more than once; `deployer {command}` works on one site (plan, apply, "
                         "verify, rollback, recover and runs take several)")


def main() -> None:
    from .model.redact import note_command_line

    note_command_line(sys.argv[1:])  # before the command line is logged
    as_json = _wants_json(sys.argv[1:])
    code = 0
    try:
        _check_repeated(sys.argv[1:])
        # prog_name: `python -m deployer` completes and names itself like the installed command
        result = app(standalone_mode=False, prog_name="deployer")  # a command's typer.Exit comes back as its exit code
        if isinstance(result, int) and result:
            code = result
    except DeployerError as exc:
        if not isinstance(exc, VerificationMismatch) or str(exc):
            _fail(exc, as_json)
        code = int(exc.exit_code)
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        # Ctrl-C at the question or before the site was touched: nothing was done
        outmod.stderr().line("Interrupted; nothing was done.")
        code = 130
    except Exception as exc:
        # usage errors (typer's vendored click, or click itself in older typer releases)
        if callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code"):
            if isinstance(getattr(exc, "message", None), str):
                from .model.redact import redact

                exc.message = redact(exc.message)  # "unexpected extra argument (PASSWORD=...)" quotes the argument
            exc.show()
            code = int(ExitCode.BAD_INPUT)
        else:
            raise
    if OPTIONS.log_path is not None and not OPTIONS.quiet:
        outmod.stderr().line(f"Log: {OPTIONS.log_path}", "dim")
    OPTIONS.closing.close()
    _reset_options()
    _close_stdout()
    sys.exit(code)


def _reset_options() -> None:
    """main() may run many times in one process (tests, API users)."""
    global OPTIONS
    OPTIONS = Options()
