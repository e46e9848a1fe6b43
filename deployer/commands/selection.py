"""The options that choose sites (--site, --group, --all, --inventory) and size a fleet (--forks,
--max-per-host, --processes), declared once for every command that takes several sites.

A command names one parameter `sites: Sites` and decorates itself with `@takes_sites()`: typer
sees the options in that parameter's place (so each command spells them, and documents them, the
same), and the command gets them as one value that selects its sites and shapes its fleet.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import typer

from ..fleet.options import (DEFAULT_FORKS, DEFAULT_MAX_PER_HOST, AllOpt, FleetArgs, ForksOpt, GroupOpt,
                             MaxPerHostOpt, NoteOpt, ProcessesOpt, SitesOpt, report_option)
from .common import InventoryOpt, select_sites, workflow


@dataclass
class Sites:
    site: list[str] | None = None
    inventory: Path | None = None
    group: list[str] | None = None
    all_sites: bool = False
    forks: int = DEFAULT_FORKS
    max_per_host: int = DEFAULT_MAX_PER_HOST
    processes: int | None = None
    report: Path | None = None  # --report FILE: a fleet's report, or one site's (with reports=True)
    note: str | None = None  # --note TEXT, printed in every report (with reports=True)

    def inv(self):
        return workflow.inventory(self.inventory)  # --inventory, $DEPLOYER_INVENTORY, ./sites.yaml

    def refs(self, inv: Any = None) -> list:
        """The sites chosen, in the order named (exactly one unless several were asked for)."""
        return select_sites(inv if inv is not None else self.inv(), self.site, self.group, self.all_sites)

    def one_or_fleet(self, fleet: Callable[[Any, list], int]) -> Any:
        """The one site chosen; several are `fleet(inventory, sites)`'s, whose exit code ends the command."""
        inv = self.inv()
        refs = self.refs(inv)
        if len(refs) > 1:
            raise typer.Exit(fleet(inv, refs))
        return refs[0]

    def fleet(self, **more: Any) -> FleetArgs:
        """The fleet's arguments: these options, and the command's own (`more`)."""
        return FleetArgs(**{"forks": self.forks, "max_per_host": self.max_per_host, "processes": self.processes,
                            "report": self.report, "note": self.note, **more})


# each option as typer declares it, in the order --help lists them
OPTIONS: dict[str, Any] = {"site": SitesOpt, "inventory": InventoryOpt, "group": GroupOpt, "all_sites": AllOpt,
                           "forks": ForksOpt, "max_per_host": MaxPerHostOpt, "processes": ProcessesOpt}
REPORTS = ("report", "note")  # listed last, after the command's own
DEFAULTS = {f.name: f.default for f in fields(Sites)}


def takes_sites(*names: str, reports: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Put the site options (all, or those named) in place of the command's `sites` parameter;
    with `reports`, --report and --note after the command's own options (--report's help lists the
    formats of the command's reports: the function's name is the command's)."""
    chosen = list(names or OPTIONS)
    last = list(REPORTS) if reports else []

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        declared = {"report": report_option(func.__name__), "note": NoteOpt}
        sig = inspect.signature(func, eval_str=True)  # typer reads evaluated annotations
        params: list[inspect.Parameter] = []
        for p in sig.parameters.values():
            if p.name == "sites":
                params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=DEFAULTS[n],
                                             annotation=OPTIONS[n]) for n in chosen]
            else:
                params.append(p)
        params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=declared[n])
                   for n in last]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            if "sites" not in kwargs:  # from typer: the options one by one
                kwargs["sites"] = Sites(**{n: kwargs.pop(n) for n in [*chosen, *last] if n in kwargs})
            return func(*args, **kwargs)

        command.__signature__ = inspect.Signature(params, return_annotation=sig.return_annotation,  # type: ignore[attr-defined]
                                                  __validate_parameters__=False)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate
