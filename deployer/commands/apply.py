"""`deployer apply`: a playbook or a saved plan, on a site, a fleet, or through a region's workers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ExitCode, InputError
from ..fleet.options import (AcceptChangesOpt, BatchOpt, CanaryOpt, FleetDirOpt, MaxFailOpt,
                             ResumeOpt, report_file)
from ..model.numbers import decimal
from ..report import formats, out as outmod
from ..report.owned import ForceOpt
from ..run.store import RunState
from .selection import Sites, takes_sites
from .common import (OPTIONS, ApplyFormat, BreakLockOpt, ChecksumOpt, Format, YesOpt, emit, load_playbook, render_report,
                     run_context, workflow, write_json, fleet_cli)
from .plan import plan


@takes_sites(reports=True)
def apply(
    target: Annotated[Optional[Path], typer.Argument(help="Playbook YAML, or a plan saved by `deployer plan --out`.")] = None,
    sites: Sites = None,  # type: ignore[assignment]  (always given: @takes_sites fills it)
    yes: YesOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan (same as `deployer plan`).")] = False,
    format: Annotated[ApplyFormat, typer.Option("--format", "-f", help="html: a page for the change ticket (with -o).")] = ApplyFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the json or html report to FILE.")] = None,
    break_lock: BreakLockOpt = False,
    broker: Annotated[Optional[str], typer.Option("--broker", help="Send sites that name a region: to that region's workers through this Redis (URL without password).")] = None,
    worker_wait: Annotated[float, typer.Option("--worker-wait", parser=decimal, help="Seconds a site may wait for a worker of its region before it is reported as not started.")] = 300.0,
    batch: BatchOpt = None,
    canary: CanaryOpt = 0,
    max_fail: MaxFailOpt = None,
    resume: ResumeOpt = None,
    accept_changes: AcceptChangesOpt = False,
    fleet_dir: FleetDirOpt = None,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", help="With --dry-run: exit 5 when there "
                                                    "are changes to apply, 0 when there is nothing to do.")] = False,
    force: ForceOpt = False,
    checksum: ChecksumOpt = False,
) -> None:
    """Apply a playbook (or a saved plan) to a site or a fleet: back up, stage, swap, verify; roll back on any failure."""
    from ..plan.saved import looks_like_plan

    report, note = sites.report, sites.note

    # -f FORMAT -o FILE, or --report FILE (the format by its suffix): one spelling, site or fleet
    rfmt, output = report_file(format.value, output, report, kind="apply")
    format = ApplyFormat(rfmt)
    fargs = sites.fleet(batch=batch, canary=canary, max_fail=max_fail, fleet_dir=fleet_dir, report=output,
                        report_format=rfmt, note=note, force=force)
    if resume is not None:
        if target is not None or sites.site or sites.group or sites.all_sites or dry_run:
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
        from ..workers.broker import broker as parse_broker

        parse_broker(broker)
        if checksum:  # a region's workers read the records as they are: they take no --checksum yet
            raise InputError("--checksum is not available with --broker: a region's workers trust the recorded "
                             "hashes; run `deployer verify --checksum` for those sites instead")
    is_plan = looks_like_plan(target)
    if dry_run:
        if is_plan:
            raise InputError("--dry-run takes a playbook; a saved plan is shown by `deployer plan`")
        if format.value not in formats.names("plan"):
            raise InputError(f"--format {format.value} reports a run; --dry-run shows the plan as "
                             + " or ".join(formats.names("plan")))
        return plan(target, sites=replace(sites, report=None, note=None), output=output, format=Format(format.value),
                    detailed_exitcode=detailed_exitcode, force=force, checksum=checksum)
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
        if sites.group or sites.all_sites or len(sites.site or []) > 1 or fargs.used_rollout_options():
            raise InputError("a saved plan is for the one site it names; fleets apply a playbook")
        one = sites.site[0] if sites.site else None
        with run_context(one or "", fmt=shown, yes=yes) as ctx:
            outcome = workflow.apply_saved(target, sites.inventory, one, ctx, break_lock=break_lock, checksum=checksum)
    else:
        pb = load_playbook(target)
        pb.refuse_draft()
        inv = sites.inv()
        refs = sites.refs(inv)
        if len(refs) > 1 or fargs.used_rollout_options():
            if not formats.get(format.value).terminal and output is None:
                raise InputError(f"-f {format.value} writes a report file: add -o FILE (or give --report FILE)")
            # with a report file the terminal shows the rollout as text
            raise typer.Exit(fleet_cli.apply(pb, inv, refs, fargs, fmt="text" if output else format.value, yes=yes,
                                             break_lock=break_lock, broker=broker, worker_wait=worker_wait,
                                             checksum=checksum))
        site_ref = refs[0]
        if broker and site_ref.site.region:
            if not formats.get(format.value).terminal or output is not None:
                raise InputError("-f html/junit and -o are not available yet for a site run by its region's workers "
                                 "(--broker); the workers' result is shown as text or json")
            return _apply_remote(pb, site_ref, broker, yes=yes, fmt=shown, wait=worker_wait, break_lock=break_lock)
        from ..fleet.outcome import run_one
        from ..fleet.work import apply_work
        from ..plan.planner import PayloadCache

        with run_context(site_ref.name, fmt=shown, yes=yes) as ctx:
            # a fleet of one: the work each site of a fleet does, the whole run kept for this command's output
            work = apply_work(pb, PayloadCache(), break_lock=break_lock, keep_reports=output is not None, alone=True,
                              checksum=checksum)
            outcome = run_one(work, site_ref, ctx).detail
    result = outcome.result
    if (format != ApplyFormat.text or output is not None) and (result is not None or format == ApplyFormat.json):
        doc = formats.write_site(format.value, "apply",
                                 formats.SiteReport(note=note, plan=outcome.plan, result=result, traffic=ctx.traffic))
        emit(doc, output, f"Report written to {output}.", force=force)
    if result is None:
        if text:
            stdout.line("Nothing was done.")
        raise typer.Exit(0)
    if not text:
        result.raise_for_status()
        return
    if result.status == RunState.NOTHING:
        files = sum(1 for s in outcome.plan.skipped if "manifest" in s.reason)
        from ..report.text import unreachable

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


def _apply_remote(pb, site_ref, broker: str, *, yes: bool, fmt: Format, wait: float, break_lock: bool) -> None:
    """One site through its region's workers: the fleet's regional work with one site (the plan is
    made and run there, events come back here), asked and shown as a one-site apply."""
    from ..fleet.outcome import run_one
    from ..fleet.work import apply_work, regional_work
    from ..plan.planner import PayloadCache
    from ..workers.remote import dispatcher_for
    from ..workers.tasks import exit_code_of

    region = site_ref.site.region
    stdout = outmod.stdout()
    with run_context(site_ref.name, fmt=fmt, yes=yes) as ctx:
        if not ctx.ask(f"Apply {pb.kb} to site {site_ref.name} through the workers of region {region}?"):
            stdout.line("Nothing was done.")
            return
        d = dispatcher_for(pb, site_ref.inventory.path, broker, start_timeout=wait)
        ctx.changing = True  # from here a signal cancels the rollout: queued sites are revoked, running ones roll back
        try:
            work = regional_work(apply_work(pb, PayloadCache(), break_lock=break_lock), d, pb.kb)
            outcome = run_one(work, site_ref, ctx)
        finally:
            ctx.changing = False
            d.close()
    r = outcome.detail
    if fmt == Format.json:
        write_json({"rollout": d.rollout, "region": region, **r})
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
