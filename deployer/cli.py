"""The `deployer` command: parse the global options, dispatch to a command of the registry
(deployer/commands/__init__.py), turn its errors into exit codes. Nothing here touches a site.

Which commands exist, what they log and how many sites they take is the registry's to say;
a command's module is imported only when it runs (helpfmt.Group loads it on demand).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__, commands as registry
from .commands import helpfmt
from .commands.common import OPTIONS, write_json
from .errors import EXIT_CODES_HELP, DeployerError, ExitCode, InputError, VerificationMismatch
from .report import out as outmod

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
helpfmt.install(app)  # the registry's commands, loaded on demand; -h, exit codes, readable value names


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
    if (registry.logged(command) or verbose) and not _help_or_completion():
        from .report.log import command_log

        # closed by main() after the command's last word (its error message included) is logged
        OPTIONS.log_path = OPTIONS.closing.enter_context(
            command_log(command, log, verbose=verbose, enabled=registry.logged(command) and not no_log))


def _help_or_completion() -> bool:
    """`-h`/`--help` anywhere, or a completion request: nothing runs, so nothing is logged."""
    return any(a in ("-h", "--help") for a in sys.argv[1:]) or "_DEPLOYER_COMPLETE" in os.environ



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
            write_json({"error": text or type(exc).__name__, "exit_code": int(exc.exit_code),
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


def main() -> None:
    from .model.redact import note_command_line

    note_command_line(sys.argv[1:])  # before the command line is logged
    as_json = _wants_json(sys.argv[1:])
    code = 0
    try:
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
    OPTIONS.reset()
    _close_stdout()
    sys.exit(code)

