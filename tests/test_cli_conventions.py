"""The CLI behaves like the tools operators know: --version, shell completion of site names,
--no-color and NO_COLOR, -o/--output everywhere, `lab init --site`, and an inventory found
through --inventory, $DEPLOYER_INVENTORY or ./sites.yaml (in that order of precedence)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Workspace, run_cli, run_subprocess
from deployer import __version__
from test_terminal import Terminal

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m")


def _complete(words: str, cwd: Path, **env: str) -> list[str]:
    """What bash completion offers after `words` (as typer's bash script asks for it)."""
    parts = words.split(" ")
    proc = subprocess.run([sys.executable, "-m", "deployer"], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "_DEPLOYER_COMPLETE": "complete_bash", "COMP_WORDS": words,
                               "COMP_CWORD": str(len(parts) - 1), **env})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout.split()


def test_version_option(tmp_path: Path):
    r = run_subprocess("--version", cwd=tmp_path)
    assert (r.code, r.out) == (0, f"deployer {__version__}\n")
    assert run_subprocess("version", cwd=tmp_path).out == f"{__version__}\n"  # the old subcommand still answers


def test_completion_offers_the_inventory_site_names(ws: Workspace, tmp_path: Path):
    inv = ws.inventory.read_text().replace("sites:\n", "sites:\n  EAST:\n    code: EST\n    mock: {path: lab/EAST}\n"
                                           "    servers:\n      EASTSRV: {role: site_server, platform: x86}\n", 1)
    ws.inventory.write_text(inv)
    assert _complete("deployer runs --site ", ws.path) == ["EAST", "DEMO"]
    assert _complete("deployer apply x.yaml --site D", ws.path) == ["DEMO"]
    assert _complete("deployer lab init E", ws.path) == ["EAST"]
    # the inventory is found as the command would find it: -i, then $DEPLOYER_INVENTORY
    assert _complete(f"deployer verify m.yaml -i {ws.inventory} -s ", tmp_path) == ["EAST", "DEMO"]
    assert _complete("deployer rollback --site ", tmp_path, DEPLOYER_INVENTORY=str(ws.inventory)) == ["EAST", "DEMO"]
    # no inventory, or a broken one: nothing offered, nothing printed into the prompt
    assert _complete("deployer runs --site ", tmp_path) == []
    (tmp_path / "sites.yaml").write_text("sites: [\n")
    assert _complete("deployer runs --site ", tmp_path) == []


def test_completion_scripts_are_shown_and_installed(tmp_path: Path):
    # Typer takes the shell from the process tree unless told not to: this test names it, so
    # that it passes whatever runs it (a bash, or a CI runner with no shell above it)
    named = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    r = run_subprocess("--show-completion", "bash", cwd=tmp_path, env=named)
    assert r.code == 0 and "_DEPLOYER_COMPLETE=complete_bash" in r.out
    home = tmp_path / "home"
    home.mkdir()
    r = run_subprocess("--install-completion", "bash", cwd=tmp_path, env={"HOME": str(home), **named})
    assert r.code == 0, r.text
    scripts = list(home.rglob("*deployer*"))
    assert scripts and "_DEPLOYER_COMPLETE" in scripts[0].read_text()
    assert str(scripts[0].name) in (home / ".bashrc").read_text()


def _verify_on_a_terminal(ws: Workspace, *args: str) -> str:
    t = Terminal(*args, "verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, cwd=ws.path)
    assert t.finish() == 3
    return t.seen


def test_colour_on_a_terminal_unless_no_color(ws: Workspace, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert COLOUR.search(_verify_on_a_terminal(ws))  # the unpatched site's files are red
    plain = _verify_on_a_terminal(ws, "--no-color")
    assert "older" in plain and not COLOUR.search(plain)
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _verify_on_a_terminal(ws)
    assert "older" in plain and not COLOUR.search(plain)


@pytest.mark.parametrize("command", [["plan"], ["apply"], ["verify"], ["schema"], ["manifest", "from-kb"]])
def test_every_command_that_writes_a_file_spells_it_dash_o_output(command: list[str]):
    r = run_cli(*command, "--help")
    assert r.code == 0
    assert re.search(r"-o,?\s+--output|--output\s+-o", r.out.replace("\n", " ")), r.out
    assert "--out " not in r.out  # the old spelling is hidden


def test_plan_still_takes_the_old_out_spelling(ws: Workspace):
    for flag, name in (("--out", "a.json"), ("--output", "b.json"), ("-o", "c.json")):
        r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, flag, ws.path / name)
        assert r.code == 0 and (ws.path / name).is_file(), r.text


def test_lab_init_takes_site_like_every_other_command(ws: Workspace):
    r = ws.cli("lab", "init", "--site", "DEMO", "--force", "-i", ws.inventory)
    assert r.code == 0 and "Created mock site DEMO" in r.out, r.text
    r = ws.cli("lab", "init", "DEMO", "-i", ws.inventory)
    assert r.code == 0 and "exists" in r.out, r.text
    r = ws.cli("lab", "init", "DEMO", "--site", "OTHER", "-i", ws.inventory)
    assert r.code == 2 and "two sites named" in r.err


def test_inventory_precedence_and_where_it_came_from(ws: Workspace, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = tmp_path / "other.yaml"
    other.write_text(ws.inventory.read_text().replace("DEMO:", "OTHERSITE:", 1).replace("lab/DEMO", str(ws.site)))
    # ./sites.yaml when nothing else is said
    assert ws.cli("runs", "--site", "DEMO").code == 0
    # $DEPLOYER_INVENTORY over ./sites.yaml
    monkeypatch.setenv("DEPLOYER_INVENTORY", str(other))
    r = ws.cli("runs", "--site", "DEMO")
    assert r.code == 2 and "no site named 'DEMO'" in r.err and str(other) in r.err
    assert run_cli("runs", "--site", "OTHERSITE", cwd=elsewhere).code == 0
    # --inventory over both
    assert ws.cli("runs", "--site", "DEMO", "--inventory", ws.inventory).code == 0
    # errors say which source named a missing inventory
    monkeypatch.setenv("DEPLOYER_INVENTORY", str(tmp_path / "gone.yaml"))
    r = run_cli("runs", "--site", "X", cwd=elsewhere)
    assert r.code == 2 and "gone.yaml: the inventory named by $DEPLOYER_INVENTORY does not exist" in r.err
    r = run_cli("runs", "--site", "X", "-i", tmp_path / "nope.yaml", cwd=elsewhere)
    assert r.code == 2 and "nope.yaml: the inventory named by --inventory does not exist" in r.err
    monkeypatch.delenv("DEPLOYER_INVENTORY")
    r = run_cli("runs", "--site", "X", cwd=elsewhere)
    assert r.code == 2 and "no inventory" in r.err and "DEPLOYER_INVENTORY" in r.err and "--inventory" in r.err
    assert "Traceback" not in r.text
