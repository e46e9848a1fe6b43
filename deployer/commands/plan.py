"""`deployer plan`: what `apply` would change, for a site or a fleet (a dry run)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ExitCode
from ..fleet.options import report_file
from ..report import formats, out as outmod
from ..report.owned import ForceOpt
from .selection import Sites, takes_sites
from .common import (OPTIONS, ChecksumOpt, Format, OutAlias, emit, format_choices, load_playbook, render_plan, run_context, workflow, write_json,
                     fleet_cli)


# Terraform's spelling; `apply --dry-run` takes it too, saying when
DetailedOpt = Annotated[bool, typer.Option("--detailed-exitcode", help="Exit 5 when there are changes to apply, 0 when "
                                           "there is nothing to do (as Terraform's).")]


PlanFormat = format_choices("plan", "PlanFormat")  # what stdout shows (-o FILE is the saved plan)


@takes_sites(reports=True)
def plan(
    playbook: Annotated[Path, typer.Argument(help="Playbook YAML.")],
    sites: Sites,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Save the plan; `deployer apply FILE` applies exactly it.")] = None,
    format: Annotated[PlanFormat, typer.Option("--format", "-f")] = PlanFormat.text,  # type: ignore[valid-type]
    out_alias: OutAlias = None,
    detailed_exitcode: DetailedOpt = False,
    force: ForceOpt = False,
    checksum: ChecksumOpt = False,
) -> None:
    """Show exactly what `apply` would change (a dry run: nothing on the site is written)."""
    report, note = sites.report, sites.note
    out = output or out_alias
    if out:
        outmod.check_replace(out, what="the plan", force=force)  # before the site is read, not after
    pb = load_playbook(playbook)
    if pb.head.draft:  # a saved plan is made to be applied: not from a draft
        if out:
            pb.refuse_draft()
        outmod.stderr().line(f"Warning: {playbook} is a draft (draft: true): apply refuses it until it is finished.",
                             "warn")
    refs = sites.refs()
    if len(refs) > 1:
        # a fleet's -o FILE is its report (-f text or json), as for every fleet command
        rfmt, rfile = report_file(format.value, out, report, kind="plan")
        fargs = sites.fleet(report=rfile, report_format=rfmt, note=note, force=force)
        raise typer.Exit(fleet_cli.plan(pb, refs, fargs, fmt="text" if rfile else format.value,
                                        detailed=detailed_exitcode, checksum=checksum))
    if report is not None:
        rfmt = report_file(format.value, None, report, kind="plan")[0]  # refuses the formats that write no plan
        outmod.check_replace(report, what="the fleet report", force=force)
    site_ref = refs[0]
    from ..fleet.outcome import run_one
    from ..fleet.work import plan_work
    from ..plan.planner import PayloadCache

    with run_context(site_ref.name, fmt=Format.text if format.value == "text" else Format.json) as ctx:
        # a fleet of one: the work each site of a fleet does, its Plan kept to show and save
        p = run_one(plan_work(pb, PayloadCache(), keep_plans=False, keep_plan=True, checksum=checksum), site_ref, ctx).detail
    if out:
        from ..plan.saved import save_plan

        save_plan(p, out, force=force)
    if report is not None:
        doc = formats.write_site(rfmt, "plan", formats.SiteReport(note=note, plan=p))
        emit(doc, report, f"Report written to {report}.", what="the report", force=force)
    if format.value == "json":
        write_json(p.to_json())
    elif format.value != "text":  # a format of the registry's: its writer's plan
        sys.stdout.write(formats.write_site(format.value, "plan", formats.SiteReport(note=note, plan=p)))
    elif OPTIONS.quiet:
        outmod.stdout().line(workflow.summary_line(p))
    else:
        render_plan(p, outmod.stdout())
        if out:
            outmod.stdout().line(f"Saved to {out}; apply it with: deployer apply {out}")
    if detailed_exitcode and not p.empty:
        raise typer.Exit(int(ExitCode.CHANGES_PENDING))
