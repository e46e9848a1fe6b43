"""How `deployer ... --help` reads: `-h` everywhere, each command's own exit codes, readable
value names (FILE, N, TEXT, a|b|c rather than `<list[Path]>` or `[[SITE]]`), and command
summaries given whole rather than cut with "...".

Applied once to the typer app (`install`), so the commands keep their plain typer
declarations. The root group is also where the registry's commands are loaded on demand:
`deployer --help` lists them from the registry's summaries; a command's module is imported
only when that command (or its own help) is asked for.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

from .. import commands as registry
from ..errors import exit_help

# the codes each command can return, from the registry (the one place that says them)
EXITS: dict[str, tuple[tuple[int, ...], dict[int, str]]] = registry.exits()


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
    """The root group: the registry's commands, each built (and its help fixed) when first asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _readable(param)
        for name, cmd in self._loaded.items():
            _fix(name, cmd)

    @property
    def commands(self) -> dict[str, Any]:  # type: ignore[override]
        """Every command, all loaded: for whoever walks the whole tree (the help tests, docs)."""
        for name in registry.COMMANDS:
            self.get_command(None, name)
        return self._loaded

    @commands.setter
    def commands(self, value: dict[str, Any]) -> None:
        self._loaded = dict(value)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*registry.COMMANDS, *(n for n in self._loaded if n not in registry.COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self._loaded and cmd_name in registry.COMMANDS:
            cmd = _build(cmd_name)
            _fix(cmd_name, cmd)
            self._loaded[cmd_name] = cmd
        return self._loaded.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            info = registry.COMMANDS.get(name)
            if info is not None and name not in self._loaded:  # its summary without importing it
                if not info.hidden:
                    rows.append((name, info.summary))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _build(name: str) -> Any:
    """The click command of a registry entry: its module imported now, turned into click by typer."""
    import typer
    import typer.main

    from ..errors import EXIT_CODES_HELP

    info, obj = registry.COMMANDS[name], registry.load(name)
    holder = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
    if isinstance(obj, typer.Typer):
        holder.add_typer(obj, name=name)
        return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]
    holder.command(name, epilog=EXIT_CODES_HELP, hidden=info.hidden)(obj)
    return typer.main.get_command(holder)  # one command and no callback: the command itself


def _fix(path: str, cmd: Any) -> None:
    """Readable value names, whole summaries and the command's own exit codes, down a group."""
    if isinstance(getattr(cmd, "commands", None), dict):  # a group (typer's own click, or click)
        cmd.__class__ = type("Sub" + type(cmd).__name__, (type(cmd),),
                             {"format_commands": _format_group})
        cmd.epilog = None  # each of its commands says its own codes
        for name, sub in cmd.commands.items():
            _fix(f"{path} {name}", sub)
        return
    for param in cmd.params:
        _readable(param)
    if any("--site" in getattr(p, "opts", ()) and not getattr(p, "multiple", False) for p in cmd.params):
        cmd.__class__ = type("OneSite" + type(cmd).__name__, (type(cmd),), {"parse_args": _one_site})
    if path in EXITS:
        codes, meanings = EXITS[path]
        cmd.epilog = exit_help(*codes, meanings=meanings)


def _one_site(self: Any, ctx: Any, args: list[str]) -> Any:
    """A command whose --site names one site: typer would keep the last of a repeated one
    (`sendcode --site A --site B` would quietly act on B alone). Read from the command's own
    option, so a command that takes several (plan, scan, inventory show) is never refused."""
    given = [a for a in args if a in ("--site", "-s") or a.startswith("--site=")
             or (a.startswith("-s") and not a.startswith("--") and len(a) > 2)]
    if len(given) > 1:
        from ..errors import InputError

        several = [n for n, info in registry.COMMANDS.items() if info.fleet]
        raise InputError(f"--site is given more than once; `deployer {ctx.command_path.partition(' ')[2]}` works on "
                         f"one site ({', '.join(several[:-1])} and {several[-1]} take several)")
    return super(type(self), self).parse_args(ctx, args)


def _format_group(self: Any, ctx: Any, formatter: Any) -> None:
    """A sub-group's listing: every command's summary whole (typer's cuts it with "...")."""
    rows = [(name, cmd.get_short_help_str(limit=10_000)) for name in self.list_commands(ctx)
            if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
    if rows:
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def install(app: Any) -> None:
    """`-h` as well as `--help` on every command, and the root group above."""
    app.info.cls = Group
    settings = dict(app.info.context_settings or {})
    settings["help_option_names"] = ["-h", "--help"]
    app.info.context_settings = settings
