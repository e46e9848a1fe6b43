"""PCM instruction records (Q123499): the article's own PCMDUMP sample is the data.

The sample is cut from the seed article as it stands (prompt line to the last Reserved
line); deployer must read it and print it again byte for byte, convert it to its YAML form
and back without losing a byte, name its numbers with --decode, and flag what is wrong in
it: the 11/31/94 that no calendar has, and the records Q166765's PCM service would refuse.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_cli

from deployer.errors import InputError
from deployer.sms.pcm import dumptext, yamlform
from deployer.sms.pcm.load import load

ARTICLE = ROOT.parent / "shared" / "seeds" / "Q123499-pcmdump-instruction-files.txt"


def article_sample() -> str:
    text = ARTICLE.read_text(encoding="utf-8")
    start = text.index("D:\\SMS\\LOGON.SRV\\PCMINS.BOX>PCMDUMP MDM00005.INS")
    end = text.index("\n\nAdditional query words")
    return text[start:end + 1]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    p = tmp_path / "mdm00005.txt"
    p.write_bytes(article_sample().encode("utf-8"))
    return p


def test_the_articles_sample_is_reprinted_byte_for_byte(sample: Path):
    text = article_sample()
    assert text.count("PCM Version     : Beta 455") == 4  # the whole sample, not a prefix of it
    assert dumptext.render(dumptext.parse(text)) == text
    r = run_cli("pcm", "dump", sample)
    assert r.code == 0, r.text
    assert r.out == text


def test_crlf_output_as_pcmdump_wrote_it_on_dos_round_trips(tmp_path: Path):
    crlf = article_sample().replace("\n", "\r\n").encode()
    p = tmp_path / "dos.txt"
    p.write_bytes(crlf)
    f = load(p)
    assert f.newline == "crlf"
    assert dumptext.render(f).encode() == crlf


def test_every_field_of_the_record_is_read():
    f = dumptext.parse(article_sample())
    assert f.file_name == "mdm00005.ins" and f.prompt.endswith(">PCMDUMP MDM00005.INS") and f.banner
    first, audit, flight, patch = f.records
    assert (first.pcm_version, first.site_id, first.request_id, first.package_id, first.job_id) == \
        ("Beta 455", "BPC", "BPC001M", "BPC0000A", "BPC000AA")
    assert first.install_by_date is None and first.display_date == "1994-09-21 17:56:00"
    assert first.expiration_date == "1995-03-07 17:56:00" and first.expiration_full == 1
    assert first.operating_system == 15 and first.run_command == r"acmewkst.exe smsproxy\complete.stf /I:C"
    assert [(s.path, s.type, s.zone) for s in first.servers] == [
        (r"\\CNS-SMS\SMS_PKGD\BPC0000A" + "\\", 2, r"\\CNS-SMS\SMS_PKGD\BPC0000A" + "\\"),
        (r"\\CNSAPPS1\SMS_PKGD\BPC0000A" + "\\", 2, None)]
    assert len(first.reserved.split()) == 32 and first.reserved.startswith("00 E6 F8 77")
    assert audit.expiration_date == "1994-11-31 07:00:00"  # kept as written, for lint to report
    assert audit.comments.splitlines()[-1] == "upgrades as they become available." and len(audit.comments.splitlines()) == 5
    assert flight.user_input_flags == 1 and flight.operating_system == 64
    assert patch.install_by_date == "1994-11-01 23:59:00" and patch.install_by_full == 1
    assert f.end == " "  # the article's last line ends with a space


def test_decode_names_the_numbers(sample: Path):
    r = run_cli("pcm", "dump", "--decode", sample)
    assert r.code == 0, r.text
    out = r.out
    assert "   Operating System: 15 (WIN16, WIN32_X86, WIN32_MIPS, WIN32_ALPHA)\n" in out
    assert "   Operating System: 51 (WIN16, WIN32_X86, DOS5, DOS6)\n" in out
    assert "   Operating System: 64 (MACINTOSH)\n" in out
    assert "   Operating System: 1 (WIN16)\n" in out
    assert r"\\CNS-SMS\SMS_PKGD\BPC0000A\ Type: 2 (WINNT3)" in out
    assert out.count("   Install By Date : not set\n") == 3
    assert "   Expiration Date : 11/31/94 07:00:00 (no such date)\n" in out
    assert "   User Input Flags: 1 (requires user input)\n" in out
    assert "   Install By Full : 1 (mandatory install)\n" in out


def test_server_types_one_to_seven_are_named(tmp_path: Path):
    names = ["UNKNOWN", "WINNT3", "LANMAN1", "LANMAN2", "NETWARE2", "NETWARE3", "NETWARE4"]
    text = article_sample()
    for n in range(1, 8):
        p = tmp_path / f"t{n}.txt"
        p.write_text(text.replace(r"\\CNSAPPS1\SMS_PKGD\BPC0000A\ Type: 2", rf"\\CNSAPPS1\SMS_PKGD\BPC0000A\ Type: {n}"))
        r = run_cli("pcm", "dump", "--decode", p)
        assert rf"\\CNSAPPS1\SMS_PKGD\BPC0000A\ Type: {n} ({names[n - 1]})" in r.out


def test_convert_to_yaml_and_back_keeps_every_byte(sample: Path, tmp_path: Path):
    y = tmp_path / "mdm00005.yaml"
    r = run_cli("pcm", "convert", sample, "-o", y)
    assert r.code == 0, r.text
    doc = yaml.safe_load(y.read_text())
    assert doc["format"] == "deployer-pcm/1" and len(doc["records"]) == 4
    rec = doc["records"][0]
    assert rec["operating_system"] == ["WIN16", "WIN32_X86", "WIN32_MIPS", "WIN32_ALPHA"]
    assert rec["servers"][0]["type"] == "WINNT3" and rec["install_by_date"] is None
    assert doc["records"][1]["expiration_date"] == "1994-11-31 07:00:00"
    back = tmp_path / "back.txt"
    r = run_cli("pcm", "convert", y, "-o", back)
    assert r.code == 0, r.text
    assert back.read_bytes() == sample.read_bytes()
    r = run_cli("pcm", "dump", y)  # dump reads the YAML form too
    assert r.out == article_sample()


def test_lint_flags_the_impossible_date_and_the_pcm_service_breaches(sample: Path):
    r = run_cli("pcm", "lint", sample, "--now", "1994-10-01")
    assert r.code == 3, r.text
    out = r.out
    assert ("record 2 (GBL00B9): Expiration Date: 11/31/94 07:00:00 is not a date (1994-11-31 does not exist) "
            "[impossible-date; Q123499") in out
    assert "record 3 (BPC003F): User Input Flags: 1: requires user input [needs-user-input; Q166765: requirement 1" in out
    for n, req in ((1, "BPC001M"), (2, "GBL00B9"), (3, "BPC003F")):
        assert f"record {n} ({req}): Install By Full: 0: optional install [not-mandatory; Q166765: requirement 3" in out
    assert "record 4" not in out  # mandatory, silent, valid dates, not expired on 10/01/94
    assert "4 records, 5 findings, 1 records clean" in out
    assert str(sample) in out  # each finding names the file


def test_lint_judges_expiry_at_now(sample: Path):
    r = run_cli("pcm", "lint", sample, "--now", "1995-03-10 12:00", "--no-pcm-service", "-f", "json")
    assert r.code == 3
    found = {(f["record"], f["rule"], f["field"], f["article"]) for f in json.loads(r.out)["findings"]}
    assert found == {(1, "expired", "Expiration Date", "Q123499"), (2, "impossible-date", "Expiration Date", "Q123499")}
    r = run_cli("pcm", "lint", sample, "--now", "1994-10-01", "--no-pcm-service")
    assert r.code == 3 and "impossible-date" in r.out and "expired" not in r.out


def _yaml_with(tmp_path: Path, **changes) -> Path:
    f = dumptext.parse(article_sample())
    rec = f.records[3].model_copy(update=changes)
    out = tmp_path / "one.yaml"
    out.write_text(yamlform.to_yaml(f.model_copy(update={"records": [rec]})))
    return out


def test_lint_flags_display_after_expiration_and_mandatory_after_expiration(tmp_path: Path):
    p = _yaml_with(tmp_path, display_date="1995-04-01 00:00:00", install_by_date="1995-05-01 00:00:00")
    r = run_cli("pcm", "lint", p, "--now", "1994-10-01")
    assert r.code == 3
    assert "record 1 (BPC005Q): Display Date: displayed from 04/01/95 00:00:00, after it expires on 03/13/95" in r.out
    assert "[display-after-expiration; Q123499" in r.out
    assert "Install By Date: mandatory after 05/01/95 00:00:00, after it expires" in r.out


def test_a_clean_record_passes_lint(tmp_path: Path):
    p = _yaml_with(tmp_path, automated_command_line=True, background_task=True)
    r = run_cli("pcm", "lint", p, "--now", "1994-10-01")
    assert r.code == 0, r.text
    assert "1 records, 0 findings, 1 records clean" in r.out


def test_lint_flags_package_properties_recorded_in_yaml(tmp_path: Path):
    p = _yaml_with(tmp_path, automated_command_line=False, background_task=False)
    r = run_cli("pcm", "lint", p, "--now", "1994-10-01")
    assert r.code == 3
    assert "[not-automated; Q166765: requirement 2" in r.out and "[not-background; Q166765" in r.out
    r = run_cli("pcm", "convert", p, "--to", "text")
    assert r.code == 0 and "not part of PCMDUMP's layout" in r.err


def _refused(r, where: str, *words: str) -> None:
    assert r.code == 2, r.text
    assert where in r.err, r.err
    for w in words:
        assert w in r.err, r.err
    assert "Traceback" not in r.text


@pytest.mark.parametrize("old,new,words", [
    ("   Install Flag    : 0\n   Install By Date : 00/00/00 00:00:00\n   Install By Full : 0\n   Display Date    : 09/24/94",
     "   Install Flag    : x\n   Install By Date : 00/00/00 00:00:00\n   Install By Full : 0\n   Display Date    : 09/24/94",
     ("Install Flag", "not a number")),
    ("Display Date    : 09/24/94 07:00:00", "Display Date    : 9/24/94 7:00", ("MM/DD/YY HH:MM:SS",)),
    ("   User Input Flags: 1", "   User Input Flags: 3", ("User Input Flags", "0-1", "requires user input")),
    (r"\\CNSAPPS1\SMS_PKGD\BPC00010\ Type: 2", r"\\CNSAPPS1\SMS_PKGD\BPC00010\ Type: 9", ("server type is 1-7",)),
    ("   WCL Name        : Complete", "   Command Name    : Complete", ("unknown field 'Command Name'", "WCL Name")),
    ("   SiteID          : BPC\n   RequestID       : BPC001M", "   RequestID       : BPC001M",
     ("RequestID where PCMDUMP prints SiteID",)),
])
def test_bad_pcmdump_text_is_refused_at_its_line(tmp_path: Path, old, new, words):
    text = article_sample()
    assert old in text
    bad = text.replace(old, new, 1)
    changed = new.splitlines()[0]
    line = next(i for i, s in enumerate(bad.splitlines(), 1) if changed in s)
    assert 1 < line < len(bad.splitlines())
    p = tmp_path / "bad.txt"
    p.write_text(bad)
    for cmd in (["pcm", "dump"], ["pcm", "lint"], ["pcm", "convert"]):
        _refused(run_cli(*cmd, p), f"{p}:{line}: ", *words)


def test_a_binary_ins_file_is_refused_with_what_to_do(tmp_path: Path):
    p = tmp_path / "MDM00005.INS"
    p.write_bytes(b"\x06\x00BPC\x00\x00" + bytes(range(256)))
    _refused(run_cli("pcm", "dump", p), f"{p}:1: ", "PCMDUMP")


def test_bad_yaml_form_is_refused_at_its_line(tmp_path: Path):
    y = tmp_path / "r.yaml"
    y.write_text(yamlform.to_yaml(dumptext.parse(article_sample())).replace(
        "operating_system: [MACINTOSH]", "operating_system: [OS2]"))
    _refused(run_cli("pcm", "lint", y), f"{y}:", "unknown operating system 'OS2'", "MACINTOSH")
    line = next(i for i, s in enumerate(y.read_text().splitlines(), 1) if "OS2" in s)
    assert f"{y}:{line}:" in run_cli("pcm", "dump", y).err


def test_missing_file_and_bad_now(tmp_path: Path, sample: Path):
    _refused(run_cli("pcm", "dump", tmp_path / "nope.txt"), "nope.txt", "not found")
    _refused(run_cli("pcm", "lint", sample, "--now", "yesterday"), "--now", "YYYY-MM-DD")


def test_parse_errors_are_input_errors_not_crashes():
    with pytest.raises(InputError, match="no PCM records"):
        dumptext.parse("PCM Instruction File Dump Utility v1.0\n")


# --- any record PCMDUMP's layout can hold reads back as written ----------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from deployer.sms.pcm.record import PcmFile, PcmRecord, PcmServer  # noqa: E402

_text = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
_line = st.lists(_text, min_size=0, max_size=4).map(" ".join)
_date = st.one_of(st.none(), st.builds(
    lambda y, mo, d, h, mi, s: f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}",
    st.integers(1970, 2069), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
    st.integers(0, 99)))
_server = st.builds(PcmServer, path=_text.filter(lambda s: "Type:" not in s), type=st.integers(1, 7),
                    zone=st.one_of(st.none(), _text))
_record = st.builds(
    PcmRecord, pcm_version=_line.filter(bool), site_id=st.text("ABCXYZ019", min_size=3, max_size=3),
    request_id=_text, package_id=_text, job_id=_text, install_flag=st.integers(0, 2), install_by_date=_date,
    install_by_full=st.integers(0, 1), display_date=_date, display_full=st.integers(0, 1), expiration_date=_date,
    expiration_full=st.integers(0, 1), user_input_flags=st.integers(0, 1), operating_system=st.integers(0, 2**32 - 1),
    disk_usage=_line, run_command=_line, wcl_name=_line, servers=st.lists(_server, max_size=3), package_name=_line,
    comments=st.lists(_text, min_size=1, max_size=3).map("\n".join),
    reserved=st.lists(st.integers(0, 255), max_size=40).map(lambda b: " ".join(f"{x:02X}" for x in b)))


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.lists(_record, min_size=1, max_size=3), st.sampled_from(["lf", "crlf"]), st.booleans())
def test_any_record_reads_back_from_both_forms(records, newline, banner):
    f = PcmFile(file_name="x.ins", records=records, newline=newline, banner=banner)
    text = dumptext.render(f)
    assert dumptext.parse(text) == f
    y = yamlform.to_yaml(f)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f.yaml"
        p.write_text(y)
        assert yamlform.load(p) == f


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.data())
def test_mangled_pcmdump_output_is_read_or_refused_at_a_line(data):
    """Lines lost, doubled, swapped or garbled: a result, or an InputError naming file and line."""
    import tempfile

    lines = article_sample().split("\n")
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["delete", "double", "swap", "garble", "insert"]))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif op == "garble" and lines[i]:
            j = data.draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:j] + data.draw(st.text(max_size=3)) + lines[i][j + 1:]
        else:
            lines.insert(i, data.draw(st.text(max_size=30)))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "mangled.txt"
        p.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
        try:
            f = load(p)
        except InputError as exc:
            where = [exc] if not hasattr(exc, "errors") else exc.errors
            assert all(e.location is not None and e.location.file == str(p) for e in where), str(exc)
            assert all(e.location.line is not None for e in where if "no PCM records" not in str(e)), str(exc)
        else:
            assert dumptext.parse(dumptext.render(f)) == f
