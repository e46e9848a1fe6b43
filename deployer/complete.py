"""The `deployer` entry point, and shell completion of values without loading the CLI.

A Tab runs a whole process. Importing the CLI (typer, rich, pydantic) takes most of half a
second, so the values an operator completes most (site and group names, run ids, fleet run
ids, sendcode services and codes) are answered here, with only yaml and two small tables
imported, in the format typer's completion scripts read (bash, zsh, fish, PowerShell). Any
other completion (commands, options) falls through to typer. Completion never prints an
error into the prompt: a problem yields no values.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

VAR = "_DEPLOYER_COMPLETE"
# options that take a value, for telling positional arguments apart
VALUED = {"--site", "-s", "--group", "-g", "--inventory", "-i", "--output", "-o", "--out", "--format", "-f",
          "--server", "--forks", "--max-per-host", "--batch", "--canary", "--max-fail", "--resume", "--fleet-dir",
          "--report", "--broker", "--worker-wait", "--keep", "--older-than", "--log", "--playbook", "-p",
          "--playbook-dir", "--pcm-record", "--request", "--now", "--to", "--region", "-r", "--concurrency", "-c"}


def main() -> None:
    """`deployer`: a completion request this module can answer, else the CLI."""
    if os.environ.get(VAR) and answer(os.environ):
        return
    from .cli import main as cli_main

    cli_main()


def _split(text: str) -> list[str]:
    lex = shlex.shlex(text, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""
    out: list[str] = []
    try:
        for token in lex:
            out.append(token)
    except ValueError:  # an unclosed quote: the rest is the word being typed
        out.append(lex.token)
    return out


def _words(env: os._Environ | dict, shell: str) -> tuple[list[str], str] | None:
    """The words before the one being completed, and that word (as typer's classes read them)."""
    if shell == "bash":
        words = _split(env.get("COMP_WORDS", ""))
        cword = int(env.get("COMP_CWORD", "0") or 0)
        return words[1:cword], (words[cword] if cword < len(words) else "")
    args_text = env.get("_TYPER_COMPLETE_ARGS", "")
    words = _split(args_text)[1:]
    if shell in ("powershell", "pwsh"):
        incomplete = env.get("_TYPER_COMPLETE_WORD_TO_COMPLETE", "")
        return (words[:-1] if incomplete else words), incomplete
    if shell in ("zsh", "fish"):
        if words and not args_text.endswith(" "):
            return words[:-1], words[-1]
        return words, ""
    return None


def _option_value(args: list[str], *names: str) -> str | None:
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "="):
                return a[len(n) + 1:]
    return None


def _positionals(args: list[str]) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in VALUED:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def values(args: list[str], incomplete: str) -> list[tuple[str, str]] | None:
    """(value, help) pairs for the word being completed, or None: not one of ours."""
    positionals = _positionals(args)
    command = positionals[:2] if positionals[:1] in (["lab"], ["inventory"], ["pcm"], ["kb"]) else positionals[:1]
    rest = positionals[len(command):]
    prev = args[-1] if args else ""
    inventory = _option_value(args, "--inventory", "-i")
    if prev in ("--site", "-s", "--group", "-g"):
        return [(n, "") for n in site_names(inventory, groups=prev in ("--group", "-g"))]
    if prev == "--resume":
        return fleet_ids(_option_value(args, "--fleet-dir"))
    if prev in VALUED or incomplete.startswith("-"):
        return None
    if command == ["lab", "init"] and not rest:
        return [(n, "") for n in site_names(inventory)]
    if command == ["rollback"] and not rest:
        return run_ids(inventory, _option_value(args, "--site", "-s"))
    if command == ["sendcode"]:
        from .sms import services as sms

        if not rest:
            return [(s.name, s.display_name) for s in sms.SMS_SERVICES.values() if s.accepts]
        if len(rest) == 1:
            info = sms.SMS_SERVICES.get(rest[0].upper())
            return [(str(c), sms.describe_code(c)) for c in sorted(info.accepts)] if info else []
    return None


def answer(env: os._Environ | dict) -> bool:
    """Print the completion in the shell's format; False when typer must answer."""
    shell = env.get(VAR, "").removeprefix("complete_")
    try:
        parsed = _words(env, shell)
        found = values(*parsed) if parsed is not None else None
    except Exception:  # noqa: BLE001 - see the module docstring: no error in the prompt
        found = []
    if found is None:
        return False
    incomplete = parsed[1] if parsed else ""
    found = [(v, h) for v, h in found if v.casefold().startswith(incomplete.casefold())]
    out = sys.stdout
    if shell == "bash":
        out.write("\n".join(v for v, _ in found) + ("\n" if found else ""))
    elif shell == "zsh":
        def esc(s: str) -> str:
            return s.replace('"', '""').replace("'", "''").replace("$", "\\$").replace("`", "\\`").replace(":", r"\\:")

        items = "\n".join(f'"{esc(v)}":"{esc(h)}"' if h else f'"{esc(v)}"' for v, h in found)
        out.write(f"_arguments '*: :(({items}))'" if found else "_files")
    elif shell == "fish":
        if env.get("_TYPER_COMPLETE_FISH_ACTION") == "is-args":
            sys.exit(0 if found else 1)
        out.write("\n".join(f"{v}\t{' '.join(h.split())}" if h else v for v, h in found))
    else:
        out.write("\n".join(f"{v}:::{h or ' '}" for v, h in found))
    out.flush()
    return True


# --- the values ------------------------------------------------------------------------------------


def _inventory_data(explicit: str | None) -> tuple[Path, dict]:
    """The inventory as plain data, found as inventory_source finds it (--inventory, then
    $DEPLOYER_INVENTORY, then ./sites.yaml), read with yaml alone: yamlsrc's checks cost
    imports (dataclasses, inspect) a Tab cannot afford, and any problem means no values."""
    import yaml

    env = os.environ.get("DEPLOYER_INVENTORY", "").strip()
    path = Path(explicit).expanduser() if explicit else Path(env).expanduser() if env else Path("sites.yaml")
    if path.stat().st_size > 1 << 20:
        return path, {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=loader)  # noqa: S506 - a safe loader
    return path, data if isinstance(data, dict) else {}


def site_names(explicit: str | None, groups: bool = False) -> list[str]:
    """The inventory's site names, ranges written out (S[001:030]: S001 ... S030); and its
    group names for --group (for --site too: the CLI has always offered both there)."""
    from .model.ranges import expand, has_range

    try:
        _, data = _inventory_data(explicit)
    except Exception:  # noqa: BLE001
        return []
    names: list[str] = []
    sites, group_map = data.get("sites"), data.get("groups")
    if isinstance(sites, dict) and not groups:
        for key in sites:
            try:
                names.extend(expand(str(key)) if has_range(str(key)) else [str(key)])
            except ValueError:
                names.append(str(key))
    if isinstance(group_map, dict):
        names.extend(str(k) for k in group_map)
    return names


def run_ids(explicit: str | None, site: str | None) -> list[tuple[str, str]]:
    """The runs journaled on a mock site's site server, newest first. A real server is not
    asked: a Tab must not open an SMB or SSH session."""
    from .model.ranges import expand, has_range

    if not site:
        return []
    path, data = _inventory_data(explicit)
    sites = data.get("sites") if isinstance(data.get("sites"), dict) else {}
    entry, index = None, 0
    for key, value in sites.items():
        names = expand(str(key)) if has_range(str(key)) else [str(key)]
        for i, n in enumerate(names):
            if n.casefold() == site.casefold():
                entry, index, site = value, i, n
    mock = entry.get("mock") if isinstance(entry, dict) else None
    servers = entry.get("servers") if isinstance(entry, dict) else None
    if not isinstance(mock, dict) or not isinstance(servers, dict):
        return []

    def in_step(text: str) -> str:
        return expand(text)[index] if has_range(text) else text

    default_root = (data.get("defaults") or {}).get("server", {}).get("sms_root", "C:\\SMS") \
        if isinstance(data.get("defaults"), dict) else "C:\\SMS"
    for name, server in servers.items():
        server = server or {}
        if server.get("role") == "site_server" or (server.get("role") is None and len(servers) == 1):
            root = in_step(str(server.get("sms_root") or default_root))
            drive, _, rest = root.partition(":")
            folder = path.parent / in_step(str(mock.get("path", ""))) / in_step(str(name)) / drive
            folder = folder.joinpath(*[p for p in rest.split("\\") if p]) / ".deployer" / "runs"
            runs = sorted((p.name for p in folder.iterdir() if p.is_dir()), reverse=True) if folder.is_dir() else []
            return [(r, "") for r in runs]
    return []


def fleet_ids(folder: str | None) -> list[tuple[str, str]]:
    """Fleet runs in the fleet journal folder, newest first, with their command."""
    base = Path(folder) if folder else Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") \
        / "deployer" / "fleets"
    if not base.is_dir():
        return []
    files = sorted(base.glob("*.json"), key=lambda p: p.name, reverse=True)
    return [(p.stem, "") for p in files]
