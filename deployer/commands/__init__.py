"""The registry of `deployer`'s commands: name -> where it lives, its summary and what it is.

Modelled on pip's `commands/__init__.py`: a command's module is imported only when that
command runs (or its own help is asked for), so `deployer --help` lists every command with
its summary from this table alone, and a one-site `plan` does not load `scan`'s catalogue or
the workers. Everything that needs to know about commands reads this table: the CLI's
dispatch and help (cli.py, helpfmt.py), each command's exit codes, which commands write a
log. Whether a command takes one site or several is read from its own --site option.

Adding a command is one module under deployer/commands/ holding a typer command function
(or a `typer.Typer` for a group of sub-commands) plus one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

INTERRUPTED = 130
_ASKS = {INTERRUPTED: "interrupted (Ctrl-C) before anything was changed"}

# the exit codes a command can return, and the meanings that differ from the table's (errors.py)
Exits = tuple[tuple[int, ...], dict[int, str]]


@dataclass(frozen=True)
class CommandInfo:
    module: str  # under deployer.commands
    attr: str  # a typer command function, or a typer.Typer for a group
    summary: str  # what `deployer --help` lists: the first sentence of the command's help, whole
    exits: Exits | None = None  # a command's codes; a group's are its sub-commands' (`subs`)
    subs: dict[str, Exits] = field(default_factory=dict)  # a group's sub-commands and their codes
    logged: bool = False  # works on a site: writes a log (report/log.py)
    fleet: bool = False  # takes several sites (--site repeated, --group, --all), as its --site option says
    hidden: bool = False


_KB_EXITS: Exits = ((0, 2, 3), {0: "every row was read exactly", 2: "an article could not be read (the others are "
                                "written)", 3: "some rows need review (they are written, flagged)"})
_CATALOG: Exits = ((0, 2), {2: "the catalogue folder is missing or not a folder"})

# in the order `deployer --help` lists them (commands, then groups)
COMMANDS: dict[str, CommandInfo] = {
    "clients": CommandInfo(
        "clients", "clients", "List, per logon server, the CopyListVersion clients will compare against (Q166771).",
        ((0, 1, 2), {0: "every logon server could be read", 1: "a logon server could not be read"})),
    "plan": CommandInfo(
        "plan", "plan", "Show exactly what `apply` would change (a dry run: nothing on the site is written).",
        ((0, 1, 2, 5), {1: "a server could not be reached (a fleet: some site could not be planned)"}),
        logged=True, fleet=True),
    "apply": CommandInfo(
        "apply", "apply", "Apply a playbook (or a saved plan) to a site or a fleet: back up, stage, swap, verify; "
        "roll back on any failure.", ((0, 1, 2, 4, INTERRUPTED), _ASKS), logged=True, fleet=True),
    "verify": CommandInfo(
        "verify", "verify", "Check every file's date, time and size (version, hash where listed) against the "
        "manifest.", ((0, 1, 2, 3), {1: "a server could not be reached"}), logged=True, fleet=True),
    "rollback": CommandInfo(
        "rollback", "rollback", "Restore a run's backups: files byte for byte with their write times, services as "
        "they were.", ((0, 1, 2, 4, INTERRUPTED), {1: "a server could not be reached, or a fleet site failed",
                                                    **_ASKS}), logged=True, fleet=True),
    "recover": CommandInfo(
        "recover", "recover", "Finish or roll back a run that was interrupted (killed, disconnected) or could not be "
        "rolled back.", ((0, 1, 2, 4, INTERRUPTED), {1: "the unfinished run was rolled back (the site is as before "
                                                        "it)", **_ASKS}), logged=True, fleet=True),
    "runs": CommandInfo(
        "runs", "runs", "List the runs journaled on a site, newest last.",
        ((0, 1, 2), {1: "a server could not be reached"}), fleet=True),
    "prune": CommandInfo(
        "prune", "prune", "Remove old runs' backups from the servers; never those of the last committed run or an "
        "unfinished one.", ((0, 1, 2, INTERRUPTED), {1: "a server could not be reached", **_ASKS}), logged=True),
    "schema": CommandInfo(
        "schema", "schema_cmd", "Print the JSON Schema of a YAML file kind (for editors: `# yaml-language-server: "
        "$schema=...`).", ((0, 2), {})),
    "worker": CommandInfo(
        "worker", "worker", "Run sites of one region for controllers elsewhere (Celery worker; needs `pip install "
        "'deployer[workers]'`).", ((0, 2), {0: "stopped", 2: "bad broker settings, or the workers extra is not "
                                            "installed"})),
    "sendcode": CommandInfo(
        "sendcode", "sendcode", "Send a Sendcode.exe service control code (Q168682), refused before sending if the "
        "article's table forbids it.", ((0, 1, 2), {1: "the server could not be reached, or its Service Control "
                                                       "Manager refused the code"}), logged=True),
    "preflight": CommandInfo(
        "preflight", "preflight", "Check Q166765's requirements (PCM service running and current, polling interval, "
        "silent mandatory package, recent backup).", ((0, 1, 2, 3, 6), {0: "every check passed", 3: "a check failed"}),
        logged=True),
    "scan": CommandInfo(
        "catalog", "scan", "Which hotfixes of the catalogue each site has: installed, missing, partial, superseded, "
        "not applicable or cannot tell, with the files that decide, and the order to apply what is missing.",
        ((0, 1, 2, 3), {0: "every hotfix of the catalogue is installed, superseded or not applicable",
                        1: "a site could not be reached (the others are scanned)",
                        3: "a hotfix is missing or partial on some site"}), logged=True, fleet=True),
    "validate": CommandInfo(
        "validate", "validate", "Check playbooks, manifests, inventories and saved plans offline, with the messages "
        "plan and apply give (no site read).",
        ((0, 2), {0: "every file is valid", 2: "a file has errors (each printed with its file:line)"})),
    "version": CommandInfo("version", "version_cmd", "Print deployer's version.", hidden=True),
    "lab": CommandInfo("lab", "app", "Lab sites on the embedded mock target, for trying deployer without a server.",
                       subs={"init": ((0, 2), {})}),
    "manifest": CommandInfo("kb", "manifest_app", "Manifests: a KB article's file attribute table as data.",
                            subs={"from-kb": ((0, 2, 3), {0: "every row was read exactly",
                                                          2: "an article could not be read",
                                                          3: "some rows need review (they are written, flagged)"})}),
    "kb": CommandInfo("kb", "kb_app", "KB articles: their file attribute tables as manifests, their procedures as "
                      "draft playbooks.", subs={"import": _KB_EXITS}),
    "inventory": CommandInfo("clients", "inventory_app", "Inventory entries from the lists operators already keep.",
                             subs={"from-rservice": ((0, 2), {}), "show": ((0, 2), {})}),
    "pcm": CommandInfo("pcm", "app", "PCM instruction records (Q123499): PCMDUMP's text output and deployer's YAML "
                       "form.", subs={"dump": ((0, 2), {}), "convert": ((0, 2), {}),
                                      "lint": ((0, 2, 3), {0: "nothing flagged", 3: "something was flagged"})}),
    "catalog": CommandInfo("catalog", "app", "The hotfix catalogue: a folder of manifests, and which hotfix "
                           "supersedes which.", subs={"list": _CATALOG, "graph": _CATALOG}),
}


def exits() -> dict[str, Exits]:
    """Every command's exit codes by its path (`plan`, `kb import`), for its help."""
    out: dict[str, Exits] = {}
    for name, info in COMMANDS.items():
        if info.exits is not None:
            out[name] = info.exits
        out.update({f"{name} {sub}": codes for sub, codes in info.subs.items()})
    return out


def logged(name: str) -> bool:
    info = COMMANDS.get(name)
    return bool(info and info.logged)


def load(name: str) -> Any:
    """The command's typer object (a function or a typer.Typer): its module is imported now."""
    info = COMMANDS[name]
    return getattr(importlib.import_module(f"{__name__}.{info.module}"), info.attr)
