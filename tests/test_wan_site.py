"""Round trips of a whole site over SMB 2/3, its three servers' shares on one Samba as
bench/wan.py serves them (one host, one account: the servers share one SMB session).

- The tree connects of the servers that share a session go out together: connecting the
  three-server site costs the round trips of connecting one server.
- A rollback of the whole site lists the touched folders of every server together (the
  leftovers' check: run/folders.py), not one round trip a server.
- A second run and verify of the whole site stay within their budgets (the deployer's own
  count in the JSON report; counts, never times): the Logon.srv and Helper.srv folders of
  every server are listed in one batch (Observer.prefetch_listings; the servers share one
  session, so one round trip for all), the shares connected in one round trip.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import Workspace
from deployer.model.inventory import load_inventory
from deployer.targets.connect import connect
from test_e2e_smb import SERVERS, cli, share_of, shares
from test_e2e_smb import dialect, site_root, site_samba, smb_ws  # noqa: F401 - the SMB site's fixtures

# the whole DEMO site's round trips (deployer's count; bench/wan.py shows the same at 50 ms):
SITE_SECOND_RUN_BUDGET = 23  # 32 when each share's tree connect and each Logon.srv folder's listing waited alone, 27 when each server's folders were listed in a round trip of their own
SITE_VERIFY_BUDGET = 18  # 27 and 22 before the same
SITE_ROLLBACK_BUDGET = 156  # 160 when each server's touched folders were listed in a round trip of its own (three times a rollback); 154 before copies identified by size and time were checked by a stat batch of their own (read in full before)


def _connect_round_trips(ws: Workspace, servers: list[str]) -> tuple[int, set[str]]:
    """Round trips of connecting the site with only `servers` over SMB (the rest on the mock),
    and the shares their session holds afterwards."""
    doc = json.loads((ws.path / "sites-smb.yaml").read_text())
    for name, server in doc["sites"]["DEMO"]["servers"].items():
        if name not in servers:
            server["files"] = "mock"
    path = ws.path / f"sites-smb-{len(servers)}.yaml"
    path.write_text(json.dumps(doc))
    conn = connect(load_inventory(path).site("DEMO"), warn=lambda _: None)
    try:
        links = {id(ep.files.link): ep.files.link for name, ep in conn.endpoints.items() if name in servers}
        assert len(links) == 1  # one host, one account: one session
        link = next(iter(links.values()))
        return sum(t.round_trips for t in link.meter.by_server.values()), set(link._trees)
    finally:
        conn.close()


def test_the_shares_of_one_session_are_connected_in_one_round_trip(smb_ws: Workspace):
    alone, shares = _connect_round_trips(smb_ws, ["DEMOSRV"])
    assert shares == {share_of("DEMOSRV").casefold()}
    every, shares = _connect_round_trips(smb_ws, list(SERVERS))
    assert shares == {share_of(n).casefold() for n in SERVERS}  # each server connected to its own share
    assert every == alone, (every, alone)  # two more when each tree connect waited for its answer


def test_a_missing_share_of_another_server_is_reported_by_that_server(smb_ws: Workspace):
    """A sibling's tree connect sent with the first share's fails on its own: the first server
    connects, and the server whose share is missing reports it (bad input, nothing touched)."""
    doc = json.loads((smb_ws.path / "sites-smb.yaml").read_text())
    doc["sites"]["DEMO"]["servers"]["DEMOAXP1"]["files"]["share"] = "NO_SUCH_SHARE"
    (smb_ws.path / "sites-smb.yaml").write_text(json.dumps(doc))
    before = smb_ws.state()
    r = cli(smb_ws, "apply", smb_ws.playbook, "--site", "DEMO", "--yes")
    assert r.code != 0 and "Traceback" not in r.text, r.text
    assert "NO_SUCH_SHARE" in r.text and "DEMOAXP1" in r.text, r.text
    assert smb_ws.state() == before


def test_second_run_and_verify_of_the_whole_site_stay_within_their_budgets(smb_ws: Workspace):
    first = cli(smb_ws, "apply", smb_ws.playbook, "--site", "DEMO", "--yes", "-f", "json")
    assert first.code == 0, first.text
    again = cli(smb_ws, "apply", smb_ws.playbook, "--site", "DEMO", "--yes", "-f", "json")
    assert again.code == 0, again.text
    second = json.loads(again.out)["traffic"]["total"]["round_trips"]
    v = cli(smb_ws, "verify", smb_ws.playbook, "--site", "DEMO", "-f", "json")
    assert v.code == 0, v.text
    verify = json.loads(v.out)["traffic"]["total"]["round_trips"]
    print(f"DEMO site round trips: second run {second}, verify {verify}")
    assert 0 < second <= SITE_SECOND_RUN_BUDGET
    assert 0 < verify <= SITE_VERIFY_BUDGET


def test_a_rollback_of_the_whole_site_lists_its_servers_folders_together(smb_ws: Workspace, site_root: Path):
    before = shares(site_root)
    assert cli(smb_ws, "apply", smb_ws.playbook, "--site", "DEMO", "--yes").code == 0
    rb = cli(smb_ws, "-v", "rollback", "--site", "DEMO", "--yes")
    assert rb.code == 0, rb.text
    assert shares(site_root) == before
    rt = int(re.findall(r"total: (\d+) round trips", rb.err)[-1])
    print("DEMO site rollback round trips:", rt)
    assert rt <= SITE_ROLLBACK_BUDGET
