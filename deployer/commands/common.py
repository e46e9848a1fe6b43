"""What the commands share: the global options, the option types every command spells the same,
the run context a console draws, and the few helpers that load a playbook or render a plan.

Light by design: a command module imports this, and `deployer --help` imports none of them;
what a command needs beyond it (pydantic models, jinja2, the transports, the mock site) is
imported when it runs.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import typer

from ..fleet.options import complete_site
from ..report import formats, out as outmod

if TYPE_CHECKING:
    from ..plan.model import Plan
    from ..run.context import RunContext


class _Lazy:
    """`workflow.x` imports deployer.fleet.workflow on first use."""

    def __init__(self, module: str):
        self._module = module

    def __getattr__(self, name: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._module, "deployer"), name)


workflow = _Lazy(".fleet.workflow")
lab = _Lazy(".simulator.lab")
fleet_cli = _Lazy(".commands.fleet")  # the fleet paths: only when several sites are selected


@dataclass
class Options:
    """The options every command shares (given before the command: `deployer -v apply ...`)."""

    quiet: bool = False
    verbose: bool = False
    log: Path | None = None
    no_log: bool = False
    log_path: Path | None = None  # where this command's log is being written
    closing: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def reset(self) -> None:
        """main() may run many times in one process (tests, API users); modules hold this object."""
        self.__dict__.update(Options().__dict__)


OPTIONS = Options()


class Format(str, Enum):
    text = "text"
    json = "json"


def format_choices(kind: str, name: str) -> Any:
    """`-f`'s choices for command `kind`: the formats of report/formats' registry that write its
    report (text, json, junit, html, and any format registered there before the commands are built)."""
    return Enum(name, {n: n for n in formats.names(kind)}, type=str)  # type: ignore[misc]


ReportFormat = format_choices("verify", "ReportFormat")
ApplyFormat = format_choices("apply", "ApplyFormat")

InventoryOpt = Annotated[Optional[Path], typer.Option("--inventory", "-i", help="Site inventory (default: $DEPLOYER_INVENTORY, else ./sites.yaml).")]
SiteOpt = Annotated[str, typer.Option("--site", "-s", help="Site name from the inventory.", autocompletion=complete_site)]
OutAlias = Annotated[Optional[Path], typer.Option("--out", hidden=True)]  # the old spelling of --output
BreakLockOpt = Annotated[bool, typer.Option("--break-lock", help="Break a site lock left by a run that is gone.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before acting.")]
ChecksumOpt = Annotated[bool, typer.Option("--checksum", help="Read every file whose content decides, trusting no hash "
                                           "recorded with its size and times (.deployer\\known.json on the site "
                                           "server); catches a rewrite in place that put them back.")]


def select_sites(inv, sites, groups, all_sites):
    from ..fleet.select import select_sites as select

    return select(inv, sites, groups, all_sites)


def load_playbook(path: Path):
    from ..steps.playbook import load_playbook as load

    return load(path)


def render_plan(plan, out) -> None:
    from ..report.text import render_plan as render

    render(plan, out)


def render_report(report, out) -> None:
    from ..report.text import render_report as render

    render(report, out)


def dumps(data: Any) -> str:
    from ..report.formats.json import dumps as as_json  # the JSON report format's one spelling

    return as_json(data)


def write_json(data: Any) -> None:
    sys.stdout.write(dumps(data))


def emit(text: str, output: Path | None, done: str | None = None, *, what: str = "the output",
         force: bool = False) -> None:
    """`text` on stdout, or written to `output`: every file a command writes for the operator goes
    through here (whole or not at all, with deployer's mark, never over a file deployer did not
    write without --force: model/owned.py), then `done` on stderr ("" when the caller says it)."""
    if output is None:
        sys.stdout.write(text)
        return
    outmod.write_atomic(output, text, what=what, force=force)
    if done != "":
        outmod.stderr().line(done or f"Wrote {output}.")


@contextmanager
def run_context(site: str, *, fmt: Format = Format.text, yes: bool = False, show_plan: bool = True
                ) -> Iterator[RunContext]:
    """A run context whose events a console renderer draws, and whose cancel token SIGINT,
    SIGTERM and SIGHUP set while the site is being changed (before that they interrupt the
    command: nothing was touched, exit 130)."""
    from ..report.console import ConsoleRenderer
    from ..run.context import RunContext

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
        from ..report.console import no_terminal

        raise no_terminal(renderer.refused)

