"""Issue 19 item 24: a number typed on the command line is ASCII digits. '²' (str.isdigit says
yes, int says no: it was a traceback), '٣' (int and \\d say 3), '1_0' (int says 10) and 'nan'
are bad input: exit 2, a message saying what is allowed, nothing touched."""

from __future__ import annotations

import pytest

from conftest import Workspace, snapshot

ODD = ["²", "٣", "1_0"]  # superscript (isdigit yes, int no), Arabic-Indic (int and \d: 3), underscore (int: 10)


@pytest.mark.parametrize("value", ODD)
@pytest.mark.parametrize("args", [
    ("apply", "{pb}", "--site", "DEMO", "--yes", "--batch", "{v}"),
    ("apply", "{pb}", "--site", "DEMO", "--yes", "--max-fail", "{v}"),
    ("apply", "{pb}", "--site", "DEMO", "--yes", "--max-fail", "{v}%"),
    ("apply", "{pb}", "--site", "DEMO", "--yes", "--forks", "{v}"),
    ("apply", "{pb}", "--site", "DEMO", "--yes", "--canary", "{v}"),
    ("apply", "{pb}", "--site", "DEMO", "--yes", "--max-per-host", "{v}"),
    ("apply", "{pb}", "--site", "DEMO", "--yes", "--worker-wait", "{v}"),
    ("prune", "--site", "DEMO", "--yes", "--keep", "{v}"),
    ("prune", "--site", "DEMO", "--yes", "--keep", "1", "--older-than", "{v}d"),
    ("sendcode", "--site", "DEMO", "SMS_EXECUTIVE", "{v}"),
    ("worker", "--region", "EU", "--concurrency", "{v}"),
], ids=lambda a: "-".join(x for x in a if x.startswith("--") and x != "--yes" and x != "--site") or a[0])
def test_a_number_not_in_ascii_digits_is_bad_input(ws: Workspace, args: tuple[str, ...], value: str):
    before = snapshot(ws.site, include_state=True)
    argv = [a.format(pb=ws.playbook, v=value) for a in args]
    r = ws.cli(*argv, "-i", ws.inventory) if argv[0] != "worker" else ws.cli(*argv)
    assert r.code == 2, r.text
    assert "Traceback" not in r.text
    assert "digits 0-9" in r.err or "whole number" in r.err or "is not an age" in r.err, r.err
    assert snapshot(ws.site, include_state=True) == before


def test_worker_wait_nan_is_refused(ws: Workspace):
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "--worker-wait", "nan", "-i", ws.inventory)
    assert r.code == 2 and "not a number" in r.err, r.text
