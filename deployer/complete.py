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
    prev = args[-1] if args else ""
    inventory = _option_value(args, "--inventory", "-i")
    # each value's reader is imported when asked for: a Tab is a whole process (see above)
    if prev in ("--site", "-s", "--group", "-g"):
        from .model.completion import site_names

        return [(n, "") for n in site_names(inventory, groups=prev in ("--group", "-g"))]
    if prev == "--resume":
        from .model.completion import fleet_ids

        return fleet_ids(_option_value(args, "--fleet-dir"))
    if prev in VALUED or incomplete.startswith("-"):
        return None
    # the words typed so far name the command (a group's sub-command included): no list of groups needed
    if positionals == ["lab", "init"]:
        from .model.completion import site_names

        return [(n, "") for n in site_names(inventory)]
    if positionals == ["rollback"]:
        from .model.completion import run_ids

        return run_ids(inventory, _option_value(args, "--site", "-s"))
    command, rest = positionals[:1], positionals[1:]
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
