"""Bounded sessions per server host, one credential cache per process, bytes moved.

Fleets here are N copies of a one-server lab site (deployer/simulator/fleet_lab.py) whose SMS roots
are served by ONE real server: a private smbd exporting each site's root as its own share,
or a private sshd whose SFTP reaches each root. So every site of the fleet names the same
host:port, as sites sharing a logon or distribution server do. Services stay on the mock
SCM. Two witnesses count sessions: the limiter's own peak, and, independently, a fail point
that counts the sites inside their runs at the same moment.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from hotfix import vendor_payloads
from conftest import copy_workspace, lab_project, run_cli, sigint_once, snapshot
from deployer.targets import credentials
from deployer import failpoints
from deployer.model import secrets
from deployer.simulator.fleet_lab import site_names
from deployer.run.context import Cancelled, CancelToken
from deployer.model.secrets import SecretSource
from deployer.targets import host_limits
from deployer.targets.host_limits import HostKey, HostLimiter, normalize_host
from servers.samba import Samba
from servers.sshd import SshTestServer

N = 4
NAMES = site_names(N)


def root_of(base: Path, name: str) -> Path:
    return base / "lab" / name / f"SRV{name[-3:]}" / "C" / "SMS"


@pytest.fixture(scope="module")
def lab_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = lab_project(tmp_path_factory.mktemp("hostlimits-template"), N)
    vendor_payloads(base / "payloads")  # real servers take the vendor's files, never lab stand-ins
    return base


@pytest.fixture
def lab(lab_template: Path, tmp_path: Path) -> Path:
    return copy_workspace(lab_template, tmp_path / "fleet")  # the vendor payloads shared: runs only read them


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Tests run the CLI in this process: each starts with an empty credential cache and peaks."""
    credentials.CACHE.clear()
    host_limits.LIMITER.peak.clear()
    yield
    host_limits.configure(host_limits.DEFAULT_MAX_PER_HOST)


@pytest.fixture
def smb_lab(lab: Path, tmp_path: Path):
    """The lab fleet with every site's files on one smbd, the password in one private file."""
    shares = {f"{name}_SMS": root_of(lab, name) for name in NAMES}
    server = Samba(tmp_path / "smbd", shares).start()
    pw = tmp_path / "secret" / "fleet.pw"
    pw.parent.mkdir()
    server.fleet_inventory(lab, NAMES, pw, timeout=20)
    try:
        yield lab, server, pw
    finally:
        server.stop()


@pytest.fixture
def ssh_lab(lab: Path, sshd: SshTestServer) -> Path:
    inv = yaml.safe_load((lab / "sites.yaml").read_text())
    for name in NAMES:
        srv = inv["sites"][name]["servers"][f"SRV{name[-3:]}"]
        srv["files"] = {"transport": "ssh", "root": str(root_of(lab, name)), **sshd.settings()}
        srv["services"] = "mock"
    (lab / "sites-ssh.yaml").write_text(yaml.safe_dump(inv, sort_keys=False))
    return lab


def apply(lab: Path, inventory: str, *args: str):
    return run_cli("apply", lab / "playbooks" / "q241656.yaml", "--all", "--yes", "-i", lab / inventory,
                   "--fleet-dir", lab / "fleets", *args, cwd=lab)


class Inside:
    """Counts the sites inside their runs at once, from a fail point each run passes."""

    def __init__(self, wait_for: int = 0):
        self.now = self.peak = 0
        self.cond = threading.Condition()
        self.wait_for = wait_for

    def __call__(self, _name: str) -> None:
        with self.cond:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.cond.notify_all()
            if self.wait_for:  # give the others time to arrive: a bound that lets them in is seen
                self.cond.wait_for(lambda: self.now >= self.wait_for, timeout=2)
        with self.cond:
            self.now -= 1


class SambaSessions:
    """Samba's own count of the sessions open at once (smbstatus, polled while a command runs):
    the server's word, independent of deployer. A poll can miss a session shorter than its
    interval, never invent one, so the peak it sees is at most the true peak."""

    def __init__(self, samba: Samba):
        self.samba, self.peak, self._stop = samba, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["smbstatus", "-s", str(self.samba.conf), "-b", "--json"], capture_output=True,
                                 text=True, check=True).stdout
            self.peak = max(self.peak, len(json.loads(out).get("sessions") or {}))
            self._stop.wait(0.05)

    def __enter__(self) -> "SambaSessions":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def written_bytes(lab: Path, before: dict, after: dict) -> int:
    """Bytes of the payloads deployer wrote to a site: each file that now holds a payload's
    content and did not before. (Other files change on the server itself: the site reset
    copies Site.srv to Helper.srv, Maintenance Manager rewrites the copy lists and copies the
    client files to the site server's own LOGON.SRV.)"""
    payloads = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (lab / "payloads" / "q241656").rglob("*")
                if p.is_file()}
    return sum(size for path, (size, _, sha) in after.items()
               if not {"helper.srv", "logon.srv"} & set(Path(str(path).casefold()).parts) and sha in payloads
               and (path not in before or before[path][2] != sha))


# --- the bound on real servers --------------------------------------------------------------------


@pytest.mark.slow  # started first (tests/conftest.py)
def test_smb_fleet_with_max_per_host_1_opens_one_session_at_a_time(smb_lab, monkeypatch):
    lab, server, pw = smb_lab
    reads: list[Path] = []
    real = secrets.read_secret_file
    monkeypatch.setattr(secrets, "read_secret_file", lambda p, what: reads.append(p) or real(p, what))
    inside = Inside(wait_for=2)
    failpoints.arm("apply.action.1.before", "call", inside)
    before = {n: snapshot(root_of(lab, n)) for n in NAMES}

    with SambaSessions(server) as seen:
        r = apply(lab, "sites-smb.yaml", "--forks", "4", "--max-per-host", "1", "-f", "json", "--report",
                  lab / "fleet.json")
    assert r.code == 0, r.text
    assert seen.peak == 1  # Samba never had two of our sessions open
    data = json.loads((lab / "fleet.json").read_text())  # -f json --report FILE: the JSON report goes to FILE
    assert data["counts"]["done"] == N
    key = HostKey("127.0.0.1", server.port)
    assert host_limits.LIMITER.peak[key] == 1
    assert inside.peak == 1  # sites waited for each other although four threads were free
    assert host_limits.LIMITER.open_now(key) == 0  # every slot given back
    # the password file was read once for the whole fleet, not once per site
    assert reads == [pw.resolve()]
    # what the sites were sent is what landed on their shares
    for site in data["sites"]:
        assert site["bytes"] == written_bytes(lab, before[site["site"]], snapshot(root_of(lab, site["site"])))
        assert site["bytes"] > 0
    assert data["bytes"] == sum(s["bytes"] for s in data["sites"])
    journal = json.loads(next((lab / "fleets").glob("*.json")).read_text())
    assert journal["options"]["max_per_host"] == 1
    # and the password is nowhere
    logs = "".join(p.read_text() for p in Path(os.environ["XDG_STATE_HOME"]).rglob("*.log"))
    for text in (r.out, r.err, (lab / "fleet.json").read_text(), json.dumps(journal), logs):
        assert server.password not in text


def test_smb_fleet_with_max_per_host_2_runs_two_sites_at_once(smb_lab):
    """The control: the same fleet with a bound of 2 does overlap, so the test above can fail."""
    lab, server, _ = smb_lab
    inside = Inside(wait_for=2)
    failpoints.arm("apply.action.1.before", "call", inside)
    with SambaSessions(server) as seen:
        r = apply(lab, "sites-smb.yaml", "--forks", "4", "--max-per-host", "2")
    assert r.code == 0, r.text
    assert inside.peak == 2 and seen.peak == 2
    assert host_limits.LIMITER.peak[HostKey("127.0.0.1", server.port)] == 2


def test_ctrl_c_ends_the_wait_of_sites_queued_for_a_busy_host(smb_lab):
    """SIGINT while one site works on the host and three wait for it: the working site rolls
    back, the waiting ones end at once, not started, their shares untouched."""
    lab, server, _ = smb_lab
    before = {n: snapshot(root_of(lab, n)) for n in NAMES}
    interrupt = sigint_once()
    failpoints.arm("apply.action.3.before", "call", interrupt)
    r = apply(lab, "sites-smb.yaml", "--forks", "4", "--max-per-host", "1", "-f", "json")
    failpoints.reset()
    assert r.code == 1, r.text
    sites = {s["site"]: s for s in json.loads(r.out)["sites"]}
    assert [s["state"] for s in sites.values()].count("failed") == 1
    waited = [s for s in sites.values() if s["state"] == "not_started"]
    assert len(waited) == N - 1
    for s in waited:
        assert f"while waiting for a free session to 127.0.0.1:{server.port}" in s["message"]
        assert s["bytes"] == 0
    assert {n: snapshot(root_of(lab, n)) for n in NAMES} == before  # the failed one rolled back too
    assert host_limits.LIMITER.open_now(HostKey("127.0.0.1", server.port)) == 0


@pytest.mark.slow  # started first (tests/conftest.py)
def test_ssh_fleet_with_max_per_host_1_opens_one_session_at_a_time(ssh_lab: Path, sshd: SshTestServer):
    inside = Inside(wait_for=2)
    failpoints.arm("apply.action.1.before", "call", inside)
    r = apply(ssh_lab, "sites-ssh.yaml", "--forks", "4", "--max-per-host", "1", "-f", "json")
    assert r.code == 0, r.text
    data = json.loads(r.out)
    assert data["counts"]["done"] == N and data["bytes"] > 0
    assert host_limits.LIMITER.peak[HostKey("127.0.0.1", sshd.port)] == 1
    assert inside.peak == 1


def test_mock_sites_are_not_bounded(lab: Path):
    inside = Inside(wait_for=4)
    failpoints.arm("apply.action.1.before", "call", inside)
    r = apply(lab, "sites.yaml", "--forks", "4", "--max-per-host", "1")
    assert r.code == 0, r.text
    assert inside.peak == 4
    assert not host_limits.LIMITER.peak


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_a_bad_max_per_host_is_refused_before_anything(lab: Path, value: str):
    r = apply(lab, "sites.yaml", "--max-per-host", value)
    assert r.code == 2, r.text
    assert "--max-per-host" in r.err and "Traceback" not in r.err
    assert not list(lab.glob("lab/*/*/C/SMS/.deployer"))


# --- bytes moved -----------------------------------------------------------------------------------


def test_the_fleet_report_counts_the_payload_bytes_written_and_a_second_run_none(lab: Path):
    before = {n: snapshot(root_of(lab, n)) for n in NAMES}
    r = apply(lab, "sites.yaml", "-f", "json")
    assert r.code == 0, r.text
    data = json.loads(r.out)
    for site in data["sites"]:
        written = written_bytes(lab, before[site["site"]], snapshot(root_of(lab, site["site"])))
        assert written > 0 and site["bytes"] == written
    assert data["bytes"] == sum(s["bytes"] for s in data["sites"])

    again = apply(lab, "sites.yaml", "-f", "json")
    assert again.code == 0, again.text
    data = json.loads(again.out)
    assert data["counts"]["nothing"] == N
    assert data["bytes"] == 0 and all(s["bytes"] == 0 for s in data["sites"])


def test_piped_lines_and_totals_say_the_bytes_uploaded(lab: Path):
    from deployer.run.prune import human

    before = {n: snapshot(root_of(lab, n)) for n in NAMES}
    r = apply(lab, "sites.yaml")  # piped: one plain line per site, then the totals
    assert r.code == 0, r.text
    lines = {ln.split(":", 1)[0]: ln for ln in r.out.splitlines() if ln.startswith("SITE0")}
    total = 0
    for name in NAMES:
        written = written_bytes(lab, before[name], snapshot(root_of(lab, name)))
        total += written
        assert "applied Q241656" in lines[name] and lines[name].endswith(f" ({human(written)} uploaded)")
    assert f"{human(total)} uploaded." in r.out  # the totals line

    again = apply(lab, "sites.yaml")
    assert again.code == 0, again.text
    assert "uploaded" not in again.out


def test_the_live_panel_shows_bytes_for_the_fleet_and_each_running_site():
    import io

    from deployer.fleet.engine import SiteOutcome, SiteState
    from deployer.fleet.view import FleetConsole
    from deployer.report.out import Out
    from deployer.run.context import Event

    view = FleetConsole(Out(io.StringIO(), False), Out(io.StringIO(), False), title="T", total=3)
    for site in ("A", "B"):
        view.site_started(site)
    view.site_event(Event("A", "bytes", data={"bytes": 3 << 20}))
    view.site_event(Event("B", "bytes", data={"bytes": 1 << 20}))
    view.site_event(Event("A", "progress", "replace X", {"done": 1, "total": 5}))
    panel = "\n".join(t.plain for t in view._panel().renderables)
    assert "2 running, 1 waiting, 4.0 MB uploaded" in panel
    assert "A: [1/5] replace X (3.0 MB)" in panel and "B: connecting (1.0 MB)" in panel
    view.site_finished(SiteOutcome("A", SiteState.DONE, "applied", bytes=3 << 20))
    panel = "\n".join(t.plain for t in view._panel().renderables)
    assert "A:" not in panel and "4.0 MB uploaded" in panel


# --- the limiter itself ---------------------------------------------------------------------------


def test_host_names_are_compared_as_hosts():
    assert normalize_host("SRV1.") == normalize_host("srv1") == "srv1"
    assert normalize_host("[::1]") == normalize_host("0:0::1") == "::1"
    assert str(HostKey("::1", 445)) == "[::1]:445" and str(HostKey("srv1", 22)) == "srv1:22"


def test_sites_needing_two_hosts_in_opposite_orders_never_deadlock():
    limiter = HostLimiter(1)
    a, b = HostKey("a", 445), HostKey("b", 445)
    done = []

    def site(keys: list[HostKey]) -> None:
        for _ in range(200):
            with limiter.held(keys):
                pass
        done.append(keys)

    threads = [threading.Thread(target=site, args=(k,)) for k in ([a, b], [b, a], [b, a], [a, b])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(done) == 4
    assert limiter.peak[a] == limiter.peak[b] == 1 and limiter.open_now(a) == limiter.open_now(b) == 0


def test_a_cancelled_wait_gives_back_what_it_took_and_says_why():
    limiter = HostLimiter(1)
    a, b = HostKey("a", 445), HostKey("b", 445)
    release_b = limiter.acquire([b])
    token, heard = CancelToken(), []
    threading.Timer(0.3, token.cancel, args=("SIGINT",)).start()
    with pytest.raises(Cancelled) as caught:
        limiter.acquire([a, b], token, heard.append)
    assert "SIGINT" in caught.value.reason and "b:445" in caught.value.reason
    assert heard == ["waiting for a free session to b:445 (1 open, --max-per-host 1)"]
    assert limiter.open_now(a) == 0  # a was taken first, and given back
    release_b()
    release_b()  # a release runs once, however often it is called
    assert limiter.open_now(b) == 0


# --- the credential cache -------------------------------------------------------------------------


def test_a_password_file_is_read_once_by_ten_threads(tmp_path: Path, monkeypatch):
    pw = tmp_path / "x.pw"
    pw.write_text("Sesame-1234\n")
    pw.chmod(0o600)
    reads = []
    real = secrets.read_secret_file
    monkeypatch.setattr(secrets, "read_secret_file", lambda p, what: reads.append(p) or real(p, what))
    cache = credentials.CredentialCache()
    got = []
    src = SecretSource(file=str(pw))
    threads = [threading.Thread(target=lambda: got.append(cache.get(src, tmp_path, "u on h").reveal()))
               for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["Sesame-1234"] * 10 and len(reads) == 1
    assert "Sesame" not in repr(cache.__dict__)  # keys name the source, values are masked
    # a replaced file is read again (a long-lived process sees a rotated password)
    pw.write_text("Sesame-56789\n")
    pw.chmod(0o600)
    assert cache.get(src, tmp_path, "u on h").reveal() == "Sesame-56789" and len(reads) == 2


def test_errors_are_not_cached_and_env_follows_the_process_environment(tmp_path: Path, monkeypatch):
    cache = credentials.CredentialCache()
    src = SecretSource(env="DEPLOYER_TEST_CACHE_PW")
    monkeypatch.delenv("DEPLOYER_TEST_CACHE_PW", raising=False)
    with pytest.raises(secrets.InputError, match="not set"):
        cache.get(src, tmp_path, "u on h")
    monkeypatch.setenv("DEPLOYER_TEST_CACHE_PW", "first-value")
    one = cache.get(src, tmp_path, "u on h")
    assert cache.get(src, tmp_path, "v on g") is one  # one variable, one Secret
    monkeypatch.setenv("DEPLOYER_TEST_CACHE_PW", "second-value")
    assert cache.get(src, tmp_path, "u on h").reveal() == "second-value"
    missing = SecretSource(file=str(tmp_path / "nope.pw"))
    for _ in range(2):
        with pytest.raises(secrets.InputError, match="does not exist"):
            cache.get(missing, tmp_path, "u on h")


def test_a_prompt_is_asked_once_per_account(tmp_path: Path, monkeypatch):
    asked = []
    monkeypatch.setattr(secrets.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(secrets.getpass, "getpass", lambda prompt: asked.append(prompt) or "typed-secret")
    cache = credentials.CredentialCache()
    src = SecretSource(prompt=True)
    for _ in range(5):
        assert cache.get(src, tmp_path, "admin on \\\\srv1").reveal() == "typed-secret"
    cache.get(src, tmp_path, "admin on \\\\srv2")
    assert asked == ["Password for admin on \\\\srv1: ", "Password for admin on \\\\srv2: "]
