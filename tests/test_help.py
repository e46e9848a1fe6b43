"""`--help` as an operator reads it: `-h` everywhere, each command's own exit codes (only those it
can return), value names instead of Python types, and command summaries given whole."""

from __future__ import annotations

import re

import pytest

from conftest import run_cli
from deployer import cli
from deployer.commands import helpfmt
from deployer.errors import EXIT_MEANINGS


def _tree() -> list[tuple[str, object]]:
    """Every command and group of the CLI, as click builds it: (path, command)."""
    import typer.main

    root = typer.main.get_command(cli.app)
    out: list[tuple[str, object]] = [("", root)]

    def walk(group, prefix: str) -> None:
        for name, cmd in group.commands.items():
            if cmd.hidden:
                continue
            out.append((f"{prefix}{name}", cmd))
            if isinstance(getattr(cmd, "commands", None), dict):
                walk(cmd, f"{prefix}{name} ")

    walk(root, "")
    return out


PATHS = [p for p, _ in _tree()]
COMMANDS = [p for p, c in _tree() if not isinstance(getattr(c, "commands", None), dict)]


@pytest.mark.parametrize("path", PATHS)
def test_dash_h_is_help_everywhere_and_reads_as_words(path: str, tmp_path):
    words = path.split()
    short = run_cli(*words, "-h", cwd=tmp_path)
    assert short.code == 0 and short.out.startswith("Usage: deployer"), short.text
    assert short.out == run_cli(*words, "--help", cwd=tmp_path).out
    text = short.out
    # no Python types or doubled brackets
    assert not re.search(r"<(str|int|float|path|bool|list\[[^>]*\])>|list\[|\[\[", text), text


@pytest.mark.parametrize("path", [p for p, c in _tree() if isinstance(getattr(c, "commands", None), dict)])
def test_command_summaries_are_given_whole(path: str, tmp_path):
    text = run_cli(*path.split(), "-h", cwd=tmp_path).out
    listing = text.split("Commands:", 1)[1]
    group = dict(_tree())[path]
    for name, cmd in group.commands.items():
        if cmd.hidden:
            continue
        first = " ".join((cmd.help or "").split("\n\n")[0].split())
        first = first.split(". ")[0].rstrip(".")
        flowed = re.sub(r"-\s+", "-", " ".join(listing.split()))  # a line broken after a hyphen
        assert first and first in flowed, (name, first)
    assert not re.search(r"\w\.\.\.\n", listing), listing  # nothing cut short


@pytest.mark.parametrize("path", COMMANDS)
def test_each_command_lists_only_its_own_exit_codes(path: str, tmp_path):
    assert path in helpfmt.EXITS, f"`deployer {path}`: say which exit codes it returns in helpfmt.EXITS"
    text = " ".join(run_cli(*path.split(), "-h", cwd=tmp_path).out.split())
    line = text[text.index("Exit codes: "):]
    listed = [int(c) for c in re.findall(r"(?:Exit codes: |; )(\d+) ", line)]
    assert listed == list(helpfmt.EXITS[path][0])
    assert all(c in EXIT_MEANINGS or c == 130 for c in listed)


def test_the_codes_are_the_ones_each_command_can_return(tmp_path):
    def codes(path: str) -> str:
        text = " ".join(run_cli(*path.split(), "-h", cwd=tmp_path).out.split())
        return text[text.index("Exit codes: "):]

    assert "; 5 with --detailed-exitcode" in codes("plan") and " 3 " not in codes("plan")
    assert "3 verification found files" in codes("verify") and "; 4 " not in codes("verify")
    assert codes("schema") == "Exit codes: 0 done (or nothing to do); 2 bad input or usage (credentials and host " \
                              "keys included), nothing touched."
    assert "3 some rows need review" in codes("kb import")
    assert "3 something was flagged" in codes("pcm lint")
    assert "130 interrupted" in codes("apply") and "130" not in codes("verify")
