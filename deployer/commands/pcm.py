"""`deployer pcm dump|convert|lint`: PCM instruction records (Q123499) read, printed, converted, checked."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import EXIT_CODES_HELP, ExitCode, InputError
from ..report import out as outmod
from ..report.owned import ForceOpt
from .common import emit

app = typer.Typer(help="PCM instruction records (Q123499): PCMDUMP's text output and deployer's YAML form.",
                  no_args_is_help=True, epilog=EXIT_CODES_HELP)

FileArg = Annotated[Path, typer.Argument(help="PCMDUMP output (text) or a deployer-pcm YAML file.")]


def _write(text: str, output: Path | None, force: bool = False) -> None:
    if output is None:
        sys.stdout.buffer.write(text.encode("utf-8")) if hasattr(sys.stdout, "buffer") else sys.stdout.write(text)
        sys.stdout.flush()
        return
    emit(text, output, "", what="the records", force=force)  # the caller says what it wrote


@app.command("dump", epilog=EXIT_CODES_HELP)
def dump(
    file: FileArg,
    decode: Annotated[bool, typer.Option("--decode", help="Name the numbers: operating systems, server types, "
                                         "flags; 00/00/00 00:00:00 as 'not set'.")] = False,
) -> None:
    """Print the records in PCMDUMP's exact layout (from either form)."""
    from ..sms.pcm import dumptext
    from ..sms.pcm.load import load

    _write(dumptext.render(load(file), decode=decode), None)


@app.command("convert", epilog=EXIT_CODES_HELP)
def convert(
    file: FileArg,
    to: Annotated[Optional[str], typer.Option("--to", help="yaml or text (default: the other form).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to FILE.")] = None,
    force: ForceOpt = False,
) -> None:
    """Convert between PCMDUMP's text and deployer's YAML form; the round trip keeps every byte."""
    if to not in (None, "yaml", "text"):
        raise InputError(f"--to {to!r}: allowed: yaml, text")
    from ..sms.pcm import dumptext, yamlform
    from ..sms.pcm.load import is_yaml, load

    f = load(file)
    source_is_yaml = is_yaml(file, file.read_text("utf-8", errors="replace"))
    target = to or ("text" if source_is_yaml else "yaml")
    if target == "text":
        lost = [r.request_id for r in f.records if r.automated_command_line is not None or r.background_task is not None]
        if lost:
            outmod.stderr().line(f"Note: automated_command_line and background_task of {', '.join(lost)} are not "
                                 "part of PCMDUMP's layout and are left out of the text.")
        text = dumptext.render(f)
    else:
        text = yamlform.to_yaml(f)
    _write(text, output, force)
    if output is not None:
        outmod.stderr().line(f"Wrote {output}: {len(f.records)} records ({target}).")


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now().replace(microsecond=0)
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d",
                "%m/%d/%y %H:%M:%S", "%m/%d/%y"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise InputError(f"--now {text!r}: write a date and time as YYYY-MM-DD [HH:MM[:SS]] (or PCMDUMP's MM/DD/YY "
                     "HH:MM:SS), in the clients' local time as the records are")


@app.command("lint", epilog=EXIT_CODES_HELP)
def lint(
    file: FileArg,
    now: Annotated[Optional[str], typer.Option("--now", help="Judge expiry at this time (default: now, local).")] = None,
    pcm_service: Annotated[bool, typer.Option("--pcm-service/--no-pcm-service", help="Also check Q166765's PCM "
                                              "service requirements (silent, automated, mandatory).")] = True,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """Flag impossible dates, expired records, display after expiration, and Q166765 breaches. Exit 3 if any."""
    if format not in ("text", "json"):
        raise InputError(f"--format {format!r}: allowed: text, json")
    from ..sms.pcm import lint as pcmlint
    from ..sms.pcm.load import load

    at = _parse_now(now)
    f = load(file)
    found = pcmlint.lint(f, at, pcm_service)
    if format == "json":
        sys.stdout.write(json.dumps({"file": str(file), "now": at.isoformat(sep=" "), "records": len(f.records),
                                     "findings": [asdict(x) for x in found]}, indent=1) + "\n")
    else:
        out = outmod.stdout()
        for x in found:
            out.line(f"{file}: {x}", "bad" if x.rule == "impossible-date" else "warn")
        clean = len(f.records) - len({x.record for x in found})
        out.line(f"{len(f.records)} records, {len(found)} findings, {clean} records clean "
                 f"(judged at {at:%Y-%m-%d %H:%M:%S}).", "bad" if found else "good")
    if found:
        raise typer.Exit(int(ExitCode.MISMATCH))
