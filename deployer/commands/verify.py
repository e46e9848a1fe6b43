"""`deployer verify`: every file against the manifest, for a site or a fleet."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import VerificationMismatch
from ..fleet.options import report_file
from ..report import formats, out as outmod
from ..report.owned import ForceOpt
from .selection import Sites, takes_sites
from .common import OPTIONS, ChecksumOpt, Format, ReportFormat, emit, run_context, workflow, fleet_cli


@takes_sites(reports=True)
def verify(
    target: Annotated[Path, typer.Argument(help="Playbook or manifest YAML.")],
    sites: Sites,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to FILE.")] = None,
    force: ForceOpt = False,
    checksum: ChecksumOpt = False,
) -> None:
    """Check every file's date, time and size (version, hash where listed) against the manifest. Exit 3 on mismatch."""
    report, note = sites.report, sites.note
    rfmt, output = report_file(format.value, output, report, kind="verify")
    format = ReportFormat(rfmt)
    if output is not None:
        outmod.check_replace(output, what="the report", force=force)  # before any site is read
    loaded = workflow.load_target(target)
    site_ref = sites.one_or_fleet(lambda inv, refs: fleet_cli.verify(
        loaded, refs, sites.fleet(report=None, force=force), fmt=format.value, output=output, checksum=checksum))  # -o is its report
    from ..fleet.outcome import run_one
    from ..fleet.work import verify_work
    from ..plan.planner import PayloadCache

    with run_context(site_ref.name, fmt=Format.json if format != ReportFormat.text else Format.text) as ctx:
        # a fleet of one: the work each site of a fleet does, its report kept for this command's output
        report = run_one(verify_work(loaded, PayloadCache(), checksum=checksum), site_ref, ctx).detail
    # text to the terminal is drawn there (with its colours); a file or another format is written by its writer
    text = None if format == ReportFormat.text else formats.write_site(
        format.value, "verify", formats.SiteReport(note=note, report=report, traffic=ctx.traffic))
    if output:
        if text is None:
            text = formats.write_site("text", "verify", formats.SiteReport(note=note, report=report))
        emit(text, output, f"Report written to {output}: {report.verdict}"
             + "".join(f"\nNOT VERIFIED: {line}" for line in report.not_verified()), what="the report", force=force)
    elif text is None and OPTIONS.quiet:
        c = report.to_json()["summary"]
        outmod.stdout().line(f"Verification of {report.kb} on site {report.site}: {c['ok']} of {c['total']} files "
                             f"match: {report.verdict}", "good" if report.ok else "bad")
    elif text is None:  # drawn on the terminal, in colour, under the --note line
        formats.show("text", "verify", formats.SiteReport(note=note, report=report), outmod.stdout())
    else:
        sys.stdout.write(text)
    if not report.ok:
        raise VerificationMismatch("")
