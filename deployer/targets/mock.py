"""The embedded mock site: servers in a local folder, with a simulated Service Control Manager.

Each server's SCM state lives in `<SERVER>/scm.json`, so a stopped service stays stopped
between commands, as on a real server. Services behave as Windows and SMS 1.2 do:
  - a running service holds its executable and DLLs open (see mockfs: they cannot be replaced);
  - stop of a stopped service: 1062; start of a running one: 1056; unknown service: 1060;
  - control codes follow Q168682: outside 128-255 -> 87, not accepted -> 1052, stopped -> 1062;
  - what each accepted code then does is mock_sms's (Q168682); code 194 to
    SMS_SITE_CONFIG_MANAGER resets the site: the Site.srv\\<Platform>.bin
    service files are copied (write times kept) to every managed server's
    Helper.srv\\<Platform>.bin, the helper services there stopped around the copy and
    restarted, as Site Configuration Manager does;
  - starting SMS_EXECUTIVE on the site server runs Maintenance Manager's first cycle, and
    while deployer has the site open its work cycle runs on a timer (mock_maintman.py):
    Client.src replicated to every logon server's Logon.srv, copy lists regenerated when
    System.map gets a new timestamp, Maintman.log written;
  - `pcm_hosts` in site.json are workstations running the PCM service from their install
    folder, reached like servers but not managed by Site Configuration Manager.
Every SCM event is appended to `<SERVER>/scm.log`, the mock's event log.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .. import failpoints
from ..model import winpath
from .temps import SITE_RESET, temp_name
from ..errors import InputError
from ..sms import layout
from ..sms import services as sms
from ..sms.platforms import lookup as platform_lookup
from ..simulator import maintman as mock_maintman, sms as mock_sms
from .base import RUNNING, STOPPED, ConnectFailed, ServiceStatus, TargetError, service_error
from ..simulator.disk import KeptAppends, lstat_or_none
from ..simulator.fs import MockFiles, handles_file, held_open, windows_error, write_json_atomic

SITE_FILE = "site.json"
OFFLINE = "offline"
FORMAT = 1


@dataclass(frozen=True)
class MockServerInfo:
    name: str
    role: str
    platform: str
    sms_root: str


class MockSite:
    """A mock site folder: the servers it holds and how to reach each."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._work_cycle: mock_maintman.WorkCycle | None = None
        # per server: the transports handed out (stateless but for caches that check their stamps)
        self._files: dict[str, MockFiles] = {}
        self._services: dict[str, MockServices] = {}
        try:
            self.meta: dict[str, Any] = json.loads((self.root / SITE_FILE).read_text())
        except FileNotFoundError:
            raise InputError(
                f"no mock site at {self.root}; create it with `deployer lab init`"
            ) from None
        if self.meta.get("format") != FORMAT:
            raise InputError(f"mock site {self.root} has format {self.meta.get('format')}, expected {FORMAT}; "
                             "recreate it with `deployer lab init --force`")

    @property
    def servers(self) -> dict[str, MockServerInfo]:
        return {n: MockServerInfo(n, s["role"], s["platform"], s["sms_root"]) for n, s in self.meta["servers"].items()}

    @property
    def pcm_hosts(self) -> dict[str, MockServerInfo]:
        """Workstations running the PCM service: their "SMS root" is the service's install folder."""
        return {n: MockServerInfo(n, "pcm_host", h["platform"], h["install_dir"])
                for n, h in self.meta.get("pcm_hosts", {}).items()}

    def server_info(self, name: str) -> MockServerInfo:
        for n, info in {**self.servers, **self.pcm_hosts}.items():
            if n.casefold() == name.casefold():
                return info
        raise InputError(f"server {name} is not part of the mock site {self.root} (it has {', '.join(self.servers)}); "
                         "recreate it with `deployer lab init --force`")

    def server_dir(self, name: str) -> Path:
        return self.root / self.server_info(name).name

    def sms_dir(self, name: str) -> Path:
        return sms_dir(self.server_dir(name), self.server_info(name).sms_root)

    def _reachable(self, name: str) -> None:
        """A mock machine is off while `<MACHINE>/offline` exists (for trying unreachable hosts)."""
        if (self.server_dir(name) / OFFLINE).exists():
            raise ConnectFailed("cannot be reached (the network path was not found)",
                                 server=self.server_info(name).name, winerror=53)

    def files(self, name: str) -> MockFiles:
        """The server's files, one MockFiles per server for as long as this site is open: its
        folder listings and case lookups are kept (checked against each folder's stamp), where a
        new one for each call (Maintenance Manager's cycle, the site reset, every service start)
        listed the same folders again. Reachability is asked afresh on every call."""
        self._reachable(name)
        info = self.server_info(name)
        hit = self._files.get(info.name)
        if hit is None:
            hit = self._files[info.name] = MockFiles(info.name, self.sms_dir(name), self.services(name).locked_paths)
        return hit

    def services(self, name: str) -> "MockServices":
        self._reachable(name)
        info = self.server_info(name)
        hit = self._services.get(info.name)
        if hit is None:
            hit = self._services[info.name] = MockServices(self, info.name)
        return hit

    def start_work_cycle(self) -> None:
        """Run Maintenance Manager's work cycle while this site is open (see mock_maintman)."""
        if self._work_cycle is None:
            self._work_cycle = mock_maintman.WorkCycle(self).start()

    def close(self) -> None:
        if self._work_cycle is not None:
            self._work_cycle.stop()
            self._work_cycle = None
        for files in self._files.values():  # after the work cycle: its thread appends too
            files.close()
        for services in self._services.values():
            services.close()


def sms_dir(server_dir: Path, sms_root: str) -> Path:
    drive, parts = winpath.parse_root(sms_root)
    return server_dir.joinpath(drive, *parts)


# server folder -> (stamps of scm.json and handles.json, the files they lock)
_LOCKED: dict[Path, tuple[tuple, frozenset[str]]] = {}
# server folder -> (stamp of handles.json, the files other programs hold open): apart from the
# services' locks, so that a service started or stopped does not read handles.json again
_HELD: dict[Path, tuple[tuple | None, frozenset[str]]] = {}
# server folder -> (stamp of scm.json, the state parsed from it): a run queries services and
# checks files in use hundreds of times a site, while scm.json changes some 14 times
_STATE: dict[Path, tuple[tuple, dict[str, Any]]] = {}


def _stamp(path: Path | str) -> tuple | None:
    """What changes whenever the file is replaced: its inode, size and change time to the
    nanosecond. Our writers replace these files under a new inode (write_json_atomic)."""
    try:
        s = os.stat(path)
    except FileNotFoundError:
        return None
    return (s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)


class MockServices:
    """ServiceTransport for one mock server."""

    def __init__(self, site: MockSite, server: str):
        self.site = site
        self.server = server
        self.dir = site.root / server
        self.state_file = self.dir / "scm.json"
        # asked before every write (locked_paths): the two stamped files as strings, built once
        self._stamped = (str(self.state_file), str(handles_file(self.dir)))
        self._log = str(self.dir / "scm.log")
        self._log_fd = KeptAppends()

    def site_properties(self) -> dict[str, Any]:
        """The site's properties (SMS Administrator: Site Properties), a capability of this
        transport alone: a real SMS 1.2 site keeps them where no transport reads them."""
        return mock_sms.site_options(self.site)

    # --- state ----------------------------------------------------------------------------

    @contextmanager
    def _locked_state(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write of scm.json under an exclusive lock (two deployer processes may race)."""
        with open(self.dir / "scm.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()  # under the lock, from the file: another process may have changed it
            written = False
            try:
                yield state
                try:
                    write_json_atomic(self.state_file, state, durable=False, indent=None)  # the registry, written back lazily
                except OSError as exc:  # a full disk under the SCM's database: the change did not happen
                    raise windows_error(exc, self.server, "scm.json") from None
                written = True
            finally:
                _LOCKED.pop(self.dir, None)
                _STATE.pop(self.dir, None)
                # write-through: the state just written is what the next query or in-use check
                # reads, under the new file's stamp (a new inode: write_json_atomic replaces
                # the file), instead of opening and parsing scm.json again. Still under the lock,
                # so no other writer's file can be stamped in between.
                stamp = _stamp(self._stamped[0]) if written else None
                if stamp is not None:
                    _STATE[self.dir] = (stamp, state)

    def _read(self) -> dict[str, Any]:
        """scm.json parsed afresh: what a read-modify-write (_locked_state) starts from."""
        try:
            with open(self._stamped[0], encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {"services": {}}

    def current(self) -> dict[str, Any]:
        """scm.json as it is now, parsed once per change of the file (its stamp: another process,
        a test or a second deployer, may replace it too). Shared: callers only read it."""
        stamp = _stamp(self._stamped[0])
        hit = _STATE.get(self.dir)
        if hit is not None and stamp is not None and hit[0] == stamp:
            return hit[1]
        state = self._read()  # a replace between the stamp and the read only makes the next call read again
        if stamp is not None:
            _STATE[self.dir] = (stamp, state)
        return state

    def _event(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        try:
            # kept open, as the journal is (disk.KeptAppends): one lstat tells it is still the file
            # the kept fd holds (a test or a second process may replace or remove the log), where
            # each event opened, appended and closed it (some 18 a site)
            self._log_fd.append(self._log, lstat_or_none(self._log), f"{stamp} {self.server} {text}\n".encode("utf-8"),
                                durable=False)
        except OSError:
            pass  # as on Windows, a full event log never fails the service operation it records

    def _service(self, state: dict[str, Any], name: str, action: str) -> tuple[str, dict[str, Any]]:
        for key, svc in state["services"].items():
            if key.casefold() == name.casefold():
                return key, svc
        raise service_error(1060, name, self.server, action)

    def locked_paths(self) -> set[str]:
        """Files held open on this server: loaded by running services, or held by other programs.

        Asked before every write, so the answer is kept while neither scm.json nor handles.json
        changed (both are replaced whole, never edited in place: a new file, a new stamp)."""
        stamp = (_stamp(self._stamped[0]), _stamp(self._stamped[1]))
        cached = _LOCKED.get(self.dir)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        keys = set(self._held(stamp[1]))
        for svc in self.current()["services"].values():
            if svc["state"] == RUNNING:
                keys.add(winpath.key(svc["image"]))
                keys.update(winpath.key(m) for m in svc.get("modules", []))
        frozen = frozenset(keys)
        _LOCKED[self.dir] = (stamp, frozen)
        return frozen  # type: ignore[return-value]

    def _held(self, stamp: tuple | None) -> frozenset[str]:
        """handles.json's files, read again only once its stamp changed (hold_open replaces it whole)."""
        hit = _HELD.get(self.dir)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        keys = frozenset(held_open(self.dir))
        _HELD[self.dir] = (stamp, keys)
        return keys

    # --- ServiceTransport ----------------------------------------------------------------

    def query(self, name: str) -> ServiceStatus:
        key, svc = self._service(self.current(), name, "query")
        return ServiceStatus(key, svc["state"], svc.get("display_name"))

    def stop(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        with self._locked_state() as state:
            key, svc = self._service(state, name, "stop")
            if svc["state"] != RUNNING:
                raise service_error(1062, key, self.server, "stop")
            svc["state"] = STOPPED
        self._event(f"{key} stopped")
        return ServiceStatus(key, STOPPED, svc.get("display_name"))

    def start(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        with self._locked_state() as state:
            key, svc = self._service(state, name, "start")
            if svc["state"] == RUNNING:
                raise service_error(1056, key, self.server, "start")
            files = self.site.files(self.server)
            missing = [p for p in [svc["image"], *svc.get("modules", [])] if files.stat(p) is None]
            if missing:
                raise TargetError(f"start {key}: the system cannot find the file specified ({missing[0]})",
                                  server=self.server, winerror=2)
            svc["state"] = RUNNING
        self._event(f"{key} started")
        if key == mock_maintman.EXECUTIVE and self.site.server_info(self.server).role == "site_server":
            mock_maintman.first_cycle(self.site)
        return ServiceStatus(key, RUNNING, svc.get("display_name"))

    def control(self, name: str, code: int) -> list[str]:
        """Send a control code; returns what the service did (mock_sms), for `deployer sendcode`."""
        key, svc = self._service(self.current(), name, f"control {code}")
        if not 128 <= code <= 255:
            raise service_error(87, key, self.server, f"control {code}")
        if svc["state"] != RUNNING:
            raise service_error(1062, key, self.server, f"control {code}")
        if code not in svc.get("accepts", []):
            raise service_error(1052, key, self.server, f"control {code}")
        self._event(f"{key} control {code} ({sms.describe_code(code)})")
        return mock_sms.react(self, key, code)  # 194 to SMS_SITE_CONFIG_MANAGER: _site_reset

    def close(self) -> None:
        self._log_fd.close()

    # --- Site Configuration Manager's site reset ------------------------------------------

    def _site_reset(self) -> None:
        src_files = self.site.files(self.server)
        for info in self.site.servers.values():
            platform = platform_lookup(info.platform)
            src_dir = layout.site_bin(platform)
            dst_dir = layout.helper_bin(platform)
            dst_files = self.site.files(info.name)
            copies = []
            for name in sms.HELPER_FILES:
                src = winpath.join(src_dir, name)
                s = src_files.stat(src)
                if s is None:
                    continue
                d = dst_files.stat(winpath.join(dst_dir, name))
                if d is None or (d.size, d.mtime_ns) != (s.size, s.mtime_ns) or \
                        dst_files.sha256(winpath.join(dst_dir, name)) != src_files.sha256(src):
                    copies.append((src, winpath.join(dst_dir, d.name if d else s.name)))
            if not copies:
                continue
            helpers = self.site.services(info.name)
            stopped = []
            for svc_name in sms.HELPER_SERVICES:
                try:
                    if helpers.query(svc_name).state == RUNNING:
                        helpers.stop(svc_name)
                        stopped.append(svc_name)
                except TargetError:
                    continue
            try:
                dst_files.makedirs(dst_dir)
                for src, dst in copies:
                    data = b"".join(src_files.read_chunks(src))
                    tmp = temp_name(dst, SITE_RESET)
                    dst_files.write_file(tmp, [data], durable=False)  # as the SCM writes: no flush
                    failpoints.hit("mock.reset.copy.written")
                    dst_files.set_mtime(tmp, src_files.stat(src).mtime_ns)
                    dst_files.rename(tmp, dst, replace=True, durable=False)
                    self._event(f"SMS_SITE_CONFIG_MANAGER installed {dst} on {info.name}")
            finally:
                for svc_name in reversed(stopped):
                    helpers.start(svc_name)
