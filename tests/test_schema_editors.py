"""The shipped JSON Schemas as editors read them: every pattern an ECMAScript regex in unicode
mode (what the YAML language server and check-jsonschema compile), checked with the real
`check-jsonschema` on the schemas and on every shipped YAML file; `kb import` names its schema."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
import shutil
from pathlib import Path

import pytest
import regress
from hypothesis import given, settings, strategies as st

from conftest import ROOT, run_cli
from deployer import schema
from deployer.model.yamlsrc import load_yaml
from test_schema import HEADER, _yaml_files

CORPUS = ROOT / "tests" / "corpus"  # bad input on purpose: the schema refuses much of it


def _check_jsonschema(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def _patterns(node, where="$"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pattern" and isinstance(v, str):
                yield where, v
            yield from _patterns(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _patterns(v, f"{where}[{i}]")


@pytest.mark.parametrize("kind", schema.KINDS)
def test_every_pattern_compiles_as_an_ecmascript_unicode_regex(kind: str):
    data = json.loads((schema.SCHEMA_DIR / f"{kind}.json").read_text(encoding="utf-8"))
    bad = []
    for where, pattern in _patterns(data):
        try:
            regress.Regex(pattern, "u")
        except regress.RegressError as exc:
            bad.append(f"{where}: {exc}")
    assert not bad, "\n".join(bad)


def test_check_jsonschema_accepts_the_shipped_schemas():
    r = _check_jsonschema("--check-metaschema", *(schema.SCHEMA_DIR / f"{k}.json" for k in schema.KINDS))
    assert r.returncode == 0, r.stdout + r.stderr


def test_check_jsonschema_validates_every_shipped_yaml_file_against_the_schema_it_names():
    by_schema: dict[Path, list[Path]] = defaultdict(list)
    for p in _yaml_files():
        if CORPUS in p.parents:
            continue
        m = HEADER.match(p.read_text(encoding="utf-8"))
        assert m, f"{p} names no schema"
        by_schema[(p.parent / m.group(1)).resolve()].append(p)
    assert len(by_schema) == 3 and sum(map(len, by_schema.values())) >= 11
    for schema_file, files in by_schema.items():
        r = _check_jsonschema("--schemafile", schema_file, *files)
        assert r.returncode == 0, r.stdout + r.stderr


def test_check_jsonschema_still_refuses_a_wrong_platform(tmp_path: Path):
    # the escaped pattern still means what it did: `Alpha-based` passes, `Alpha_based` does not
    bad = tmp_path / "m.yaml"
    bad.write_text("kb: Q241656\nfiles:\n  - {date: 9/10/99, time: 7:00PM, size: 524KB, name: Base.dll, "
                   "platform: Alpha_based}\n")
    good = tmp_path / "g.yaml"
    good.write_text(bad.read_text().replace("Alpha_based", "Alpha-based"))
    manifest = schema.SCHEMA_DIR / "manifest.json"
    assert _check_jsonschema("--schemafile", manifest, good).returncode == 0
    r = _check_jsonschema("--schemafile", manifest, bad)
    assert r.returncode == 1 and "Alpha_based" in r.stdout


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=20))
def test_ecma_escape_matches_the_text_itself_in_both_regex_dialects(text: str):
    import re

    pattern = "^" + schema.ecma_escape(text) + "$"
    assert regress.Regex(pattern, "u").find(text) is not None
    assert re.match(pattern, text)


ARTICLE = """Article: Q255284
Title: SMS: PCM Incorrectly Runs Newly Available Expired Jobs

To install the hotfix, stop the SMS Executive service, then copy the files to the
SITE.SRV\\X86.BIN folder and start the SMS Executive service.

The English version of this fix should have the following file attributes or
later:

 Date        Time     Size     File name     Platform  Version
 -------------------------------------------------------------
 04/22/2000  10:58a    270304  Pcmsvc32.exe  I386      1.2.0.0
 04/22/2000  10:58a    453984  Pcmwin16.exe  I386      1.2.0.0
"""


def test_kb_import_names_the_manifest_and_playbook_schemas(tmp_path: Path):
    article = tmp_path / "Q255284.txt"
    article.write_text(ARTICLE)
    r = run_cli("kb", "import", article)
    first = r.out.splitlines()[0]
    assert first == f"# yaml-language-server: $schema={(schema.SCHEMA_DIR / 'manifest.json').as_posix()}"
    # written inside the source tree, as the repository's own files: relative to the file
    inside = ROOT / "test-output" / "kb-schema-line"
    shutil.rmtree(inside, ignore_errors=True)  # this test's own scratch: a file left by an older run is not its
    inside.mkdir(parents=True)
    r = run_cli("kb", "import", article, "-o", inside / "m.yaml", "--playbook", "--playbook-dir", inside / "pb")
    assert r.code == 0, r.text
    assert (inside / "m.yaml").read_text().startswith("# yaml-language-server: $schema=../../deployer/schemas/"
                                                       "manifest.json\n")
    book = inside / "pb" / "q255284.yaml"
    assert book.read_text().startswith("# yaml-language-server: $schema=../../../deployer/schemas/playbook.json\n")
    # elsewhere: the absolute path, and the file still loads and validates
    r = run_cli("kb", "import", article, "-o", tmp_path / "m.yaml")
    text = (tmp_path / "m.yaml").read_text()
    assert text.startswith(f"# yaml-language-server: $schema={(schema.SCHEMA_DIR / 'manifest.json').as_posix()}\n")
    assert load_yaml(tmp_path / "m.yaml").data["kb"] == "Q255284"
    assert _check_jsonschema("--schemafile", schema.SCHEMA_DIR / "manifest.json", tmp_path / "m.yaml").returncode == 0
