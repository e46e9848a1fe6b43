"""A password on a command line is masked in the log and every message whatever characters it holds:
the `/`, `+` and `=` of a generated (base64) password, an `@`, a space in a quoted argument
(issue 19, item 14: "No secret in any log, whatever the command line")."""

from __future__ import annotations

import pytest

from conftest import Workspace, run_cli

TAIL = "Qz9-tail7"  # the part after the character that used to end the masking: never printed


@pytest.mark.parametrize("url", [f"redis://:Zm9v/YmFy+{TAIL}@127.0.0.1:1/0",  # base64: '/' and '+'
                                 f"redis://admin:Zm9v/{TAIL}=@127.0.0.1:1/0",
                                 f"redis://:p@ss{TAIL}@127.0.0.1:1/0",  # an '@' in the password
                                 f"rediss://:a b{TAIL}@127.0.0.1:1/0"])  # a space, one quoted argument
def test_a_broker_url_password_of_any_characters_reaches_no_log_or_message(ws: Workspace, url: str):
    log = ws.path / "apply.log"
    r = ws.cli("--log", log, "-v", "apply", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "--yes",
               "--broker", url)
    assert r.code == 2, r.text
    assert "Traceback" not in r.text
    assert log.is_file() and "apply" in log.read_text()
    assert TAIL not in log.read_text(), log.read_text()
    assert TAIL not in r.text, r.text


@pytest.mark.parametrize("args", [("--password", f"two words{TAIL}"), (f"--smb-password=two words{TAIL}",),
                                  (f"DEPLOYER_BROKER_PASSWORD=two words{TAIL}",), ("--api-token", f"'{TAIL}'"),
                                  ("--password", f'"{TAIL}"')])
def test_a_password_like_argument_with_spaces_or_quotes_is_not_logged(tmp_path, args):
    log = tmp_path / "plan.log"
    r = run_cli("--log", log, "plan", tmp_path / "nothing.yaml", *args, cwd=tmp_path)
    assert r.code == 2, r.text
    assert log.is_file()
    assert TAIL not in log.read_text(), log.read_text()
    assert TAIL not in r.text, r.text


def _scrub_by_the_patterns(text: str) -> str:
    from deployer.model import redact as r

    text = r._URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{r.MASK}@", text)
    text = r._OPTION.sub(lambda m: f"{m.group(1)}{m.group(2)}{r.MASK}", text)
    return r._ASSIGNMENT.sub(lambda m: f"{m.group(1)}={r.MASK}", text)


@pytest.mark.parametrize("text", [
    "--password hunter22", "--PASSWORD=hunter22", "DB_PASSWD=x9x9x9", "--passphrase 'two words'",
    "--api-key abcdef", "--apikey=abcdef", "X_API_KEY=abcdef", "--token t0k3n", "MY_SECRET=s3cr3t",
    "redis://:Zm9v/YmFy@host:6379/0", "HTTPS://user:pw@example",
    "--ap\u0131-key abcdef",  # dotless i: (?i) reads it as i, casefold keeps it
    "--AP\u0130-KEY abcdef",  # dotted capital I: casefolds to i and a combining dot
    "--pa\u017f\u017fword ssss1234",  # long s: (?i) reads it as s
    "--TO\u212aEN tttt1234",  # Kelvin sign: (?i) reads it as K
    'journal 20261207T1854Z-4a5f: {"event": "backup", "path": "SITE.SRV\\\\X86.BIN\\\\PCMSVC32.EXE"}',
])
def test_scrub_masks_exactly_what_its_patterns_mask(text):
    from deployer.model.redact import scrub

    assert scrub(text) == _scrub_by_the_patterns(text)


def test_a_log_line_without_a_secret_shape_word_is_not_run_through_the_patterns(monkeypatch):
    """Most of a fleet's log lines are journal records: no pattern is tried on them (the three
    patterns were 3% of a 100-site apply's CPU)."""
    from deployer.model import redact as r

    tried = []

    class Counted:
        def __init__(self, pattern):
            self.pattern = pattern

        def sub(self, *args):
            tried.append(self.pattern.pattern)
            return self.pattern.sub(*args)

    for name in ("_URL_PASSWORD", "_OPTION", "_ASSIGNMENT"):
        monkeypatch.setattr(r, name, Counted(getattr(r, name)))
    line = ('journal 20261207T185432Z-4a5f: {"event": "backup", "server": "SRV001", "sha256": "' + "a" * 64
            + '", "path": "SITE.SRV\\\\X86.BIN\\\\PCMSVC32.EXE"}')
    assert r.scrub(line) == line
    assert tried == []
    assert r.scrub(line + " --token abcdefgh").endswith("--token ********")
    assert len(tried) == 3
