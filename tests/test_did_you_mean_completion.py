""""Did you mean" for sites, groups, keys and services; shell completion of run ids, fleet run
ids, sendcode services and codes, answered without loading the CLI (imports counted, not timed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Workspace, copy_project, run_cli
from deployer.simulator.fleet_lab import write_fleet_inventory


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- did you mean -------------------------------------------------------------------------------------


def test_a_mistyped_site_or_group_gets_the_closest_names(ws: Workspace):
    r = ws.cli("plan", ws.playbook, "--site", "DEMOO")
    assert r.code == 2 and "no site named 'DEMOO' in the inventory (did you mean 'DEMO'?); sites: DEMO" in r.err
    r = ws.cli("runs", "--site", "demo1")
    assert r.code == 2 and "(did you mean 'DEMO'?)" in r.err
    r = ws.cli("plan", ws.playbook, "--site", "XYZZY")
    assert r.code == 2 and "did you mean" not in r.err  # nothing close: no guess


def test_a_long_site_list_is_cut_and_says_where_all_are(tmp_path: Path):
    inv = write_fleet_inventory(tmp_path / "sites.yaml", 30, groups={"east": ["SITE00*"], "west": ["SITE02*"]})
    r = run_cli("runs", "-i", inv, "--site", "SITE0031")
    assert r.code == 2
    assert "in the inventory (did you mean 'SITE003'" in r.err
    listed = r.err.split("; ", 1)[1]
    assert listed.startswith("30 sites: SITE001, SITE002,") and "SITE013" not in listed
    assert listed.rstrip().endswith("SITE012, ... (`deployer inventory show` lists them all)")
    r = run_cli("runs", "-i", inv, "--group", "easst")
    assert r.code == 2 and "no group named 'easst' in the inventory (did you mean 'east'?); groups: east, west" in r.err


@pytest.mark.parametrize("kind, text, words", [
    ("playbook", "kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n  - stopp: [SMS_EXECUTIVE]\n",
     "unknown step 'stopp' (did you mean 'stop'?)"),
    ("playbook", "kb: Q241656\nmanfest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n  - stop: [SMS_EXECUTIVE]\n",
     "unknown key 'manfest' (did you mean 'manifest'?)"),
    ("playbook", "kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n"
                 "  - replace: {files: [Base.dll], int: 'x'}\n", "unknown key 'int' (did you mean 'into'?)"),
    ("manifest", "kb: Q241656\nfiles:\n  - {date: 9/10/99, time: 7:00PM, size: 524KB, nmae: Base.dll, platform: I386}\n",
     "unknown key 'nmae' (did you mean 'name'?)"),
    ("inventory", "sites:\n  A:\n    code: AAA\n    timezon: UTC\n    mock: {path: lab/A}\n"
                  "    servers:\n      ASRV: {role: site_server, platform: x86}\n",
     "unknown key 'timezon' (did you mean 'timezone'?)"),
    ("inventory", "sites:\n  A:\n    code: AAA\n    mock: {path: lab/A}\n"
                  "    servers:\n      ASRV: {role: site_server, platfrom: x86}\n",
     "unknown key 'platfrom' (did you mean 'platform'?)"),
    ("playbook", "kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n"
                 "  - sendcode: {service: SMS_EXECUTIV, code: 128}\n", "(did you mean 'SMS_EXECUTIVE'?)"),
])
def test_a_mistyped_key_gets_the_closest_key(ws: Workspace, kind: str, text: str, words: str):
    path = _write(ws.path / ("playbooks" if kind == "playbook" else "manifests") / "typo.yaml", text)
    r = ws.cli("validate", path)
    assert r.code == 2 and words in r.err, r.err


def test_sendcode_names_the_closest_service(ws: Workspace):
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_EXECUTIV", "128")
    assert r.code == 2 and "(did you mean 'SMS_EXECUTIVE'?)" in r.err


def test_a_mistyped_command_gets_the_closest_command(tmp_path: Path):
    r = run_cli("aply", cwd=tmp_path)
    assert r.code == 2 and "apply" in r.err and "Did you mean" in r.err


# --- completion -------------------------------------------------------------------------------------


def _complete(words: str, cwd: Path, shell: str = "bash", **env: str) -> subprocess.CompletedProcess:
    parts = words.split(" ")
    extra = {"COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)} if shell == "bash" else \
        {"_TYPER_COMPLETE_ARGS": words}
    if shell in ("powershell", "pwsh"):
        extra["_TYPER_COMPLETE_WORD_TO_COMPLETE"] = parts[-1]
    return subprocess.run([sys.executable, "-m", "deployer"], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "_DEPLOYER_COMPLETE": f"complete_{shell}", **extra, **env})


def _offered(words: str, cwd: Path, **env: str) -> list[str]:
    p = _complete(words, cwd, **env)
    assert p.returncode == 0 and not p.stderr, p.stderr
    return p.stdout.split()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = copy_project(tmp_path_factory.mktemp("complete-fleet"))
    write_fleet_inventory(base / "sites.yaml", 2)
    assert run_cli("lab", "init", "--all", "-i", base / "sites.yaml", cwd=base).code == 0
    r = run_cli("apply", base / "playbooks" / "q241656.yaml", "--all", "--yes", "--fleet-dir", base / "fleets",
                cwd=base)
    assert r.code == 0, r.text
    r = run_cli("rollback", "--site", "SITE001", "--yes", cwd=base)
    assert r.code == 0, r.text
    r = run_cli("apply", base / "playbooks" / "q241656.yaml", "--site", "SITE001", "--yes", cwd=base)
    assert r.code == 0, r.text
    return base


def test_rollback_completes_the_sites_run_ids_newest_first(fleet: Path):
    runs = json.loads(run_cli("runs", "--site", "SITE001", "-f", "json", cwd=fleet).out)
    ids = sorted((r["run"] for r in runs), reverse=True)
    assert len(ids) == 2
    assert _offered("deployer rollback --site SITE001 ", fleet) == ids
    assert _offered(f"deployer rollback --site SITE001 {ids[0][:12]}", fleet) == [i for i in ids if
                                                                                  i.startswith(ids[0][:12])]
    assert _offered("deployer rollback --site NOPE ", fleet) == []
    assert _offered("deployer rollback ", fleet) == []  # no site yet: nothing to list


def test_resume_completes_the_fleet_run_ids(fleet: Path):
    journals = sorted(p.stem for p in (fleet / "fleets").glob("*.json"))
    assert journals
    assert _offered(f"deployer apply --fleet-dir {fleet / 'fleets'} --resume ", fleet) == sorted(journals, reverse=True)
    assert _offered("deployer apply --resume ", fleet, XDG_STATE_HOME=str(fleet / "none")) == []


def test_sendcode_completes_services_then_the_codes_each_accepts(ws: Workspace):
    services = _offered("deployer sendcode --site DEMO ", ws.path)
    assert "SMS_SITE_CONFIG_MANAGER" in services and "SMS_EXECUTIVE" in services
    assert _offered("deployer sendcode --site DEMO SMS_SITE", ws.path) == ["SMS_SITE_CONFIG_MANAGER"]
    assert _offered("deployer sendcode --site DEMO SMS_SITE_CONFIG_MANAGER 19", ws.path) == \
        ["192", "193", "194", "195", "196"]
    assert _offered("deployer sendcode --site DEMO SMS_EXECUTIVE ", ws.path) == ["128", "129", "130", "132"]
    assert _offered("deployer sendcode --site D", ws.path) == ["DEMO"]  # --site completes here too


def test_ranged_site_names_are_completed_written_out(tmp_path: Path):
    _write(tmp_path / "sites.yaml", "sites:\n  S[01:03]:\n    code: 'S[01:03]'\n    mock: {path: 'lab/S[01:03]'}\n"
                                    "    servers:\n      SRV: {role: site_server, platform: x86}\n"
                                    "groups:\n  g1: ['S0*']\n")
    assert _offered("deployer plan x.yaml --site ", tmp_path) == ["S01", "S02", "S03", "g1"]
    assert _offered("deployer plan x.yaml --group ", tmp_path) == ["g1"]


@pytest.mark.parametrize("shell, expected", [
    ("zsh", "_arguments '*: :((\"192\":\"normal watchdog cycle\"\n\"193\":"),
    ("fish", "192\tnormal watchdog cycle\n193\t"),
    ("powershell", "192:::normal watchdog cycle\n193:::"),
])
def test_every_shell_gets_its_own_format(ws: Workspace, shell: str, expected: str):
    p = _complete("deployer sendcode --site DEMO SMS_SITE_CONFIG_MANAGER 19", ws.path, shell,
                  _TYPER_COMPLETE_FISH_ACTION="get-args")
    assert p.returncode == 0 and p.stdout.startswith(expected), p.stdout


def test_a_value_tab_loads_neither_typer_nor_pydantic_and_other_tabs_still_work(ws: Workspace):
    code = ("import os, sys, io, contextlib\n"
            "from deployer import complete\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    assert complete.answer(os.environ)\n"
            "heavy = [m for m in ('typer', 'click', 'pydantic', 'rich', 'jinja2', 'deployer.cli') if m in sys.modules]\n"
            "print(len([m for m in sys.modules if m.startswith('deployer')]), heavy, out.getvalue().split())\n")
    for words in ("deployer rollback --site DEMO ", "deployer sendcode --site DEMO ", "deployer apply --resume ",
                  "deployer runs --site D"):
        env = {**os.environ, "_DEPLOYER_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split(" ")) - 1)}
        p = subprocess.run([sys.executable, "-c", code], cwd=ws.path, capture_output=True, text=True, env=env,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        count, heavy, _ = p.stdout.split(" ", 2)
        assert heavy == "[]" and int(count) <= 6, p.stdout
    # commands and options are typer's to complete, as before
    assert "apply" in _offered("deployer ap", ws.path)
    assert "--detailed-exitcode" in _offered("deployer plan --det", ws.path)


def test_servers_hosts_and_manifest_files_get_the_closest_names(ws: Workspace):
    r = ws.cli("sendcode", "--site", "DEMO", "--server", "DEMOSVR", "SMS_EXECUTIVE", "128")
    assert r.code == 2 and "no server 'DEMOSVR' (did you mean 'DEMOSRV'?)" in r.err, r.err
    book = _write(ws.path / "playbooks" / "typo.yaml", ws.playbook.read_text().replace(
        "  - stop: [SMS_PACKAGE_COMMAND_MANAGER_NT, SMS_EXECUTIVE]",
        "  - stop: [SMS_PACKAGE_COMMAND_MANAGER_NT, SMS_EXECUTIVE]\n  - {start: [SMS_EXECUTIVE], servers: [DEMOLOG]}", 1))
    r = ws.cli("plan", book, "--site", "DEMO")
    assert r.code == 2 and "no server 'DEMOLOG' in site DEMO (did you mean 'DEMOLOG1'?)" in r.err, r.err
    book.write_text(ws.playbook.read_text().replace("files: [Pcmsvc32.exe, Base.dll]", "files: [Pcmsvc23.exe, Base.dll]"))
    r = ws.cli("validate", book)
    assert r.code == 2 and "Pcmsvc23.exe is not in the manifest q241656.yaml (did you mean 'Pcmsvc32.exe'?)" in r.err
    book.write_text(ws.playbook.read_text().replace("update_pcm_hosts: {files: [Pcmsvc32.exe],",
                                                    "update_pcm_hosts: {hosts: [DEMOWKS2], files: [Pcmsvc32.exe],"))
    r = ws.cli("plan", book, "--site", "DEMO")
    assert r.code == 2 and "no PCM service host 'DEMOWKS2' in site DEMO (did you mean 'DEMOWKS1'?)" in r.err, r.err


def test_inventory_show_takes_the_shared_site_options_with_their_completion(tmp_path: Path):
    """`inventory show` declared its own --site/--group/--inventory: no completion, its own help."""
    base = copy_project(tmp_path)
    write_fleet_inventory(base / "sites.yaml", 3)
    assert _offered("deployer inventory show --site SITE00", base) == ["SITE001", "SITE002", "SITE003"]
    assert _offered("deployer inventory show -s SITE002", base) == ["SITE002"]
    shown = run_cli("inventory", "show", "--help", cwd=base).out
    applied = run_cli("apply", "--help", cwd=base).out
    for option in ("-i, --inventory FILE", "-g, --group NAME"):
        line = next(ln for ln in shown.splitlines() if option in ln)
        assert line.split(option)[1].split()[:3] == next(ln for ln in applied.splitlines()
                                                         if option in ln).split(option)[1].split()[:3], option
