"""`deployer kb import` (and its alias `manifest from-kb`) as a user runs it: what it
writes, what it says, its exit codes; bad input is refused without a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from deployer.model.manifest import load_manifest

KB = ROOT / "tests" / "data" / "kb"
SHARED = ROOT.parent / "shared"


def _articles() -> list[Path]:
    found = sorted((SHARED / "kb").glob("Q*.md")) + sorted((SHARED / "kb-train").glob("Q*.md"))
    if not found:
        if os.environ.get("CI") == "true":  # CI has shared/ beside the clone: missing is a failure there
            pytest.fail(f"no articles under {SHARED}/kb and {SHARED}/kb-train")
        pytest.skip("../shared/kb and ../shared/kb-train are not beside this checkout")
    return found


def test_one_article_to_standard_output():
    r = run_cli("kb", "import", KB / "Q255284.md")
    assert r.code == 0, r.text
    assert r.out.startswith("# yaml-language-server: $schema=")  # the line editors read first
    assert r.out.splitlines()[1].startswith("# File attributes of the Q255284 hotfix")
    assert "7 rows imported, 0 need review (7 files in the manifest, from 1 table in" in r.err


def test_manifest_from_kb_is_the_same_command(tmp_path: Path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert run_cli("kb", "import", KB / "Q226891.md", "-o", a).code == 0
    r = run_cli("manifest", "from-kb", KB / "Q226891.md", "-o", b)
    assert r.code == 0 and f"Wrote {b}: 6 rows imported, 0 need review" in r.err
    assert a.read_text() == b.read_text()


def test_rows_that_need_review_exit_3_and_are_listed_with_their_lines(tmp_path: Path):
    text = (KB / "Q168130.md").read_text().replace("2/24/99   1:34pm", "2/30/99   1:34pm")
    art = tmp_path / "Q168130.md"
    art.write_text(text)
    r = run_cli("kb", "import", art, "-o", tmp_path / "m.yaml")
    assert r.code == 3, r.text
    assert "1 rows imported, 1 need review" in r.err
    assert f"{art}:82: date '2/30/99' does not exist: February 1999 has 28 days" in r.err
    written = (tmp_path / "m.yaml").read_text()
    assert "# REVIEW line 82:" in written
    assert [f.line for f in load_manifest(tmp_path / "m.yaml").manifest.files] == [81]


def test_many_articles_in_one_process_one_manifest_each(tmp_path: Path):
    articles = _articles()
    out = tmp_path / "manifests"
    r = run_cli("kb", "import", *articles, "-o", out)
    assert r.code == 3, r.text  # some kb-train rows need review (a duplicate row, 15,66 KB, ...)
    assert "Traceback" not in r.text
    assert f"{len(articles)} of {len(articles)} articles:" in r.err
    written = sorted(out.glob("*.yaml"))
    assert len(written) == len(articles)
    for path in written:
        text = path.read_text()
        if "\n  - {" in text or "\n      - {" in text:  # at least one row imported: it loads
            assert load_manifest(path).manifest.files


def test_a_missing_article_is_reported_and_the_others_written(tmp_path: Path):
    r = run_cli("kb", "import", KB / "Q255284.md", tmp_path / "Q000000.md", "-o", tmp_path / "out")
    assert r.code == 2, r.text
    assert f"{tmp_path / 'Q000000.md'}: article not found" in r.err
    assert (tmp_path / "out" / "q255284.yaml").exists()


@pytest.mark.parametrize("args, message", [
    (["kb", "import", KB / "Q255284.md", KB / "Q226891.md"], "give -o DIR"),
    (["kb", "import", KB / "Q255284.md", "--playbook"], "--playbook needs -o FILE|DIR"),
    (["kb", "import", KB / "Q168682-sendcode-service-codes.txt"], "no file-attribute table"),
    (["kb", "import", KB], "is a directory"),
])
def test_bad_usage_exits_2_with_a_message(args, message):
    r = run_cli(*args)
    assert r.code == 2, r.text
    assert message in r.err and "Traceback" not in r.text


def test_an_output_that_cannot_be_written_exits_2(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("kb", "import", KB / "Q255284.md", "-o", blocker / "m.yaml")
    assert r.code == 2, r.text
    assert "cannot create the folder" in r.err and "Traceback" not in r.text
