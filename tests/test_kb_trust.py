"""Issue 19 items 20-23: the importer never drops a row, reads what an article is saved as,
and never overwrites a file it did not write."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from deployer.kb import import_article

TRAIN = ROOT.parent / "shared" / "kb-train"
ARTICLE = TRAIN / "Q253811.md"  # one table, two rows (x86, alpha) at lines 68-69


def _lines() -> list[str]:
    if not ARTICLE.exists():
        pytest.fail(f"{ARTICLE} is missing: ../shared/kb-train must be beside this checkout")
    return ARTICLE.read_text(encoding="utf-8").split("\n")


# --- item 21: a control character in a row flags that row; the rest is imported -----------------


@pytest.mark.parametrize("char", ["\x1b", "\x1b[2J", "\x00", "\x07", "\x7f", "\x9b", "\x1c", "\x1b]52;c;aGk=\x07"])
@pytest.mark.parametrize("where", ["start", "between", "name"])
def test_a_control_character_in_a_row_flags_that_row_and_imports_the_rest(tmp_path: Path, char: str, where: str):
    lines = _lines()
    row = lines[68]
    lines[68] = {"start": char + row, "between": row.replace("222,992", char + " 222,992"),
                 "name": row.replace("Netbt.sys", f"Net{char}bt.sys")}[where]
    path = tmp_path / "Q253811.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    r = run_cli("kb", "import", path, "-o", tmp_path / "out.yaml")
    assert r.code == 3, r.text  # some rows need review; never "internal error" (exit 2)
    text = (tmp_path / "out.yaml").read_text(encoding="utf-8")
    assert "# REVIEW line 69:" in text and "line: 68}" in text  # the other row is imported
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text and "\x7f" not in text
    result = import_article(path)
    assert (result.imported, result.review) == (1, 1)
    assert "\x1b" not in r.err and "\x00" not in r.err and "\x07" not in r.err


# --- item 22: byte-order marks ------------------------------------------------------------------


@pytest.mark.parametrize("encoding, bom", [
    ("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-8", codecs.BOM_UTF8),
    ("utf-32-le", codecs.BOM_UTF32_LE), ("utf-32-be", codecs.BOM_UTF32_BE), ("utf-16-le", b"")])
def test_an_article_with_a_byte_order_mark_is_read_in_its_encoding(tmp_path: Path, encoding: str, bom: bytes):
    text = "\n".join(_lines())
    path = tmp_path / "Q253811.md"
    path.write_bytes(bom + text.encode(encoding))
    result = import_article(path)
    assert (result.imported, result.review) == (2, 0)
    assert result.article.title == import_article(ARTICLE).article.title


def test_what_is_not_text_is_said_in_words(tmp_path: Path):
    damaged = tmp_path / "damaged.md"
    damaged.write_bytes(codecs.BOM_UTF16_LE + "\n".join(_lines()).encode("utf-16-le")[:-1] + b"\x00\xd8")
    r = run_cli("kb", "import", damaged)
    assert r.code == 2 and "UTF-16 LE byte-order mark but is not UTF-16 LE text" in r.err, r.text
    binary = tmp_path / "binary.md"
    binary.write_bytes(bytes(range(256)) * 16)
    r = run_cli("kb", "import", binary)
    assert r.code == 2 and "is not a text file" in r.err and "Traceback" not in r.text, r.text


# --- item 20: drafts are not applied; import never overwrites a file it did not write ----------

KB = ROOT / "tests" / "data" / "kb"


def test_a_draft_playbook_is_planned_with_a_warning_and_never_applied(ws, tmp_path: Path):
    from conftest import snapshot

    r = ws.cli("kb", "import", KB / "Q255284.md", "-o", ws.path / "drafts", "--playbook", "--playbook-dir",
               ws.path / "drafts" / "playbooks")
    assert r.code == 0, r.text
    draft = ws.path / "drafts" / "playbooks" / "q255284.yaml"
    line = next(n for n, text in enumerate(draft.read_text().splitlines(), 1) if text.startswith("draft: true"))
    assert ws.cli("lab", "init", "DEMO", "-i", ws.inventory, "-p", draft).code == 0
    before = snapshot(ws.site, include_state=True)
    r = ws.cli("plan", draft, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0 and "is a draft" in r.err, r.text
    for args in (["apply", draft, "--site", "DEMO", "--yes"], ["apply", draft, "--site", "DEMO", "--yes", "--batch", "1",
                                                               "--fleet-dir", tmp_path / "f"],
                 ["plan", draft, "--site", "DEMO", "--out", tmp_path / "p.json"]):
        r = ws.cli(*args, "-i", ws.inventory)
        assert r.code == 2, r.text
        assert f"{draft}:{line}" in r.err and "draft: true" in r.err and "Traceback" not in r.text
    assert not (tmp_path / "p.json").exists()
    assert snapshot(ws.site, include_state=True) == before
    # a person finishes it: the marker goes, apply works
    draft.write_text(draft.read_text().replace("draft: true", "# finished by a person"))
    r = ws.cli("apply", draft, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text


def test_import_never_overwrites_a_file_it_did_not_write(tmp_path: Path):
    shipped = {p.name: p.read_bytes() for p in (ROOT / "manifests").glob("*.yaml")}
    out = tmp_path / "manifests"
    books = tmp_path / "playbooks"
    out.mkdir()
    books.mkdir()
    for name, data in shipped.items():
        (out / name).write_bytes(data)
    (books / "q255284.yaml").write_text("kb: Q255284\n# kept by hand\n")
    # the README's example, aimed at the shipped manifests: refused, nothing written
    r = run_cli("kb", "import", KB / "Q255284.md", "-o", out / "q255284.yaml")
    assert r.code == 2 and "not written by `deployer kb import`" in r.err and "--force" in r.err, r.text
    r = run_cli("kb", "import", KB / "Q255284.md", KB / "Q226891.md", "-o", out, "--playbook", "--playbook-dir", books)
    assert r.code == 2, r.text
    assert {p.name: p.read_bytes() for p in out.glob("*.yaml")} == shipped
    assert (books / "q255284.yaml").read_text() == "kb: Q255284\n# kept by hand\n"
    # its own output it may replace, until a person edits it
    fresh = tmp_path / "fresh"
    assert run_cli("kb", "import", KB / "Q255284.md", "-o", fresh, "--playbook").code == 0
    assert run_cli("kb", "import", KB / "Q255284.md", "-o", fresh, "--playbook").code == 0
    manifest = fresh / "q255284.yaml"
    manifest.write_text(manifest.read_text().replace("rule: ", "rule:  "))
    r = run_cli("kb", "import", KB / "Q255284.md", "-o", fresh)
    assert r.code == 2 and "edited since" in r.err, r.text
    assert "rule:  " in manifest.read_text()
    r = run_cli("kb", "import", KB / "Q255284.md", "-o", fresh, "--force")
    assert r.code == 0 and "rule:  " not in manifest.read_text(), r.text


# --- item 23: every line that looks like a row reaches the manifest -----------------------------

ROW_DATE = re.compile(r"(?<![0-9A-Za-z./-])[0-9]{1,2}[/-][0-9]{1,2}[/-](?:[0-9]{4}|[0-9]{2})(?![0-9A-Za-z/])")
ROW_NAME = re.compile(r"(?<![\w.])[\w$~-]*[A-Za-z][\w$~-]*\.[A-Za-z][A-Za-z0-9_]{0,3}(?!\w)")
ROW_NUMBER = re.compile(r"(?<![\w.,:])[0-9][0-9,.:]*[0-9](?:\s*(?:kb|k|b|bytes|[ap]m?))?(?![\w,])", re.IGNORECASE)


def _looks_like_a_row(line: str) -> bool:
    """This test's own reading (not the importer's): a date with / or -, a file name, and a size or
    a time; prose (more than four other words) is not a row."""
    date = ROW_DATE.search(line)
    if date is None:
        return False
    rest = line[:date.start()] + " " + line[date.end():]
    name = ROW_NAME.search(rest)
    if name is None or not ROW_NUMBER.search(rest):
        return False
    others = [w for w in re.findall(r"(?<![\w.\\])[A-Za-z]{3,}(?![\w.])", rest[:name.start()] + rest[name.end():])
              if w.casefold() not in {"bytes", "intel", "alpha"}]
    return len(others) <= 4


def _reached(result) -> tuple[set[int], set[int]]:
    imported = {int(n) for n in re.findall(r"line: (\d+)\}", result.yaml)}
    flagged = {int(n) for n in re.findall(r"# REVIEW line (\d+):", result.yaml)}
    return imported, flagged


def test_every_line_that_looks_like_a_row_in_kb_train_is_imported_or_flagged():
    articles = sorted(TRAIN.glob("Q*.md"))
    if len(articles) < 150:
        pytest.fail(f"{TRAIN} has {len(articles)} articles; ../shared/kb-train must be beside this checkout")
    rows = lost = 0
    missing = []
    for path in articles:
        result = import_article(path)
        imported, flagged = _reached(result)
        for k, line in enumerate(result.article.lines, 1):
            if _looks_like_a_row(line):
                rows += 1
                if k not in imported | flagged:
                    lost += 1
                    missing.append(f"{path.name}:{k}: {line.strip()}")
    assert rows > 500  # the test's reading finds the tables (760 rows are imported or flagged)
    assert lost == 0, "\n".join(missing[:20])


SHAPES = """---
title: "Q900001: Files of an update"
---
## Q900001: Files of an update

The English version of this fix should have the following file attributes or later:

   Date      Time        Size       Attr  File name
   -----------------------------------------------------------------
   05/13/99  12:35:50p   1,234,567  ----  OS\\MSAPPS\\Datamap\\Data\\Us_hiway.dat
   05/13/99  12:36:02a     245,760  -a--  OS\\SYSTEM\\Msorcl32.dll
   05/14/99  01:05:59p       9,216  ----  Setup.exe

The versions of the driver that each release installs:

   Product       Date      Version       Size   File name
   ------------------------------------------------------
   MDAC 2.0      02/02/99  02.573.3802   136KB  Msorcl32.dll
   MDAC 2.1 SP2  11/10/99  2.575.1117.0  144KB  Msorcl32.dll
"""


def test_seconds_an_attribute_column_paths_and_a_product_column_lose_no_row(tmp_path: Path):
    path = tmp_path / "Q900001.md"
    path.write_text(SHAPES, encoding="utf-8")
    result = import_article(path)
    imported, flagged = _reached(result)
    assert imported == {10, 11, 12}  # the attribute column read past, the path kept as a note
    assert flagged == {18, 19}  # the product rows: a person's to read, never dropped
    names = {f.line: f.name for f in result.manifest.files}
    assert names == {10: "Us_hiway.dat", 11: "Msorcl32.dll", 12: "Setup.exe"}
    assert "Path: OS\\MSAPPS\\Datamap\\Data" in result.yaml and "12:35:50p" in result.yaml
    # only product rows: still a manifest of flagged rows, not "no file-attribute table"
    only = tmp_path / "Q900002.md"
    only.write_text(SHAPES.replace("Q900001", "Q900002").split("   Date      Time")[0]
                    + SHAPES.split("installs:\n")[1], encoding="utf-8")
    r = run_cli("kb", "import", only, "-o", tmp_path / "only.yaml")
    assert r.code == 3, r.text
    mdac = {k for k, line in enumerate(only.read_text().splitlines(), 1) if "MDAC" in line}
    assert len(mdac) == 2 and _reached(import_article(only))[1] == mdac


# --- item 22's siblings: the other text files an operator gives -----------------------------------


def test_a_utf16_rservice_ini_and_pcmdump_output_are_read(tmp_path: Path):
    import yaml

    ini = tmp_path / "unicode.ini"  # Notepad's "Unicode": UTF-16 LE with a mark
    ini.write_bytes(codecs.BOM_UTF16_LE + "; Geräte\r\n[machine list]\r\nVKWS01\r\n[installation directory]\r\n"
                    "*=C:\\PCMSVC\r\n".encode("utf-16-le"))
    r = run_cli("inventory", "from-rservice", ini)
    assert r.code == 0, r.text
    assert yaml.safe_load(r.out)["pcm_hosts"] == {"VKWS01": {"platform": "x86", "install_dir": r"C:\PCMSVC"}}
    seed = ROOT.parent / "shared" / "seeds" / "Q123499-pcmdump-instruction-files.txt"
    text = seed.read_text(encoding="utf-8")
    sample = text[text.index("D:\\SMS\\LOGON.SRV\\PCMINS.BOX>PCMDUMP MDM00005.INS"):
                  text.index("\n\nAdditional query words") + 1]
    dump = tmp_path / "mdm00005.txt"  # PowerShell 5's `PCMDUMP MDM00005.INS > mdm00005.txt`
    dump.write_bytes(codecs.BOM_UTF16_LE + sample.encode("utf-16-le"))
    r = run_cli("pcm", "dump", dump)
    assert r.code == 0 and r.out == sample, r.text
