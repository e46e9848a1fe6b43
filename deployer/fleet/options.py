"""The options that select sites and shape a fleet rollout, declared once for every command.

Kept apart from commands/fleet.py so that the CLI can declare them without importing the fleet
machinery (a one-site command never loads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..model.numbers import whole
from ..targets.host_limits import DEFAULT_MAX_PER_HOST

if TYPE_CHECKING:
    from .engine import Rollout

from . import DEFAULT_FORKS  # noqa: F401  (the commands' --forks default)

def complete_site(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: the inventory's site and group names."""
    from ..model.inventory_source import site_names

    return [n for n in site_names(ctx.params.get("inventory")) if n.casefold().startswith(incomplete.casefold())]


SitesOpt = Annotated[Optional[list[str]], typer.Option(
    "--site", "-s", metavar="NAME", autocompletion=complete_site, help="Site name from the inventory; repeat it or separate names with commas; globs ('EU*') "
    "match names. Several sites run as a fleet.")]
GroupOpt = Annotated[Optional[list[str]], typer.Option("--group", "-g", metavar="NAME", autocompletion=complete_site, help="Every site of an inventory group "
                                                       "(groups: in sites.yaml); repeatable.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every site of the inventory.")]
ForksOpt = Annotated[int, typer.Option("--forks", metavar="N", parser=whole, help="Fleet: sites worked on at the same time.")]
MaxPerHostOpt = Annotated[int, typer.Option("--max-per-host", metavar="N", parser=whole, help="Fleet: at most N site sessions open "
                                            "to one SMB or SSH server host (host:port) at a time; the others wait "
                                            "for a free one. Mock sites are not bounded.")]
BatchOpt = Annotated[Optional[str], typer.Option("--batch", metavar="N|P%", help="Fleet: start sites in rolling batches of N sites "
                                                 "or P% of the fleet; each batch ends before the next starts.")]
CanaryOpt = Annotated[int, typer.Option("--canary", metavar="N", parser=whole, help="Fleet: run N sites first, then stop and ask (--yes goes "
                                        "on when they all passed; without a terminal the rollout pauses).")]
MaxFailOpt = Annotated[Optional[str], typer.Option("--max-fail", metavar="N|P%", help="Fleet: once more than N sites (or P%) "
                                                   "failed, start no new site; running ones finish or roll back.")]
FleetDirOpt = Annotated[Optional[Path], typer.Option("--fleet-dir", metavar="DIR", help="Fleet journals folder (default "
                                                     "~/.local/state/deployer/fleets).")]
def report_option(kind: str) -> Any:
    """`--report FILE` of command `kind`: its help names the suffixes of the formats that command
    writes, from report/formats' registry (a format registered before the command is built is listed)."""
    from ..report.formats import report_help

    return Annotated[Optional[Path], typer.Option("--report", metavar="FILE", help=report_help(kind))]
ProcessesOpt = Annotated[Optional[int], typer.Option("--processes", metavar="N", min=0, help="Fleet: spread the sites "
                                                  "over N worker processes (0: threads of this one process only). "
                                                  "Default: 0 (measured slower on a loaded 2-core controller: README, Benchmarks).")]
NoteOpt = Annotated[Optional[str], typer.Option("--note", metavar="TEXT", help="A line printed in every report of this "
                                                "command (text, JSON, JUnit, HTML), e.g. the change number.")]

def format_of(path: Path) -> str:
    """The format `--report FILE` names by its suffix (report/formats: each format's suffixes)."""
    from ..report.formats import by_suffix

    return by_suffix(path)


def report_file(fmt: str, output: Path | None, report: Path | None, *,
                kind: str | None = None) -> tuple[str, Path | None]:
    """One spelling for every command: `-f FORMAT -o FILE`, or `--report FILE` as its alias
    (the format by the suffix). `kind`: the command, whose report formats are offered.
    Returns the report's format and file (None: no file)."""
    from ..errors import InputError
    from ..report import formats

    if report is not None and output is not None:
        raise InputError(f"--report {report} and -o {output} both name the report file; --report FILE is "
                         "-o FILE with the format picked by its suffix: give one of them")
    if report is None:
        return fmt, output
    picked = format_of(report)
    if fmt != formats.DEFAULT and fmt != picked:
        raise InputError(f"--report {report} makes a {picked} report by its suffix, but -f says {fmt}; use "
                         f"-f {fmt} -o {report}")
    if picked not in formats.names(kind):
        raise InputError(f"--report {report}: this command's reports are {', '.join(formats.names(kind))} "
                         f"({formats.suffix_help()})")
    return picked, report
ResumeOpt = Annotated[Optional[str], typer.Option("--resume", metavar="FLEETRUN", help="Continue fleet run FLEETRUN: the sites not done yet "
                                                  "(failed, restored, not started), with its playbook and inventory.")]
AcceptChangesOpt = Annotated[bool, typer.Option("--accept-changes", help="With --resume: go on although the "
                                               "playbook, manifest, hotfix files or the remaining sites' inventory "
                                               "entries changed since the rollout started (each change is named "
                                               "without it, and the resume refused).")]


@dataclass
class FleetArgs:
    forks: int = DEFAULT_FORKS
    batch: str | None = None
    canary: int = 0
    max_fail: str | None = None
    fleet_dir: Path | None = None
    report: Path | None = None
    max_per_host: int = DEFAULT_MAX_PER_HOST
    force: bool = False  # --force: the report may replace a file deployer did not write
    processes: int | None = None  # worker processes (fleet_procs.py); None: by the fleet's size
    report_format: str | None = None  # None: by the report file's suffix
    note: str | None = None  # --note, printed in the report

    @property
    def report_fmt(self) -> str:
        return self.report_format or (format_of(self.report) if self.report is not None else "text")

    def rollout(self, yes: bool) -> "Rollout":
        from .engine import Rollout, parse_count

        return Rollout(forks=self.forks, batch=parse_count(self.batch, "--batch", minimum=1), canary=self.canary,
                       max_fail=parse_count(self.max_fail, "--max-fail", minimum=0), yes=yes,
                       max_per_host=self.max_per_host)

    @property
    def folder(self) -> Path:
        from .journal import default_dir

        return self.fleet_dir or default_dir()

    def used_rollout_options(self) -> list[str]:
        used = []
        if self.batch is not None:
            used.append("--batch")
        if self.canary:
            used.append("--canary")
        if self.max_fail is not None:
            used.append("--max-fail")
        return used  # --report is not one: it names a report file, for one site as for a fleet
