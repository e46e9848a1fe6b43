"""The command registry (deployer/commands/__init__.py) is the one list of commands: what --help
lists without importing a command must be what each command says of itself once loaded, and what
the registry says of a command (one site or several) must be what its options declare."""

from __future__ import annotations

import pytest
import typer.main

from conftest import Workspace
from deployer import cli, commands


def _root():
    return typer.main.get_command(cli.app)


def _leaves():
    """(path, click command) of every command, groups' sub-commands included."""
    out = []

    def walk(group, prefix: str) -> None:
        for name in group.list_commands(None):
            cmd = group.get_command(None, name)
            if isinstance(getattr(cmd, "commands", None), dict):
                walk(cmd, f"{prefix}{name} ")
            else:
                out.append((f"{prefix}{name}", cmd))

    walk(_root(), "")
    return out


@pytest.mark.parametrize("name", list(commands.COMMANDS))
def test_the_listed_summary_is_the_commands_own(name: str):
    info, cmd = commands.COMMANDS[name], _root().get_command(None, name)
    assert cmd.get_short_help_str(limit=10_000) == info.summary
    assert cmd.hidden == info.hidden
    assert isinstance(getattr(cmd, "commands", None), dict) == bool(info.subs)
    if info.subs:
        assert sorted(cmd.commands) == sorted(info.subs)


def test_the_registry_says_which_commands_take_several_sites_as_their_options_do():
    for path, cmd in _leaves():
        site = [p for p in cmd.params if "--site" in p.opts]
        info = commands.COMMANDS.get(path)
        if info is not None:  # a top-level command: its flag is what the one-site refusal names
            assert info.fleet == bool(site and site[0].multiple), path


@pytest.mark.parametrize("args", [
    ("inventory", "show", "--site", "DEMO", "--site", "DEMO"),
    ("scan", "--site", "DEMO", "--site", "DEMO"),
])
def test_a_command_that_takes_several_sites_is_not_refused_a_repeated_site(ws: Workspace, args):
    # the selection itself refuses the same site twice: proof that the repeat reached it
    r = ws.cli(*args, "-i", ws.inventory)
    assert r.code == 2 and "--site is given more than once for DEMO; name each site once" in r.err, r.text


@pytest.mark.parametrize("args, path", [
    (("sendcode", "--site", "DEMO", "-sDEMO", "SMS_EXECUTIVE", "128"), "sendcode"),
    (("lab", "init", "--site=DEMO", "--site", "DEMO"), "lab init"),
    (("prune", "-s", "DEMO", "--site", "DEMO", "--keep", "1", "--yes"), "prune"),
])
def test_a_one_site_command_refuses_a_repeated_site_naming_itself(ws: Workspace, args, path):
    before = ws.state()
    r = ws.cli(*args, "-i", ws.inventory)
    assert r.code == 2 and f"--site is given more than once; `deployer {path}` works on one site" in r.err, r.text
    assert "scan take several" in r.err
    assert ws.state() == before
