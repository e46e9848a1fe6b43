"""The peer benchmark's deployer case (bench/peers/): the harness runs it as it runs pyinfra
and Ansible, and its verdict (bench/peers/deployer/verify_lab.py) fails whatever a broken
run would leave, so an `ok` row means the fleet really was patched, or left alone.

Everything runs as the benchmark does: bash, GNU time, the deployer console script, as
processes; no ansible or pyinfra is needed (TOOLS=deployer)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "bench" / "peers"
DEPLOYER = Path(sys.executable).parent / "deployer"
COLUMNS = ["tool", "phase", "N", "rep", "wall_s", "maxrss_MB", "rc", "verify", "changed"]


def bench_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PEER_VENV", "TOOLS", "REPS", "LOGS")}
    return {**env, "DEPLOYER": str(DEPLOYER), **extra}


def run_peers(tmp_path: Path, n: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(PEERS / "run_peers.sh"), str(tmp_path / "fleet"), n], capture_output=True,
                          text=True, timeout=300, env=bench_env(LOGS=str(tmp_path / "logs"), **extra))


def verify_lab(fleet: Path, expect: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PEERS / "deployer" / "verify_lab.py"), str(fleet), expect],
                          capture_output=True, text=True, timeout=120)


def deployer(fleet: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DEPLOYER), *args, str(fleet / "playbooks" / "q241656.yaml"), "-i",
                           str(fleet / "sites.yaml"), "--all"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "XDG_STATE_HOME": str(fleet / "state")})


@pytest.mark.slow  # started first (tests/conftest.py)
@pytest.mark.parametrize("n", [1, 2])  # one site selected prints the one-site output
def test_deployer_case_runs_every_phase_and_each_verdict_holds(tmp_path: Path, n: int) -> None:
    r = run_peers(tmp_path, str(n), TOOLS="deployer", REPS="1")
    assert r.returncode == 0, r.stdout + r.stderr
    tsvs = list((tmp_path / "logs").glob(f"results-n{n}-*.tsv"))
    assert len(tsvs) == 1, tsvs
    rows = [dict(zip(COLUMNS, line.split("\t"))) for line in tsvs[0].read_text().splitlines()]
    assert [(x["tool"], x["phase"], x["N"], x["rep"]) for x in rows] == [
        ("deployer", "apply", str(n), "1"), ("deployer", "again", str(n), "1"), ("deployer", "dry", str(n), "1")]
    by_phase = {x["phase"]: x for x in rows}
    # apply: every site done, patched; again: nothing done, still patched; dry: pristine
    assert [by_phase[p]["rc"] for p in ("apply", "again", "dry")] == ["0", "0", "0"]
    assert [by_phase[p]["verify"] for p in ("apply", "again", "dry")] == ["ok", "ok", "ok"]
    assert [by_phase[p]["changed"] for p in ("apply", "again", "dry")] == [str(n), "0", "-"]
    for x in rows:
        assert float(x["wall_s"]) > 0 and int(x["maxrss_MB"]) > 0, x
    assert "medians:" in r.stdout and f"deployer apply  N={n:>4} reps=1" in r.stdout
    # the deployer's own logs and fleet journal went into the fleet folder, which is gone
    assert not (tmp_path / "fleet").exists()
    assert "Q241656" in (tmp_path / "logs" / f"deployer-apply-n{n}-r1.log").read_text()


def test_deployer_alone_needs_no_peer_venv_but_a_deployer(tmp_path: Path) -> None:
    r = run_peers(tmp_path, "2", TOOLS="deployer", DEPLOYER=str(tmp_path / "nowhere" / "deployer"))
    assert r.returncode == 2
    assert f"no deployer at {tmp_path / 'nowhere' / 'deployer'}" in r.stderr
    r = run_peers(tmp_path, "2", TOOLS="pyinfra")
    assert r.returncode == 2 and "set PEER_VENV to a venv holding ansible-core and pyinfra (unset" in r.stderr
    r = run_peers(tmp_path, "2", TOOLS="deployer ansible", PEER_VENV=str(tmp_path))
    assert r.returncode == 2 and f"({tmp_path} has no bin/python)" in r.stderr
    r = run_peers(tmp_path, "ten", TOOLS="deployer")
    assert r.returncode == 2 and "N must be a number of sites (1 or more), not 'ten'" in r.stderr
    r = run_peers(tmp_path, "1", TOOLS="deployer chef")
    assert r.returncode == 2 and "unknown tool 'chef' in TOOLS (ansible, pyinfra, deployer)" in r.stderr
    # refused before anything was made
    assert not (tmp_path / "fleet").exists() and not (tmp_path / "logs").exists()


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-site deployer fleet as `fresh deployer` makes it, checked unpatched, then applied."""
    fleet = tmp_path_factory.mktemp("peer-lab") / "fleet"
    subprocess.run([sys.executable, str(PEERS / "make_fleet.py"), str(fleet), "0"], check=True)
    subprocess.run([sys.executable, str(PEERS / "deployer" / "make_lab.py"), str(fleet), "2", str(DEPLOYER)],
                   check=True)
    fresh = verify_lab(fleet, "patched")
    assert fresh.returncode == 1
    # an untouched site fails every check: the files, their backups, the sendcode
    assert "verify patched: 2 sites, 38 problems" in fresh.stdout
    assert "control code 194 sent to SMS_SITE_CONFIG_MANAGER 0 times" in fresh.stdout
    assert verify_lab(fleet, "pristine").returncode == 0
    r = deployer(fleet, "apply", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    return fleet


@pytest.fixture
def fleet(applied: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "fleet"
    shutil.copytree(applied, copy, symlinks=True)
    return copy


def installed(fleet: Path, *rel: str) -> Path:
    return fleet / "lab" / "SITE002" / "SRV002" / "C" / "SMS" / Path(*rel)


def test_applied_fleet_is_patched_and_no_longer_pristine(fleet: Path) -> None:
    r = verify_lab(fleet, "patched")
    assert (r.returncode, r.stdout) == (0, "verify patched: 2 sites, 0 problems\n")
    r = verify_lab(fleet, "pristine")
    assert r.returncode == 1 and "SITE001: added SITE001/SRV001/C/SMS/.deployer/runs/" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("verify pristine: 2 sites, ")


def test_a_byte_changed_behind_size_and_date_fails(fleet: Path) -> None:
    path = installed(fleet, "SITE.SRV", "ALPHA.BIN", "PCMSVC32.EXE")
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = verify_lab(fleet, "patched")
    assert r.returncode == 1
    assert "SITE002: SMS/Site.srv/alpha.bin/Pcmsvc32.exe: got" in r.stdout
    assert "verify patched: 2 sites, 1 problems" in r.stdout


def test_a_missing_backup_fails(fleet: Path) -> None:
    runs = installed(fleet, ".deployer", "runs")
    # every backup of it: the site server's own LOGON.SRV copy is backed up too (issue 19 item 17)
    for backup in runs.glob("*/backup/*"):
        if backup.name.casefold().endswith("-pcmdos_4.exe"):
            backup.unlink()
    r = verify_lab(fleet, "patched")
    assert r.returncode == 1
    assert r.stdout.endswith("SITE002: no backup of SMS/Site.srv/Maincfg.box/Client.src/x86.bin/Pcmdos_4.exe\n"
                             "verify patched: 2 sites, 1 problems\n")


def test_a_stopped_service_and_a_second_sendcode_fail(fleet: Path) -> None:
    scm = fleet / "lab" / "SITE001" / "SRV001" / "scm.json"
    state = json.loads(scm.read_text())
    state["services"]["SMS_EXECUTIVE"]["state"] = "stopped"
    scm.write_text(json.dumps(state))
    log = fleet / "lab" / "SITE002" / "SRV002" / "scm.log"
    line = next(x for x in log.read_text().splitlines() if "control 194" in x)
    with log.open("a") as f:
        f.write(line + "\n")
    r = verify_lab(fleet, "patched")
    assert r.returncode == 1
    assert "SITE001: SRV001: services not running: SMS_EXECUTIVE" in r.stdout
    assert "SITE002: control code 194 sent to SMS_SITE_CONFIG_MANAGER 2 times, want once" in r.stdout


def test_a_dry_run_that_wrote_anything_is_not_pristine(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    subprocess.run([sys.executable, str(PEERS / "make_fleet.py"), str(fleet), "0"], check=True)
    subprocess.run([sys.executable, str(PEERS / "deployer" / "make_lab.py"), str(fleet), "1", str(DEPLOYER)],
                   check=True)
    r = deployer(fleet, "plan")
    assert r.returncode == 0, r.stdout + r.stderr
    assert verify_lab(fleet, "pristine").returncode == 0
    # what a careless dry run might do: touch a date, leave a file behind
    sms = fleet / "lab" / "SITE001" / "SRV001" / "C" / "SMS"
    os.utime(sms / "SYSTEM.MAP", ns=(0, 0))
    (sms / "LOGS" / "PLAN.TMP").write_bytes(b"")
    r = verify_lab(fleet, "pristine")
    assert r.returncode == 1
    assert "SITE001: added SITE001/SRV001/C/SMS/LOGS/PLAN.TMP" in r.stdout
    assert "SITE001: changed SITE001/SRV001/C/SMS/SYSTEM.MAP" in r.stdout
