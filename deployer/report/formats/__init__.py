"""The report formats: name -> module, imported on demand (the commands registry's pattern).

Every command's report goes through here, for one site and for a fleet: `-f FORMAT`, the
suffix of `--report FILE`, which formats a command offers, and the writing itself. A format
is one module of this package (or anywhere, through `register`) with two writers:

    site(kind, subject: SiteReport) -> str   one site's report of a command (`kind`)
    draw(kind, subject, out) (optional)      the same onto a terminal's report.out.Out, in colour
    fleet(doc: FleetDoc) -> str              the roll-up, then each site's section as `site` writes it

Adding a format is that module plus its entry in FORMATS.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

# the commands whose reports a format can write (a fleet's report of them too)
RUNS_KINDS = frozenset({"apply", "rollback", "recover"})
ALL_KINDS = frozenset({"plan", "verify", "runs", "scan"}) | RUNS_KINDS


@dataclass(frozen=True)
class Format:
    """A format's entry: where its writers live and what it is for."""

    name: str
    module: str  # imported when a report in this format is written, not before
    label: str  # how messages name it: "JSON", "JUnit"
    suffixes: tuple[str, ...] = ()  # `--report FILE` picks the format by these (lower case, with the dot)
    terminal: bool = True  # shown on a terminal as it is; False: a document, a fleet's needs a file
    kinds: frozenset[str] = ALL_KINDS

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


FORMATS: dict[str, Format] = {}
DEFAULT = "text"  # a --report FILE whose suffix no format claims


def register(fmt: Format) -> None:
    FORMATS[fmt.name] = fmt


for _f in (Format("text", f"{__name__}.text", "text"),
           Format("json", f"{__name__}.json", "JSON", (".json",)),
           Format("junit", f"{__name__}.junit", "JUnit", (".xml",), terminal=False,
                  kinds=frozenset({"verify", "scan"}) | RUNS_KINDS),
           Format("html", f"{__name__}.html", "HTML", (".html", ".htm"), terminal=False,
                  kinds=frozenset({"verify", "scan"}) | RUNS_KINDS)):
    register(_f)


def get(name: str) -> Format:
    return FORMATS[name]


def names(kind: str | None = None) -> tuple[str, ...]:
    """The formats that write `kind`'s report (every format when None), in the registry's order."""
    return tuple(n for n, f in FORMATS.items() if kind is None or kind in f.kinds)


def by_suffix(path: Path) -> str:
    """The format `--report FILE` names by its suffix (text when none claims it)."""
    suffix = path.suffix.lower()
    return next((f.name for f in FORMATS.values() if suffix in f.suffixes), DEFAULT)


def suffix_help(kind: str | None = None) -> str:
    """`.json: JSON, .xml: JUnit, .html: HTML, anything else: text`: the suffixes, each format's first
    (of the formats that write `kind`'s report, when given)."""
    return ", ".join([f"{f.suffixes[0]}: {f.label}" for n, f in FORMATS.items()
                      if f.suffixes and n in names(kind)] + [f"anything else: {get(DEFAULT).label}"])


def report_help(kind: str) -> str:
    """`--report FILE`'s help for command `kind`, from the registry as it is when the command is built."""
    return (f"Write the report to FILE, its format picked by the suffix ({suffix_help(kind)}). The same as "
            "-f FORMAT -o FILE.")


@dataclass
class SiteReport:
    """What one site's report of a command is written from (the parts its kind has)."""

    note: str | None = None
    plan: Any = None  # plan.model.Plan: plan, apply
    result: Any = None  # run.apply's result: apply (None: the operator declined)
    report: Any = None  # sms.verify.Report: verify
    traffic: Any = None  # the transport's counters, in JSON reports
    site: str = ""  # runs: the site's name
    runs: Any = None  # runs: [(RunInfo, backup space)] as the site's work found them
    data: Any = None  # runs: the JSON the site's work made
    section: Any = None  # rollback, recover: the site's section (report/html.SiteSection) as a fleet's has it
    scan: Any = None  # scan: the scan.model.ScanResult of the sites scanned
    chains: Any = None  # scan: () -> the catalogue's supersedence chains (made only for a writer showing them)


@dataclass
class FleetDoc:
    """A fleet's report, made ready by fleet/report.py for any format: the roll-up's parts and
    each site's section (report/html.SiteSection), the sites that need attention first."""

    command: str
    name: str  # the document's name (JUnit's testsuites)
    command_line: str  # `verify (fleet 20261207T...)`
    note: str | None
    heading: list[tuple[str, str | None]]  # (line, style) above the sites
    table: list[list[str]]  # a row per site: Site, Result, Run, Actions, Seconds, Detail
    sections: list[Any]
    summary: list[tuple[str, str | None]]  # the closing lines (totals, sites to look at, journal)
    data: dict[str, Any]  # the JSON document
    rollup: dict[str, str]  # the roll-up as properties (JUnit)
    counts: list[tuple[str, int, str]]  # (outcome words, sites, tone)
    seconds: float = 0.0
    fleet_id: str | None = None
    journal: str | None = None
    stopped: str | None = None


def write_site(fmt: str, kind: str, subject: SiteReport) -> str:
    return get(fmt).load().site(kind, subject)


def show(fmt: str, kind: str, subject: SiteReport, out: Any) -> None:
    """One site's report on the terminal's `out`: drawn there when the format draws (text, in
    colour), else its document written as it is."""
    module = get(fmt).load()
    if hasattr(module, "draw"):
        module.draw(kind, subject, out)
    else:
        out.stream.write(module.site(kind, subject))


def write_fleet(fmt: str, doc: FleetDoc) -> str:
    return get(fmt).load().fleet(doc)
