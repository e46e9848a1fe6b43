"""Playbook + site + observed state -> Plan. The planner reads; it never writes.

Each step is planned by its kind (deployer/steps/); the planner gives the kinds what they
share: the servers a step names, the hotfix files (read and hashed once), the state each
service will be in at that point of the plan, and the Observer that records every reading.

Convergence: when every file is already at (or later than) the manifest and every
Helper.srv copy is current, the plan is empty: stopping services or resetting a site
that needs nothing would only cause an outage.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from stat import S_ISREG
from typing import Any
from zoneinfo import ZoneInfo

from ..targets import standin
from ..errors import InputError
from ..model.inventory import SiteRef
from ..model import winpath
from ..model.manifest import FileEntry
from ..model.state import Touched
from ..steps.playbook import LoadedPlaybook
from ..sms import fileversion, layout, platforms
from ..sms.platforms import Platform
from ..steps import kind_of
from ..targets.base import PENDING_STATES, TargetError
from ..targets.connect import Endpoint, SiteConnection
from .model import ABSENT, Plan, Skip, canonical, fingerprint
from .observe import Observer, local_sha256


@dataclass
class Payload:
    path: Path
    size: int
    sha256: str


class PayloadCache:
    """Hotfix files found, checked and hashed once, shared by every plan that gets the cache:
    a fleet plans its sites with one, so a 100-site run reads each payload once, not 100 times.

    An entry is used again only while the file's size, write time and inode are what they were
    when it was hashed (a payload swapped mid-run is hashed again); and the staged copy on each
    server is checked against this sha256 before anything is replaced, so a stale entry could
    only fail a run, never patch a wrong file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[tuple, tuple[tuple[int, int, int], Payload]] = {}
        self._hashes: dict[str, tuple[tuple[int, int, int], str]] = {}
        self._once: dict[tuple, Any] = {}

    def once(self, key: tuple, make) -> Any:
        """make(), once per fleet for this key: what every site's plan repeats but that does not
        depend on the site (the playbook's and manifest's paths and digests)."""
        with self._lock:
            if key not in self._once:
                self._once[key] = make()
            return self._once[key]

    def sha256(self, path: Path) -> str | None:
        """The sha256 of a local file (None: not a file), hashed once while its size, write time
        and inode stay what they were: the re-check under each site's lock asks it of every
        payload, and a fleet has many sites."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not S_ISREG(st.st_mode):
            return None
        sig = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            hit = self._hashes.get(str(path))
            if hit is not None and hit[0] == sig:
                return hit[1]
            digest = local_sha256(path)
            self._hashes[str(path)] = (sig, digest)
            return digest

    def get(self, key: tuple, load) -> "Payload":
        with self._lock:  # held while hashing: the first site hashes, the others wait and reuse
            hit = self._found.get(key)
            if hit is not None:
                try:
                    st = os.stat(hit[1].path)
                except OSError:
                    st = None
                if st is not None and (st.st_size, st.st_mtime_ns, st.st_ino) == hit[0]:
                    return hit[1]
            payload = load()
            st = os.stat(payload.path)
            self._found[key] = ((st.st_size, st.st_mtime_ns, st.st_ino), payload)
            return payload


def find_payload(pb: LoadedPlaybook, entry: FileEntry) -> Path | None:
    """`<payloads>/<platform folder>/<name>`, the folder spelled any way the platform is (x86, I386...)."""
    root = pb.payload_dir()
    if not root.is_dir():
        return None
    for d in sorted(root.iterdir()):
        if d.is_dir() and _is_platform_dir(d.name, entry.platform):
            for f in sorted(d.iterdir()):
                if f.is_file() and f.name.casefold() == entry.name.casefold():
                    return f
    return None


def _is_platform_dir(name: str, platform: Platform) -> bool:
    try:
        return platforms.lookup(name) == platform or name.casefold() == platform.folder_stem.casefold()
    except ValueError:
        return name.casefold() == platform.folder_stem.casefold()


def template_vars(site: SiteRef, ep: Endpoint, platform: Platform) -> dict[str, Any]:
    v: dict[str, Any] = dict(site.site.vars)
    v.update(sms_root=ep.sms_root, platform=platform.folder_stem, platform_name=platform.key,
             platform_folder=platform.folder, site=site.name, site_code=site.code, server=ep.name,
             server_platform=ep.platform.key, role=ep.role)
    return v


class Planner:
    """What the step kinds plan with, and the plan they build."""

    def __init__(self, pb: LoadedPlaybook, site: SiteRef, conn: SiteConnection,
                 payloads: PayloadCache | None = None):
        self.pb = pb
        self.shared = payloads
        self._payload_dir: str | None = None
        self.site = site
        self.conn = conn
        self.obs = Observer(conn)
        m = pb.manifest.manifest
        self.tzname = m.timezone or site.site.timezone
        self.tz = ZoneInfo(self.tzname)
        pb.manifest.check_times(self.tz)
        self.actions: list[Any] = []
        self.skipped: list[Skip] = []
        self.problems: list[str] = []
        self.checks: list = []
        self.payloads: dict[tuple[str, str], Payload] = {}
        self.svc_state: dict[tuple[str, str], str] = {}

    # --- what kinds call ----------------------------------------------------------------------

    def error(self, keypath: tuple, message: str):
        return self.pb.doc.error(keypath, message)

    def add(self, action: Any) -> None:
        self.actions.append(action)

    def skip(self, step: int, server: str, what: str, reason: str) -> None:
        self.skipped.append(Skip(step, server, what, reason))

    def number(self) -> int:
        return len(self.actions) + 1

    def planned_files(self) -> dict[tuple[str, str], Touched]:
        """The files the actions planned so far change, by (server, winpath.key(path)), as the last
        of them leaves each: a step plans against the site as the earlier steps leave it, whatever
        their kinds (a site reset copies the Site.srv file a replace puts there)."""
        return {(t.server, winpath.key(t.path)): t for a in self.actions for t in kind_of(a).touched(a)}

    def template_vars(self, ep: Endpoint, platform: Platform) -> dict[str, Any]:
        return template_vars(self.site, ep, platform)

    def servers(self, step_index: int, selector: Any) -> list[Endpoint]:
        eps = list(self.conn.endpoints.values())
        if selector == "site_server":
            return [self.conn.site_server]
        if selector == "all":
            return eps
        if selector == "logon_servers":  # a site server that carries LOGON.SRV is one too (layout.py)
            return [e for e in eps if layout.is_logon_server(
                e.role, e.role == "site_server" and self.obs.folder(e, layout.LOGON_SRV) == "folder")]
        if selector == "helper_servers":
            return [e for e in eps if e.role == "helper_server"]
        out = []
        for j, name in enumerate(selector):
            try:
                out.append(self.conn.endpoint(name))
            except KeyError:
                from ..model.suggest import did_you_mean

                raise self.error(("steps", step_index, "servers", j),
                                 f"no server {name!r} in site {self.site.name}{did_you_mean(name, self.conn.endpoints)}; "
                                 "servers: " + ", ".join(self.conn.endpoints)) from None
        return out

    def payload(self, where: tuple[str | int, ...], entry: FileEntry) -> Payload:
        """The hotfix file for a manifest entry, checked against it, read and hashed once per plan.
        `where` is the playbook location an error points at (the calling step kind's own)."""
        key = entry.key
        if key in self.payloads:
            return self.payloads[key]
        if self.shared is not None:
            if self._payload_dir is None:  # resolving it is a filesystem walk: once per plan, not per file
                self._payload_dir = str(self.pb.payload_dir())
            cache_key = (self._payload_dir, key, str(entry.size), entry.sha256, entry.version)
            p = self.shared.get(cache_key, lambda: self._load_payload(where, entry))
        else:
            p = self._load_payload(where, entry)
        self.payloads[key] = p
        self.obs.payload(p.path, p.sha256, p.size)
        return p

    def _load_payload(self, where: tuple[str | int, ...], entry: FileEntry) -> Payload:
        path = find_payload(self.pb, entry)
        if path is None:
            raise self.error(where, f"hotfix file {entry.name} for {entry.platform.key} not found under "
                             f"{self.pb.payload_dir()} (expected {entry.platform.key}\\{entry.name}); put the "
                             "hotfix files there, or run `deployer lab init` for stand-ins")
        size = path.stat().st_size
        if entry.size is not None and not entry.size.matches(size):  # size: null, the article gives none
            raise self.error(where, f"hotfix file {path} is {size:,} bytes, but the manifest lists "
                             f"{entry.describe()} as {entry.size}: wrong file?")
        sha = local_sha256(path)
        if entry.sha256 and sha != entry.sha256:
            raise self.error(where, f"hotfix file {path} does not match the manifest's sha256")
        if entry.version:
            with open(path, "rb") as fh:
                ver = fileversion.find_version(iter(lambda: fh.read(1 << 20), b""))
            if ver != entry.version:
                raise self.error(where, f"hotfix file {path} has version {ver or 'none'}, the manifest "
                                 f"lists {entry.version}")
        return Payload(path, size, sha)

    def state(self, ep: Endpoint, service: str, step_index: int) -> str:
        """The service's state at this point of the plan (observed once, then as earlier steps leave it)."""
        key = (ep.name, service.upper())
        if key not in self.svc_state:
            state = self.obs.service(ep, service)
            if state in PENDING_STATES:
                raise TargetError(f"service {service} is {state}; wait until it settles and plan again",
                                  server=ep.name)
            if state == ABSENT:
                raise self.error(("steps", step_index), f"service {service} is not installed on {ep.name} "
                                 "(Windows error 1060)")
            self.svc_state[key] = state
        return self.svc_state[key]

    # --- the plan -----------------------------------------------------------------------------

    def plan(self) -> Plan:
        for i, step in enumerate(self.pb.steps):
            kind_of(step).plan(self, i, step)
        self._converge()
        try:  # the plan says what apply will refuse (the refusal itself is the run's: run/apply.py)
            standin.refuse_on_real_servers([u for a in self.actions for u in kind_of(a).uploads(a)],
                                           {n: ep.files for n, ep in self.conn.every_endpoint().items()})
        except InputError as exc:
            self.problems.append(f"apply will refuse this plan: {exc.message}")
        return self._finish()

    def _converge(self) -> None:
        has_file_steps = any(kind_of(s).changes_files for s in self.pb.steps)
        changes = any(kind_of(a).touched(a) for a in self.actions)
        if has_file_steps and not changes:
            for a in self.actions:
                self.skip(a.step, a.server, kind_of(a).label(a), "not needed: every file is already in place")
            self.actions = []
            self.problems = [p for p in self.problems if "will fail" not in p]
        elif changes and not any(kind_of(a).needs_quiet for a in self.actions):
            # Only Helper.srv copies are stale: the reset alone installs them, and the services the
            # playbook stops to replace Site.srv files need not go down for it.
            for a in self.actions:
                if kind_of(a).outage_only:
                    self.skip(a.step, a.server, kind_of(a).label(a), "not needed: no file is replaced, only the "
                              "site reset runs")
            self.actions = [a for a in self.actions if not kind_of(a).outage_only]
            for n, a in enumerate(self.actions, 1):
                a.number = n
        elif changes:
            # Files are replaced, but not on every server the playbook stops services on (only a
            # PCM service workstation is behind): a server keeps its outage only for its own files.
            quiet = {a.server.casefold() for a in self.actions if kind_of(a).needs_quiet}
            idle = [a for a in self.actions if kind_of(a).outage_only and a.server.casefold() not in quiet]
            for a in idle:
                self.skip(a.step, a.server, kind_of(a).label(a), f"not needed: no file is replaced on {a.server}")
            if idle:
                self.actions = [a for a in self.actions if a not in idle]
                for n, a in enumerate(self.actions, 1):
                    a.number = n

    def _sources(self) -> tuple[str, str, str, str, str]:
        """The playbook, manifest and inventory a plan names, with the digests of their texts:
        the same for every site of a fleet, so resolved and hashed once per fleet."""
        pb, inv = self.pb, self.site.inventory.path

        def make() -> tuple[str, str, str, str, str]:
            return (str(pb.path.resolve()), hashlib.sha256(pb.doc.text.encode()).hexdigest(),
                    str(pb.manifest.path.resolve()), hashlib.sha256(pb.manifest.doc.text.encode()).hexdigest(),
                    str(inv.resolve()))

        if self.shared is None:
            return make()
        return self.shared.once(("sources", str(pb.path), pb.doc.text, pb.manifest.doc.text, str(inv)), make)

    def _finish(self) -> Plan:
        pb, site = self.pb, self.site
        observations = self.obs.list()
        playbook, playbook_sha, manifest, manifest_sha, inventory = self._sources()
        return Plan(
            kb=pb.kb, title=pb.head.title, site=site.name, site_code=site.code,
            rule=pb.manifest.manifest.rule, timezone=self.tzname,
            playbook=playbook, playbook_sha256=playbook_sha, manifest=manifest, manifest_sha256=manifest_sha,
            inventory=inventory, site_sha256=site_digest(site),
            actions=self.actions, skipped=self.skipped, problems=self.problems, checks=self.checks,
            observations=observations, fingerprint=fingerprint(observations),
            created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )


def build_plan(pb: LoadedPlaybook, site: SiteRef, conn: SiteConnection, payloads: PayloadCache | None = None) -> Plan:
    return Planner(pb, site, conn, payloads).plan()


def site_digest(site: SiteRef) -> str:
    """Identifies the site's inventory entry: a saved plan is refused if it changed."""
    return hashlib.sha256(canonical(site.site.model_dump(mode="json"))).hexdigest()


def describe(action: Any) -> str:
    """One line for a plan listing."""
    return kind_of(action).describe(action)


__all__ = ["PayloadCache", "Planner", "build_plan", "describe", "find_payload", "site_digest", "template_vars"]
