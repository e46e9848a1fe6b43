"""How `deployer ... --help` reads: `-h` everywhere, each command's own exit codes, readable
value names (FILE, N, TEXT, a|b|c rather than `<list[Path]>` or `[[SITE]]`), and command
summaries given whole rather than cut with "...".

Applied once to the typer app (`install`), so the commands keep their plain typer
declarations; the table below is the one place that says which codes a command can return.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

from ..errors import exit_help

INTERRUPTED = 130
_ASKS = {INTERRUPTED: "interrupted (Ctrl-C) before anything was changed"}

# the codes each command can return; meanings that differ from the table's are given here
EXITS: dict[str, tuple[tuple[int, ...], dict[int, str]]] = {
    "plan": ((0, 1, 2, 5), {1: "a server could not be reached (a fleet: some site could not be planned)"}),
    "apply": ((0, 1, 2, 4, INTERRUPTED), _ASKS),
    "verify": ((0, 1, 2, 3), {1: "a server could not be reached"}),
    "rollback": ((0, 1, 2, 4, INTERRUPTED), {1: "a server could not be reached, or a fleet site failed", **_ASKS}),
    "recover": ((0, 1, 2, 4, INTERRUPTED), {1: "the unfinished run was rolled back (the site is as before it)",
                                            **_ASKS}),
    "runs": ((0, 1, 2), {1: "a server could not be reached"}),
    "prune": ((0, 1, 2, INTERRUPTED), {1: "a server could not be reached", **_ASKS}),
    "schema": ((0, 2), {}),
    "worker": ((0, 2), {0: "stopped", 2: "bad broker settings, or the workers extra is not installed"}),
    "sendcode": ((0, 1, 2), {1: "the server could not be reached, or its Service Control Manager refused the code"}),
    "preflight": ((0, 1, 2, 3, 6), {0: "every check passed", 3: "a check failed"}),
    "validate": ((0, 2), {0: "every file is valid", 2: "a file has errors (each printed with its file:line)"}),
    "clients": ((0, 1, 2), {0: "every logon server could be read", 1: "a logon server could not be read"}),
    "lab init": ((0, 2), {}),
    "scan": ((0, 1, 2, 3), {0: "every hotfix of the catalogue is installed, superseded or not applicable",
                            1: "a site could not be reached (the others are scanned)",
                            3: "a hotfix is missing or partial on some site"}),
    "catalog list": ((0, 2), {2: "the catalogue folder is missing or not a folder"}),
    "catalog graph": ((0, 2), {2: "the catalogue folder is missing or not a folder"}),
    "kb import": ((0, 2, 3), {0: "every row was read exactly", 2: "an article could not be read (the others are "
                              "written)", 3: "some rows need review (they are written, flagged)"}),
    "manifest from-kb": ((0, 2, 3), {0: "every row was read exactly", 2: "an article could not be read", 3: "some "
                                     "rows need review (they are written, flagged)"}),
    "inventory from-rservice": ((0, 2), {}),
    "inventory show": ((0, 2), {}),
    "pcm dump": ((0, 2), {}),
    "pcm convert": ((0, 2), {}),
    "pcm lint": ((0, 2, 3), {0: "nothing flagged", 3: "something was flagged"}),
}


def _label(param: Any) -> str | None:
    """FILE, DIR, N, NUMBER, TEXT or the choices, from typer's description of the parameter."""
    from pathlib import Path
    from typing import get_args

    desc = getattr(param, "type_descriptor", None)
    if desc is None:  # a typer without it prints readable names already
        return None
    if desc.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    annotation = get_args(desc.annotation)[0] if desc.is_list and get_args(desc.annotation) else desc.annotation
    if desc.is_path or annotation is Path:
        return "DIR" if (param.name or "").endswith("dir") else "FILE"
    return {int: "N", float: "NUMBER", str: "TEXT"}.get(annotation)


def _readable(param: Any) -> None:
    """A value name a reader understands, where typer would print a Python type."""
    if param.param_type_name == "argument":
        param.metavar = (param.metavar or param.name or "").strip("[]{}").upper()
        # the name says what it is (PLAYBOOK, SITE); typer would add `<path>`, `<str>`
        param.display_type_rich = lambda ctx: None
        return
    if getattr(param, "is_flag", False) or getattr(param, "count", False) or param.metavar:
        return
    label = _label(param)
    if label:
        param.metavar = label


class Group(TyperGroup):
    """The root group: fixes every command under it when the CLI is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _readable(param)
        _fix(self, "")

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _fix(group: Any, prefix: str) -> None:
    for name, cmd in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(getattr(cmd, "commands", None), dict):  # a group (typer's own click, or click)
            cmd.__class__ = type("Sub" + type(cmd).__name__, (type(cmd),),
                                 {"format_commands": Group.format_commands})
            cmd.epilog = None  # each of its commands says its own codes
            _fix(cmd, path + " ")
            continue
        for param in cmd.params:
            _readable(param)
        if path in EXITS:
            codes, meanings = EXITS[path]
            cmd.epilog = exit_help(*codes, meanings=meanings)


def install(app: Any) -> None:
    """`-h` as well as `--help` on every command, and the root group above."""
    app.info.cls = Group
    settings = dict(app.info.context_settings or {})
    settings["help_option_names"] = ["-h", "--help"]
    app.info.context_settings = settings
