"""The manifest format holds what articles say: groups, more date styles, fractional sizes
as ranges, no time, no size, an unknown platform, a version with a build note, a row
flagged for review; verify checks them as far as they allow and says which were loose."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import ROOT, Workspace
from deployer.errors import InputError
from deployer.model.manifest import UNKNOWN, load_manifest
from deployer.sms import attrs
from deployer.targets.base import FileStat
from deployer.sms.verify import MISMATCH, NEWER, OK, OLDER, judge

LA = ZoneInfo("America/Los_Angeles")


@pytest.mark.parametrize("text, want", [
    ("01-Mar-2001", date(2001, 3, 1)), ("08-May-01", date(2001, 5, 8)), ("1-Mar-2001", date(2001, 3, 1)),
    ("October 6, 2000", date(2000, 10, 6)), ("March 1, 2001", date(2001, 3, 1)), ("Sept 3, 2001", date(2001, 9, 3)),
    ("05-05-00", date(2000, 5, 5)), ("May-02-2001", date(2001, 5, 2)), ("11-MAY-2001", date(2001, 5, 11)),
])
def test_article_date_styles(text, want):
    assert attrs.parse_date(text) == want


@pytest.mark.parametrize("text", ["30-Feb-2001", "Smarch 3, 2001", "12/20/199", "24/05/00"])
def test_impossible_or_unknown_dates_are_refused(text):
    with pytest.raises(attrs.AttrError):
        attrs.parse_date(text)


def test_fractional_sizes_are_ranges_covering_rounding_truncation_and_rounding_up():
    s = attrs.parse_size("87.1 KB")
    assert s.loose and str(s) == "87.1 KB"
    assert s.matches(87 * 1024 + 1) and s.matches(int(87.19 * 1024))  # just over 87.0 KB .. just under 87.2 KB
    assert not s.matches(87 * 1024) and not s.matches(math.ceil(87.2 * 1024))
    mb = attrs.parse_size("1.61 MB")
    assert mb.matches(int(1.615 * 2**20)) and not mb.matches(int(1.7 * 2**20)) and not mb.matches(int(1.6 * 2**20))
    assert attrs.parse_size("67.5KB").matches(int(67.55 * 1024))
    # exact counts stay exact
    assert attrs.parse_size("283,104 bytes") == attrs.SizeSpec(283_104, "B")
    assert attrs.parse_size("16,256b") == attrs.SizeSpec(16_256, "B")
    with pytest.raises(attrs.AttrError):
        attrs.parse_size("12 MB")  # a whole megabyte wide: not a check


MANIFEST = """\
kb: Q999001
rule: or-later
groups:
  - title: "French files (0000040C):"
    line: 60
    files:
      - {date: 01-Mar-2001, time: null, size: 87.1 KB, name: Base.dll, platform: (Intel), line: 61}
      - {date: "October 6, 2000", time: 7:00 PM, size: null, name: Smsinst.dll, platform: unknown, line: 62}
  - title: "German files (00000407):"
    files:
      - {date: 3/1/01, time: 19:00, size: "283,104 bytes", name: Base.dll, platform: x86, version: 1.2 (build 786)}
      - {date: 3/1/01, time: 19:00, size: "16,256b", name: Pcmsvc32.exe, platform: x86, review: "time read as 19:00"}
"""


def test_groups_load_as_one_list_of_files(tmp_path: Path):
    p = tmp_path / "m.yaml"
    p.write_text(MANIFEST)
    m = load_manifest(p).manifest
    assert [g.title for g in m.groups] == ["French files (0000040C):", "German files (00000407):"]
    assert [f.name for f in m.files] == ["Base.dll", "Smsinst.dll", "Base.dll", "Pcmsvc32.exe"]
    a, b, c, d = m.files
    assert (a.time, a.size.loose, a.platform.key, a.line) == (None, True, "x86", 61)
    assert (b.size, b.platform) == (None, UNKNOWN)
    assert c.version == "1.2 (build 786)" and d.review == "time read as 19:00"
    assert a.loose() == ["no time listed: date only", "size 87.1 KB is a range"]
    assert b.loose() == ["no size listed", "no platform listed"]
    assert c.loose() == ["version 1.2 (build 786): dotted part only"]
    assert d.loose() == ["flagged for review: time read as 19:00"]
    assert m.path_of(3) == ("groups", 1, "files", 1) and m.group_of(0).line == 60


def test_a_file_twice_in_one_group_is_refused_at_its_line(tmp_path: Path):
    p = tmp_path / "m.yaml"
    p.write_text(MANIFEST.replace("name: Pcmsvc32.exe", "name: base.dll"))
    with pytest.raises(InputError) as exc:
        load_manifest(p)
    assert exc.value.location.line == 12
    assert "duplicate entry for base.dll (I386) (first listed as groups[1].files[0])" in exc.value.message


def test_time_null_and_missing_columns_must_be_said(tmp_path: Path):
    p = tmp_path / "m.yaml"
    p.write_text("kb: Q999001\nfiles:\n  - {date: 3/1/01, size: 1KB, name: A.dll, platform: x86}\n")
    with pytest.raises(InputError, match="is required"):  # null is a choice; a forgotten time is an error
        load_manifest(p)
    p.write_text("kb: Q999001\n")
    with pytest.raises(InputError, match="files: \\(one table\\) or groups: \\(several\\)"):
        load_manifest(p)


@pytest.mark.parametrize("path", sorted((ROOT / "manifests").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_manifest_loads(path: Path):
    assert load_manifest(path).manifest.files


def _stat(dt: datetime, size: int) -> FileStat:
    return FileStat(name="x", size=size, mtime_ns=int(dt.timestamp()) * 10**9, is_dir=False)


def test_judge_compares_days_when_no_time_is_listed(tmp_path: Path):
    p = tmp_path / "m.yaml"
    p.write_text(MANIFEST)
    entry = load_manifest(p).manifest.files[0]  # 01-Mar-2001, no time, 87.1 KB
    inside = int(87.1 * 1024)
    assert judge(entry, _stat(datetime(2001, 3, 1, 23, 59, tzinfo=LA), inside), LA).status == OK
    assert judge(entry, _stat(datetime(2001, 3, 2, 0, 1, tzinfo=LA), inside), LA).status == NEWER
    assert judge(entry, _stat(datetime(2001, 2, 28, 23, 59, tzinfo=LA), inside), LA).status == OLDER
    assert judge(entry, _stat(datetime(2001, 3, 1, 9, 0, tzinfo=LA), 88 * 1024), LA).status == MISMATCH


def test_judge_reads_a_build_note_as_its_dotted_part(tmp_path: Path):
    p = tmp_path / "m.yaml"
    p.write_text(MANIFEST)
    entry = load_manifest(p).manifest.files[2]  # 1.2 (build 786), 283,104 bytes, 3/1/01 19:00
    at = _stat(datetime(2001, 3, 1, 19, 0, tzinfo=LA), 283_104)
    assert judge(entry, at, LA, version="1.2.0.0").status == OK
    assert judge(entry, at, LA, version="1.1.0.0").status == OLDER


def test_verify_says_which_rows_it_checked_loosely(ws: Workspace):
    # Q226891's files with what articles leave open: no time, a range, no platform
    m = ws.path / "manifests" / "loose.yaml"
    m.write_text("kb: Q226891\nrule: or-later\nfiles:\n"
                 "  - {date: 05/15/00, time: null, size: \"535,616\", name: Base.dll, platform: Intel}\n"
                 "  - {date: 05/15/00, time: 6:59pm, size: 368.5 KB, name: Base3.dll, platform: Intel}\n"
                 "  - {date: 05/15/00, time: 6:59pm, size: \"538,656\", name: Base4.dll, platform: unknown}\n")
    assert ws.cli("apply", ws.path / "playbooks" / "q226891.yaml", "--site", "DEMO", "--yes",
                  "-i", ws.inventory).code == 0
    r = ws.cli("verify", m, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    report = json.loads(r.out)
    loose = {(f["name"], f["path"].split("\\")[-2]): f["loose"] for f in report["files"] if f["loose"]}
    assert loose[("Base.dll", "X86.BIN")] == ["no time listed: date only"]
    assert loose[("Base3.dll", "X86.BIN")] == ["size 368.5 KB is a range"]
    assert loose[("Base4.dll", "X86.BIN")] == ["no platform listed: looked in the X86.BIN folder", "no platform listed"]
    assert report["summary"]["loose"] == len(report["files"]) - 0 or report["summary"]["loose"] >= 4
    r = ws.cli("verify", m, "--site", "DEMO", "-i", ws.inventory)
    assert "Checked loosely (" in r.out and "no time listed: date only" in r.out
    r = ws.cli("verify", m, "--site", "DEMO", "-i", ws.inventory, "-f", "junit")
    assert "checked loosely: size 368.5 KB is a range" in r.out


def test_verify_takes_a_manifest_of_several_tables(ws: Workspace):
    m = ws.path / "manifests" / "grouped.yaml"
    m.write_text("kb: Q226891\nrule: or-later\ngroups:\n"
                 "  - title: Intel\n    files:\n"
                 "      - {date: 05/15/00, time: 6:58pm, size: \"535,616\", name: Base.dll, platform: Intel}\n"
                 "  - title: Alpha\n    files:\n"
                 "      - {date: 05/15/00, time: 7:01pm, size: \"750,352\", name: Base.dll, platform: Alpha}\n")
    r = ws.cli("verify", m, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 3 and json.loads(r.out)["summary"]["older"] >= 2  # the lab's Base.dll is older
    assert ws.cli("apply", ws.path / "playbooks" / "q226891.yaml", "--site", "DEMO", "--yes",
                  "-i", ws.inventory).code == 0
    r = ws.cli("verify", m, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    status = {f["path"]: f["status"] for f in json.loads(r.out)["files"]}
    assert status[r"C:\SMS\SITE.SRV\X86.BIN\BASE.DLL"] == status[r"C:\SMS\SITE.SRV\ALPHA.BIN\BASE.DLL"] == "ok"
    # Q226891's procedure does not reset the site: the Helper.srv copies stay old until one
    assert status[r"D:\SMS\HELPER.SRV\X86.BIN\BASE.DLL"] == "older" and r.code == 3
