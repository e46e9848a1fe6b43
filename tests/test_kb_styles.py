"""Styles the issue lists that the sample articles do not all show, each in a small
article written for the test: placeholder times, impossible dates, a build note in the
version, platforms that are not a CPU, blank sizes, sub-headings by language, a NOTE
between the sentence and the header, other sentences, a markdown pipe table."""

from __future__ import annotations

from datetime import date, time

from deployer.kb import parse_article


def article(body: str, sentence: str = "The English version of this fix should have the following file "
                                          "attributes or later:") -> str:
    return ("Article: Q999999\n\nRESOLUTION\n==========\n\n" + sentence + "\n\n" + body
            + "\n\nSTATUS\n======\n\nMicrosoft has confirmed this to be a problem.\n")


def by_line(result):
    return {f.line: f for f in result.manifest.files}


def test_placeholder_time_blank_size_and_build_note():
    result = parse_article(article(
        "   Date      Time    Version          Size      File name     Platform\n"
        "   ------------------------------------------------------------------\n"
        "   3/1/2001  xx:xx   1.2(build 786)   87,040    Smsexec.exe   x86\n"
        "   3/1/2001  10:12a  1.2(build 786)             Smsexec.exe   Alpha\n"), "Q999999.txt")
    assert result.review == 0
    rows = by_line(result)
    a, b = rows[10], rows[11]
    assert (a.time, a.version, a.size.value) == (None, "1.2 (build 786)", 87_040)
    assert (b.time, b.size, b.platform.key) == (time(10, 12), None, "alpha")
    assert "time 'xx:xx' in the article: none listed" in result.yaml
    assert a.loose() == ["no time listed: date only", "version 1.2 (build 786): dotted part only"]


def test_impossible_date_is_flagged_not_guessed():
    result = parse_article(article(
        "   Date       Time    Size     File name    Platform\n"
        "   -------------------------------------------------\n"
        "   12/20/199  4:05p   53,520   Siteins.exe  Intel\n"
        "   12/20/1999 4:05p   91,408   Siteins.exe  Alpha\n"), "Q999999.txt")
    assert [(f.line, "12/20/199" in f.text) for f in result.flagged] == [(10, True)]
    assert [f.line for f in result.manifest.files] == [11]


def test_platforms_that_are_not_a_cpu_and_intel_in_brackets():
    result = parse_article(article(
        "   Date      Time    Size     File name    Platform\n"
        "   ------------------------------------------------\n"
        "   1-Mar-2001  9:00p  16,256b   Setup.exe    (x86 and Alpha)\n"
        "   1-Mar-2001  9:00p  283,104 bytes  Client.exe   Windows 95 OSR2\n"
        "   1-Mar-2001  9:01p  87.1 KB  Base.dll     (Intel)\n"), "Q999999.txt")
    rows = by_line(result)
    assert (rows[10].platform.key, rows[11].platform.key, rows[12].platform.key) == ("unknown", "unknown", "x86")
    assert (rows[10].size.value, rows[11].size.value, str(rows[12].size)) == (16_256, 283_104, "87.1 KB")
    assert "platform '(x86 and Alpha)' is not one SMS has a folder for" in result.yaml
    assert "platform 'Windows 95 OSR2' is not one SMS has a folder for" in result.yaml


def test_language_sub_headings_and_blank_lines_inside_one_table():
    result = parse_article(article(
        "   Date         Time    Size     File name     Platform\n"
        "   ----------------------------------------------------\n"
        "   French files (0000040C):\n"
        "\n"
        "   08-May-01    11:20   54,544   Smsapm32.dll  x86\n"
        "\n"
        "   08-May-01    11:21   95,504   Smsapm32.dll  Alpha\n"
        "\n"
        "   German files (00000407):\n"
        "   October 6, 2000  11:22   54,032   Smsapm32.dll  x86\n"
        "   March 1, 2001    11:23   95,248   Smsapm32.dll  Alpha\n"), "Q999999.txt")
    m = result.manifest
    assert [(g.title, g.line, len(g.files)) for g in m.groups] == [
        ("French files (0000040C):", 10, 2), ("German files (00000407):", 16, 2)]
    assert [f.date for f in m.files] == [date(2001, 5, 8)] * 2 + [date(2000, 10, 6), date(2001, 3, 1)]
    assert result.review == 0


def test_a_note_between_the_sentence_and_the_header_and_other_sentences():
    body = ("NOTE: The files are installed by the Setup program; do not copy them by hand.\n\n"
            "   Date        Time   Size    File name  Platform\n"
            "   ----------------------------------------------\n"
            "   05/15/2000  6:58p  535,616  Base.dll   Intel\n")
    for sentence, rule in [
        ("The English version of this fix has the file attributes (or later) that are listed in the following "
         "table.", "or-later"),
        ("After you apply the fix, the files should have the following timestamps:", "exact"),
    ]:
        result = parse_article(article(body, sentence), "Q999999.txt")
        assert result.manifest.rule == rule and result.imported == 1
        assert result.manifest.files[0].platform.key == "x86"


def test_a_markdown_pipe_table():
    result = parse_article(article(
        "| Date | Time | Version | Size | File name | Platform |\n"
        "|------|------|---------|------|-----------|----------|\n"
        "| 04/22/2000 | 11:01a | 1.2.0.0 | 800,528 | Pcmsvc32.exe | Alpha |\n"
        "| 04/22/2000 | 10:58a | 1.2.0.0 | 270,304 | Pcmsvc32.exe | I386 |\n"), "Q999999.md")
    assert [(f.name, f.platform.key, f.version, f.size.value) for f in result.manifest.files] == [
        ("Pcmsvc32.exe", "alpha", "1.2.0.0", 800_528), ("Pcmsvc32.exe", "x86", "1.2.0.0", 270_304)]
    assert result.review == 0


def test_a_platform_column_blank_under_a_platform_heading():
    result = parse_article(article(
        "   Date      Time    Size     File name     Platform\n"
        "   -------------------------------------------------\n"
        "   Alpha-based computers:\n"
        "   09/10/99  7:06p   800,528  Pcmsvc32.exe\n"
        "   09/10/99  7:05p   1,174,288 Pcmwin32.exe\n"), "Q999999.txt")
    assert [f.platform.key for f in result.manifest.files] == ["alpha", "alpha"]


def test_a_column_deployer_does_not_read_and_a_row_without_a_file_name():
    result = parse_article(article(
        "   Date      Time    Size (bytes)  File name     Platform  Path\n"
        "   ------------------------------------------------------------------\n"
        "   09/10/99  7:06p   800,528       Pcmsvc32.exe  Alpha     Site.srv\\Alpha.bin\n"
        "   09/10/99  7:05p   1,174,288\n"), "Q999999.txt")
    assert [(f.name, f.platform.key, f.size.value) for f in result.manifest.files] == [
        ("Pcmsvc32.exe", "alpha", 800_528)]
    assert "# Path: Site.srv\\Alpha.bin" in result.yaml
    assert [(f.line, f.reason) for f in result.flagged] == [(11, "no file name in the row")]


def test_a_note_that_mentions_the_following_files_is_not_taken_for_the_sentence():
    result = parse_article(article(
        "NOTE: The following files must be copied while the services are stopped.\n\n"
        "   Date        Time   Size    File name  Platform\n"
        "   ----------------------------------------------\n"
        "   05/15/2000  6:58p  535,616  Base.dll   Intel\n"), "Q999999.txt")
    assert result.manifest.rule == "or-later" and result.imported == 1
    assert "# NOTE" not in result.yaml
