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
