"""Round trips over SFTP as a budget (counted by the connection's meter: each time deployer
waits for an answer after sending, never timings): the DEMO site over a real OpenSSH server,
apply, a second run and verify. What keeps them low: LSTATs of many paths in flight at once
(stat_many), a folder listed once per session and kept up to date with deployer's own changes,
a listing in two round trips, a file read without an FSTAT first, read_file's stat and content
with one lookup. The durability and rollback guarantees are test_e2e_ssh.py's and
test_ssh_target.py's, unchanged.
"""

from __future__ import annotations

import re

from conftest import Workspace
from servers.sshd import SshTestServer
from test_e2e_ssh import SITE, ssh_inventory


def _round_trips(err: str) -> dict[str, int]:
    """Each server's round trips from -v's traffic line on stderr."""
    found = dict(re.findall(r"(DEMO\w+): (\d+) round trips", err))
    assert found, err[-2000:]
    return {k: int(v) for k, v in found.items()}


def test_apply_second_run_and_verify_over_sftp_stay_within_their_round_trip_budgets(ws: Workspace,
                                                                                     sshd: SshTestServer):
    inventory = ssh_inventory(ws, sshd)
    before = ws.state()
    got = {}
    for label, args in [("apply", ("apply", ws.playbook)), ("second run", ("apply", ws.playbook)),
                        ("verify", ("verify", ws.playbook))]:
        r = ws.cli("-v", *args, "--site", SITE, *(("--yes",) if args[0] == "apply" else ()), "-i", inventory)
        assert r.code == 0, r.text
        got[label] = _round_trips(r.err)
    print(got)
    for label, budget in BUDGETS.items():
        assert sum(got[label].values()) <= budget, (label, got[label])
    r = ws.cli("rollback", "--site", SITE, "--yes", "-i", inventory)
    assert r.code == 0, r.text
    assert ws.state() == before


# the three servers together (1,598, 239 and 220 now); before this work (one LSTAT at a time, a
# listing again after each own change, four round trips a listing, an FSTAT before each read):
# apply 3,044, second run 520, verify 433
BUDGETS = {"apply": 1650, "second run": 250, "verify": 230}
