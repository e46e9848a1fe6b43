"""`deployer preflight`: Q166765's checks on a site before a PCM-service distribution or a hotfix."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ExitCode, InputError
from ..report import out as outmod

STYLE = {"pass": "ok", "fail": "bad", "cannot check": "warn"}


def preflight(
    playbook: Annotated[Optional[Path], typer.Argument(help="The playbook about to run (its manifest gives the "
                                                            "wanted Pcmsvc32.exe date).")] = None,
    site: Annotated[str, typer.Option("--site", "-s", help="Site name from the inventory.")] = ...,  # type: ignore[assignment]
    pcm_record: Annotated[Optional[Path], typer.Option("--pcm-record", help="The package's PCM record(s): PCMDUMP "
                                                       "output or deployer-pcm YAML.")] = None,
    request: Annotated[Optional[str], typer.Option("--request", help="Only the record with this RequestID.")] = None,
    inventory: Annotated[Optional[Path], typer.Option("--inventory", "-i", help="Site inventory (default: ./sites.yaml).")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """Check Q166765's requirements (PCM service running and current, polling interval, silent mandatory package,
    recent backup). Changes nothing. Exit 3 if a check fails, 6 if some could not run."""
    if format not in ("text", "json"):
        raise InputError(f"--format {format!r}: allowed: text, json")
    if request and pcm_record is None:
        raise InputError("--request selects a record of --pcm-record FILE; give the file too")
    # imported here: `deployer --help` and the other commands do not load them
    from ..fleet import workflow
    from ..steps.playbook import load_playbook
    from ..sms import preflight as checks
    from ..sms.pcm.load import load as load_pcm

    pb = load_playbook(playbook) if playbook else None
    records = None
    if pcm_record is not None:
        records = load_pcm(pcm_record).records
        if request:
            records = [r for r in records if r.request_id.casefold() == request.casefold()]
            if not records:
                raise InputError(f"no record with RequestID {request!r} in {pcm_record}")
    site_ref = workflow.inventory(inventory).site(site)
    with workflow.session(site_ref) as conn:
        results = checks.run(site_ref, conn, pb, records)
    bad = checks.failed(results)
    # a check that could not run is not a pass: PASSED only when every check passed
    unknown = [r for r in results if r.status == checks.UNKNOWN]
    verdict = "FAILED" if bad else "INCOMPLETE" if unknown else "PASSED"
    if format == "json":
        sys.stdout.write(json.dumps({"site": site_ref.name, "passed": verdict == "PASSED", "status": verdict.lower(),
                                     "checks": [r.to_json() for r in results]}, indent=1) + "\n")
    else:
        out = outmod.stdout()
        out.line(f"Preflight of site {site_ref.name} (Q166765)" + (f" for {pb.kb}" if pb else "") + ":", "head")
        out.table(["check", "target", "status", "detail"], [[r.check, r.target, r.status, r.detail] for r in results],
                  [STYLE[r.status] for r in results])
        out.line()
        for name in dict.fromkeys(r.check for r in results):
            out.line(f"  {name}: {checks.REQUIREMENTS[name]}")
        out.line()
        n = {s: sum(r.status == s for r in results) for s in (checks.PASS, checks.FAIL, checks.UNKNOWN)}
        out.line(f"{n[checks.PASS]} passed, {n[checks.FAIL]} failed, {n[checks.UNKNOWN]} cannot be checked. "
                 + verdict, {"FAILED": "bad", "INCOMPLETE": "warn"}.get(verdict, "good"))
    if bad:
        raise typer.Exit(int(ExitCode.MISMATCH))
    if unknown:
        raise typer.Exit(int(ExitCode.INCOMPLETE))
