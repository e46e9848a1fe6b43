"""Importing the file-attribute tables of real KB articles as manifests.

The articles are copies of the real texts (tests/data/kb/), so the tests run anywhere.
Expected rows are written out by hand from the articles, not computed by the parser. A row
that cannot be read exactly is never refused and never dropped: it is flagged, with its
article line and the reason.
"""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path

import pytest

from deployer.errors import InputError
from deployer.kb import ArticleError, ImportResult, NoTableError, import_article, parse_article
from deployer.model.manifest import load_manifest
from deployer.sms.attrs import SizeSpec

ROOT = Path(__file__).resolve().parents[1]
KB = ROOT / "tests" / "data" / "kb"

Q241656 = "Q241656-pcmsvc32-memory-leak-hotfix.txt"
NO_TABLE = "Q168682-sendcode-service-codes.txt"  # a real article whose only table is of control codes


def _expected() -> dict[str, tuple[int, list[tuple]]]:
    """Each article's table line and rows, written out by hand from the article, not computed by
    the parser (tests/data/kbimport-rows.json): [date, time, size, unit (B or KB), name, platform
    key, version or null, article line] per row, in the article's order."""
    data = json.loads((ROOT / "tests" / "data" / "kbimport-rows.json").read_text(encoding="utf-8"))
    return {name: (entry["table_line"],
                   [(date.fromisoformat(day), time.fromisoformat(at), SizeSpec(size, unit), file, platform, version,
                     line)
                    for day, at, size, unit, file, platform, version, line in entry["rows"]])
            for name, entry in data.items()}


# (date, time, size, name, platform key, version, article line) per row, in the article's order
EXPECTED = _expected()

TITLES = {
    Q241656: "SMS: Memory Leak in Pcmsvc32",
    "Q168130.md": "SMS: Despooler Service Processes SNI Files Slowly",
    "Q225056.md": "SMS: PCMSVC32 Runs a Job After Expired Date",
    "Q226891.md": "Dataloader Causes AV Attempting to Insert > 1,962 Bytes of Data",  # &gt; in the page
    "Q255284.md": "SMS: PCM Incorrectly Runs Newly Available Expired Jobs",
}

_cache: dict[str, ImportResult] = {}


def imported(name: str) -> ImportResult:
    if name not in _cache:
        _cache[name] = import_article(KB / name)
    return _cache[name]


def article(name: str) -> str:
    return (KB / name).read_text(encoding="utf-8")


def rows(m) -> list[tuple]:
    return [(f.date, f.time, f.size, f.name, f.platform.key, f.version, f.line) for f in m.files]


def flagged(result: ImportResult) -> dict[int, str]:
    return {f.line: f.reason for f in result.flagged}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_article_imports_its_rows_in_order(name):
    result = imported(name)
    table_line, expected = EXPECTED[name]
    assert rows(result.manifest) == expected
    assert result.table_lines == [table_line]
    assert (result.rows, result.imported, result.review) == (len(expected), len(expected), 0)
    assert result.manifest.kb == name[:7]
    assert result.manifest.title == TITLES[name]
    assert result.manifest.source == name
    assert result.manifest.rule == "or-later"  # every one says "file attributes or later"
    assert not result.manifest.groups  # one table: a flat files: list, as before


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_yaml_round_trips_through_load_manifest(name, tmp_path):
    result = imported(name)
    path = tmp_path / "manifest.yaml"
    path.write_text(result.yaml, encoding="utf-8")
    assert load_manifest(path).manifest == result.manifest


def test_q241656_matches_the_hand_written_manifest():
    hand = load_manifest(ROOT / "manifests" / "q241656.yaml").manifest
    assert [row[:6] for row in rows(imported(Q241656).manifest)] == [row[:6] for row in rows(hand)]


@pytest.mark.parametrize("name", ["q168130", "q225056", "q226891", "q255284"])
def test_the_committed_manifests_are_the_articles_tables(name):
    committed = load_manifest(ROOT / "manifests" / f"{name}.yaml").manifest
    assert rows(committed) == rows(imported(f"{name.upper()}.md").manifest)


def test_yaml_keeps_the_article_spelling():
    text = imported("Q255284.md").yaml
    assert "- {date: 04/22/2000, time: 11:01a, size: 800528,  name: Pcmsvc32.exe, platform: Alpha, " \
           "version: 1.2.0.0, line: 69}" in text
    # the empty Version cell: no version key at all
    assert "- {date: 04/22/2000, time: 10:57a, size: 242336,  name: Pcmdos_2.exe, platform: I386,  line: 71}\n" in text
    q168130 = imported("Q168130.md").yaml
    # 254,400 must be quoted: a plain comma would split the flow mapping
    assert '- {date: 2/24/99, time: 1:35pm, size: "254,400", name: Smsinst.dll, platform: X86,   line: 81}' in q168130
    q241656 = imported(Q241656).yaml
    assert "- {date: 9/10/99, time: 7:00PM, size: 524KB,  name: Base.dll,     platform: I386,  line: 56}" in q241656


def test_yaml_header_names_the_article_counts_and_local_time():
    lines = imported(Q241656).yaml.splitlines()
    header = "\n".join(line for line in lines if line.startswith("#"))
    assert Q241656 in header and "lines 54" in header and "local time" in header
    assert "9 rows: 9 imported, 0 need review." in header
    assert 'kb: Q241656' in lines
    assert 'title: "SMS: Memory Leak in Pcmsvc32"' in lines
    assert f"source: {Q241656}" in lines
    assert any(line.startswith("rule: or-later") for line in lines)


def test_without_or_later_the_rule_is_exact():
    text = article("Q168130.md").replace("file attributes or\n\tlater:", "file attributes:")
    assert parse_article(text, "Q168130.md").manifest.rule == "exact"


def test_time_with_a_space_before_pm_is_one_cell():
    text = article("Q168130.md").replace("1:35pm   254,400", "1:35 pm  254,400")
    result = parse_article(text, "Q168130.md")
    assert result.manifest.files[0].time == time(13, 35)
    assert "time: 1:35 pm," in result.yaml


def test_a_crlf_article_with_windows_path_names_the_file():
    text = article("Q226891.md").replace("\n", "\r\n")
    result = parse_article(text, r"C:\kb\Q226891.md")
    assert result.manifest.source == "Q226891.md"
    assert len(result.manifest.files) == 6


# --- rows that cannot be read exactly: flagged with their line, never dropped ------------


def test_article_without_a_table():
    path = KB / NO_TABLE
    with pytest.raises(NoTableError) as exc:
        import_article(path)
    err = exc.value
    assert isinstance(err, InputError)
    assert err.path == str(path) and err.line == len(article(NO_TABLE).splitlines())
    assert "no file-attribute table" in err.message and "Date  Time  Size  File name  Platform" in err.message


def test_impossible_date_is_flagged_with_its_line_and_the_rest_imported():
    text = article("Q168130.md").replace("2/24/99   1:34pm", "11/31/94  1:34pm")
    result = parse_article(text, "kb/Q168130.md")
    assert (result.imported, result.review) == (1, 1)
    assert "November 1994 has 30 days" in flagged(result)[82]
    assert "# REVIEW line 82: date '11/31/94' does not exist: November 1994 has 30 days" in result.yaml
    assert "#   11/31/94  1:34pm   481,040 Smsinst.dll   ALPHA" in result.yaml
    assert [f.line for f in result.manifest.files] == [81]


def test_empty_platform_cell_takes_the_platform_of_the_row_above():
    text = article("Q255284.md").replace("Pcmsvc32.exe  I386      1.2.0.0", "Pcmsvc32.exe            1.2.0.0")
    result = parse_article(text, "Q255284.md")
    entry = next(f for f in result.manifest.files if f.line == 73)
    assert (entry.platform.key, entry.version) == ("x86", "1.2.0.0")
    assert "platform cell blank: I386, from the heading or the rows above" in result.yaml


def test_too_many_values_in_a_row_is_flagged():
    text = article("Q226891.md").replace("05/15/00  7:02pm  640,784", "05/15/00  7:02pm  640,784  1,2  3,4")
    result = parse_article(text, "Q226891.md")
    assert result.review == 1 and "more values before the file name" in flagged(result)[79]
    assert len(result.manifest.files) == 5


def test_prose_inside_the_table_ends_it_and_the_rows_after_it_are_kept_for_review():
    text = article("Q225056.md").replace("\t  1/28/99   3:30pm        269,280",
                                         "\tSee below for more.\n\t  1/28/99   3:30pm        269,280")
    result = parse_article(text, "Q225056.md")
    assert len(result.manifest.files) == 5  # none lost
    assert result.review == 3 and set(flagged(result)) == {62, 63, 64}  # after the inserted line
    assert all("no header row above it" in r for r in flagged(result).values())
    assert [g.title for g in result.manifest.groups][-1] == "Rows outside any table (no header row above them)"


def test_a_platform_sms_has_no_folder_for_is_kept_as_unknown():
    text = article("Q168130.md").replace("Smsinst.dll   ALPHA", "Smsinst.dll   PPC")
    result = parse_article(text, "Q168130.md")
    assert result.manifest.files[1].platform.key == "unknown"
    assert "platform 'PPC' is not one SMS has a folder for" in result.yaml


def test_file_listed_twice_in_one_table():
    text = article("Q226891.md").replace("Base3.dll   Intel", "Base.dll    Intel")
    result = parse_article(text, "Q226891.md")
    assert flagged(result) == {76: "Base.dll (I386) is listed twice in this table (first at line 75)"}


def test_table_without_the_sentence_is_imported_as_exact():
    text = article("Q255284.md").replace("should have the following file attributes or\n\tlater:",
                                         "has these files\n\tbelow.")
    result = parse_article(text, "Q255284.md")
    assert result.imported == 7 and result.manifest.rule == "exact"
    assert "no sentence before the table says \"or later\"" in result.yaml


def test_two_tables_are_two_groups_with_their_sentences():
    lines = article("Q168130.md").splitlines()
    second = ["\tThe German version should have the following file attributes:", "", *lines[77:82], ""]
    text = "\n".join(lines[:83] + second + lines[83:])
    result = parse_article(text, "Q168130.md")
    m = result.manifest
    assert result.table_lines == [78, 86]
    assert [g.title for g in m.groups] == [
        "The English version of this fix should have the following file attributes or later:",
        "The German version should have the following file attributes:"]
    assert [len(g.files) for g in m.groups] == [2, 2]
    assert m.rule == "exact"  # one of the two does not say "or later"


def test_missing_article_file(tmp_path):
    with pytest.raises(ArticleError, match="article not found"):
        import_article(tmp_path / "Q999999.md")
