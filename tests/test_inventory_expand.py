"""Inventories at fleet size: `defaults:`, groups with fields, and name ranges (S[001:030]),
written out before the models see them; errors still at the line the value was written on;
`deployer inventory show` prints the expansion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, copy_project, run_cli
from deployer import schema
from deployer.model.inventory import load_inventory
from deployer.model.inventory_expand import expand
from deployer.model.yamlsrc import parse_yaml

COMPACT = r"""defaults:
  timezone: America/Los_Angeles
  platforms: [x86, alpha]
  vars: {owner: ops}
  server: {platform: x86, sms_root: 'C:\SMS'}
sites:
  S[001:030]:
    code: F[01:30]
    mock: {path: 'lab/S[001:030]'}
    servers:
      SRV[001:030]: {role: site_server}
      LOG: {role: logon_server, sms_root: 'D:\SMS'}
  EXTRA:
    code: EXT
    timezone: UTC
    mock: {path: lab/EXTRA}
    servers:
      EXSRV: {role: site_server, sms_root: 'D:\SMS', platform: alpha}
groups:
  east:
    sites: ['S[001:010]']
    vars: {wave: first}
    server: {sms_root: 'E:\SMS'}
  west: [S011, 'S02*']
"""


def _written_out() -> str:
    """The same 31 sites as COMPACT, one by one, as an inventory had to be written before."""
    lines = ["sites:"]
    for i in range(1, 31):
        east = i <= 10
        root = "E:\\SMS" if east else "C:\\SMS"
        lines += [f"  S{i:03d}:", f"    code: F{i:02d}", "    timezone: America/Los_Angeles",
                  "    platforms: [x86, alpha]", f"    mock: {{path: lab/S{i:03d}}}",
                  "    vars: {owner: ops" + (", wave: first}" if east else "}"), "    servers:",
                  f"      SRV{i:03d}: {{role: site_server, platform: x86, sms_root: '{root}'}}",
                  "      LOG: {role: logon_server, platform: x86, sms_root: 'D:\\SMS'}"]
    lines += ["  EXTRA:", "    code: EXT", "    timezone: UTC", "    platforms: [x86, alpha]",
              "    mock: {path: lab/EXTRA}", "    vars: {owner: ops}", "    servers:",
              "      EXSRV: {role: site_server, sms_root: 'D:\\SMS', platform: alpha}",
              "groups:", "  east: [" + ", ".join(f"S{i:03d}" for i in range(1, 11)) + "]", "  west: [S011, 'S02*']"]
    return "\n".join(lines) + "\n"


def _dump(path: Path) -> dict:
    inv = load_inventory(path)
    return {"sites": {n: s.model_dump(mode="json") for n, s in inv.inventory.sites.items()},
            "groups": {g: [r.name for r in inv.group(g)] for g in inv.inventory.groups}}


def test_a_compact_inventory_is_the_written_out_one(tmp_path: Path):
    compact = tmp_path / "compact.yaml"
    compact.write_text(COMPACT)
    full = tmp_path / "full.yaml"
    full.write_text(_written_out())
    a, b = _dump(compact), _dump(full)
    assert list(a["sites"]) == [f"S{i:03d}" for i in range(1, 31)] + ["EXTRA"]
    assert a == b
    assert len(COMPACT.splitlines()) * 10 < len(_written_out().splitlines()) * 3  # well under a third


@pytest.mark.parametrize("text, names", [
    ("S[001:003]", ["S001", "S002", "S003"]),
    ("S[1:3]", ["S1", "S2", "S3"]),
    ("S[8:11]", ["S8", "S9", "S10", "S11"]),
    ("S[01:10:4]", ["S01", "S05", "S09"]),
    ("EU-[a:c]", ["EU-a", "EU-b", "EU-c"]),
    ("R[A:B][1:2]", ["RA1", "RA2", "RB1", "RB2"]),
    ("PLAIN", ["PLAIN"]),
    ("SITE0[1-4]", ["SITE0[1-4]"]),  # a glob's character class is not a range
])
def test_ranges_as_ansible_writes_them(text: str, names: list[str]):
    assert expand(text) == names


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    r = run_cli("validate", path)
    assert r.code == 2, r.text
    return r.err.replace(str(path), "FILE")


@pytest.mark.parametrize("change, where, words", [
    # a value of the template: every expanded site points at the template's line
    (("code: F[01:30]", "code: F[01:30]x"), "FILE:8:", "site code 'F01X' must be exactly 3"),
    (("    servers:\n      SRV", "    timezone: Mars/Olympus\n    servers:\n      SRV"), "FILE:10:", "Mars/Olympus"),
    # a default: at the defaults line
    (("  timezone: America/Los_Angeles", "  timezone: Nowhere/Town"), "FILE:2:", "Nowhere/Town"),
    (("  server: {platform: x86,", "  server: {platform: z80,"), "FILE:5:", "z80"),
    (("  vars: {owner: ops}", "  varz: {owner: ops}"), "FILE:4:", "unknown key 'varz' in defaults (did you mean 'vars'?)"),
    # ranges that do not fit
    (("code: F[01:30]", "code: F[01:20]"), "FILE:8:", "stands for 20 values, but its site's name stands for 30"),
    (("  S[001:030]:", "  S[030:001]:"), "FILE:7:", "range [030:001] is empty"),
    (("  EXTRA:", "  S017:"), "FILE:13:", "site S017 is written twice"),
    # groups
    (("    vars: {wave: first}", "    vars: {wave: first}\n  late:\n    sites: ['S00*']\n    vars: {wave: second}"),
     "FILE:25:", "groups east and late both set vars.wave for site S001, to different values"),
    (("    sites: ['S[001:010]']", "    sites: []"), "FILE:21:", "group east needs sites:"),
    (("  west: [S011, 'S02*']", "  west: [S011, 'X*']"), "FILE:24:", "'X*' matches no site"),
])
def test_errors_point_at_the_line_the_value_was_written_on(tmp_path: Path, change, where, words):
    assert change[0] in COMPACT
    err = _error(tmp_path, COMPACT.replace(change[0], change[1], 1))
    assert f"deployer: {where}" in err and words in err, err


def test_inventory_show_prints_the_expansion_which_loads_back_the_same(tmp_path: Path):
    path = tmp_path / "sites.yaml"
    path.write_text(COMPACT)
    r = run_cli("inventory", "show", "-i", path)
    assert r.code == 0, r.text
    assert r.out.startswith(f"# {path}, expanded: 31 sites\n")
    again = tmp_path / "again.yaml"
    again.write_text(r.out)
    assert _dump(again) == _dump(path)
    data = json.loads(run_cli("inventory", "show", "-i", path, "--group", "east", "-f", "json").out)
    assert list(data["sites"]) == [f"S{i:03d}" for i in range(1, 11)]
    assert data["sites"]["S004"]["servers"]["SRV004"] == {"role": "site_server", "sms_root": "E:\\SMS",
                                                          "platform": "x86"}
    data = json.loads(run_cli("inventory", "show", "-i", path, "--site", "S03*,EXTRA", "-f", "json").out)
    assert list(data["sites"]) == ["S030", "EXTRA"]
    r = run_cli("inventory", "show", "-i", path, "--site", "S031")
    assert r.code == 2 and "no site named 'S031'" in r.err


def test_the_sites_schema_accepts_the_compact_form(tmp_path: Path):
    path = tmp_path / "sites.yaml"
    path.write_text(COMPACT)
    r = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema.SCHEMA_DIR / "sites.json"),
                        str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(COMPACT.replace("  vars: {owner: ops}", "  varz: {owner: ops}"))
    r = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema.SCHEMA_DIR / "sites.json"),
                        str(bad)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "varz" in r.stdout


def test_a_ranged_fleet_is_created_planned_and_selected_by_group(tmp_path: Path):
    base = copy_project(tmp_path)
    inv = base / "sites.yaml"
    inv.write_text("defaults:\n  timezone: America/Los_Angeles\n  platforms: [x86, alpha]\n"
                   "  server: {platform: x86, sms_root: 'C:\\SMS', role: site_server}\n"
                   "sites:\n  Q[01:03]:\n    code: Q[01:03]\n    mock: {path: 'lab/Q[01:03]'}\n"
                   "    servers:\n      QSRV[1:3]:\n"
                   "groups:\n  two:\n    sites: ['Q0[12]']\n    vars: {wave: one}\n")
    r = run_cli("lab", "init", "--all", "-i", inv, cwd=base)
    assert r.code == 0, r.text
    assert sorted(p.name for p in (base / "lab").iterdir()) == ["Q01", "Q02", "Q03"]
    assert (base / "lab" / "Q02" / "QSRV2").is_dir()
    r = run_cli("plan", base / "playbooks" / "q241656.yaml", "-i", inv, "--group", "two", "-f", "json", cwd=base)
    assert r.code == 0, r.text
    assert [s["site"] for s in json.loads(r.out)["sites"]] == ["Q01", "Q02"]


def test_an_inventory_without_the_new_forms_is_read_as_before():
    doc = parse_yaml((ROOT / "sites.yaml").read_text(), ROOT / "sites.yaml")
    from deployer.model.inventory_expand import expand_inventory

    assert expand_inventory(doc) is doc
