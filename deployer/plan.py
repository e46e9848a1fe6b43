"""Playbook + site + observed state -> Plan. The planner reads; it never writes.

A Plan is pure data: numbered actions, each with its concrete server and path, what was
observed before and what will be after; what is skipped and why; and every observation
the planner made, hashed into a fingerprint. `apply` re-observes before acting and
refuses a plan whose observations no longer hold (as Terraform refuses a stale plan).

Convergence: when every file is already at (or later than) the manifest and every
Helper.srv copy is current, the plan is empty: stopping services or resetting a site
that needs nothing would only cause an outage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union
from zoneinfo import ZoneInfo

from . import __version__, templating, winpath
from .model.inventory import SiteRef
from .model.manifest import FileEntry
from .model.playbook import LoadedPlaybook, ReplaceStep, ResetStep, SendcodeStep, StartStep, StopStep
from .sms import fileversion, layout, platforms
from .sms import services as sms
from .sms.platforms import Platform
from .targets.base import PENDING_STATES, RUNNING, STOPPED, CaseResolver, FileStat, ServiceError, TargetError, sha256_of
from .targets.connect import Endpoint, SiteConnection
from .verify import Check, Judgement, judge

PLAN_FORMAT = 1
ABSENT = "absent"  # a service that is not installed on that server


# --- plan data -----------------------------------------------------------------------------


@dataclass
class FileState:
    size: int
    mtime_ns: int
    sha256: str | None = None
    name: str | None = None  # the name's case on the server

    @classmethod
    def of(cls, stat: FileStat | None, sha256: str | None = None) -> "FileState | None":
        return None if stat is None else cls(stat.size, stat.mtime_ns, sha256, stat.name)

    def same_content(self, other: "FileState | None") -> bool:
        return other is not None and (self.size, self.mtime_ns, self.sha256) == (other.size, other.mtime_ns, other.sha256)


@dataclass
class StopService:
    number: int
    step: int
    server: str
    service: str
    before: str
    kind: str = "stop"


@dataclass
class StartService:
    number: int
    step: int
    server: str
    service: str
    before: str
    kind: str = "start"


@dataclass
class ReplaceFile:
    number: int
    step: int
    server: str
    path: str  # RelPath below the server's SMS root
    where: str  # as the operator would type it
    file: str
    platform: str
    source: str  # the local payload file
    new: FileState
    before: FileState | None  # None: the file does not exist yet
    status: str  # the judgement of the current file against the manifest
    detail: str
    entry_index: int
    kind: str = "replace"


@dataclass
class HelperCopy:
    server: str
    path: str
    where: str
    source: str  # path on the site server
    before: FileState | None
    after: FileState


@dataclass
class ResetSite:
    number: int
    step: int
    server: str
    scm_before: str
    copies: list[HelperCopy]
    helper_services: dict[str, dict[str, str]]  # server -> service -> state, for undoing the copies
    timeout: float
    kind: str = "reset_site"


@dataclass
class SendCode:
    number: int
    step: int
    server: str
    service: str
    code: int
    kind: str = "sendcode"


Action = Union[StopService, StartService, ReplaceFile, ResetSite, SendCode]
ACTION_TYPES: dict[str, type] = {c.kind: c for c in (StopService, StartService, ReplaceFile, ResetSite, SendCode)}  # type: ignore[attr-defined]


@dataclass
class Skip:
    step: int
    server: str
    what: str
    reason: str


@dataclass(frozen=True)
class Touched:
    server: str
    path: str
    before: FileState | None  # None: did not exist
    after: FileState


@dataclass
class Plan:
    kb: str
    title: str | None
    site: str
    site_code: str
    rule: str
    timezone: str
    playbook: str
    playbook_sha256: str
    manifest: str
    manifest_sha256: str
    inventory: str
    site_sha256: str
    actions: list[Action] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str = ""
    created_utc: str = ""
    deployer_version: str = __version__
    format: int = PLAN_FORMAT

    @property
    def empty(self) -> bool:
        return not self.actions

    def touched(self) -> list["Touched"]:
        """Every file the plan changes: the replaced files and the site reset's Helper.srv copies."""
        out = []
        for a in self.actions:
            if isinstance(a, ReplaceFile):
                out.append(Touched(a.server, a.path, a.before, a.new))
            elif isinstance(a, ResetSite):
                out.extend(Touched(c.server, c.path, c.before, c.after) for c in a.copies)
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Plan":
        d = dict(data)
        d["actions"] = [_action_from_json(a) for a in d.get("actions", [])]
        d["skipped"] = [Skip(**s) for s in d.get("skipped", [])]
        d["checks"] = [Check(**c) for c in d.get("checks", [])]
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - {"digest"}
        if unknown:
            raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
        d.pop("digest", None)
        return cls(**d)


def _file_state(d: dict[str, Any] | None) -> FileState | None:
    return None if d is None else FileState(**d)


def _action_from_json(d: dict[str, Any]) -> Action:
    cls = ACTION_TYPES.get(d.get("kind", ""))
    if cls is None:
        raise ValueError(f"unknown action kind {d.get('kind')!r}; allowed: {', '.join(ACTION_TYPES)}")
    d = dict(d)
    if cls is ReplaceFile:
        d["new"] = _file_state(d["new"])
        d["before"] = _file_state(d.get("before"))
    if cls is ResetSite:
        d["copies"] = [HelperCopy(**{**c, "before": _file_state(c.get("before")), "after": _file_state(c["after"])})
                       for c in d["copies"]]
    return cls(**d)


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def fingerprint(observations: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical(observations)).hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return sha256_of(iter(lambda: fh.read(1 << 20), b""))


# --- observing -----------------------------------------------------------------------------


class Observer:
    """Reads the target, caching, and records every observation for the fingerprint."""

    def __init__(self, conn: SiteConnection):
        self.conn = conn
        self.records: dict[tuple, dict[str, Any]] = {}
        self._files: dict[tuple[str, str, bool], FileState | None] = {}
        self._case: dict[str, CaseResolver] = {}

    def real_case(self, ep: Endpoint, rel: str) -> str:
        if ep.name not in self._case:
            self._case[ep.name] = CaseResolver(ep.files)
        return self._case[ep.name](rel)

    def file(self, ep: Endpoint, rel: str, *, content: bool) -> FileState | None:
        key = (ep.name, winpath.key(rel), content)
        if key not in self._files:
            stat = ep.files.stat(rel)
            if stat is not None and stat.is_dir:
                state: FileState | None = FileState(-1, stat.mtime_ns, None, stat.name)
            else:
                sha = ep.files.sha256(rel) if (stat is not None and content) else None
                state = FileState.of(stat, sha)
            self._files[key] = state
            rec_key = ("file", ep.name, winpath.key(rel))
            old = self.records.get(rec_key)
            if old is None or content:
                self.records[rec_key] = {"kind": "file", "server": ep.name, "path": rel,
                                         "state": None if state is None else asdict(state)}
        return self._files[key]

    def folder(self, ep: Endpoint, rel: str) -> str:
        stat = ep.files.stat(rel)
        state = "missing" if stat is None else ("folder" if stat.is_dir else "file")
        self.records[("folder", ep.name, winpath.key(rel))] = {"kind": "folder", "server": ep.name, "path": rel,
                                                                 "state": state}
        return state

    def service(self, ep: Endpoint, name: str) -> str:
        try:
            state = ep.services.query(name).state
        except ServiceError as exc:
            if exc.winerror != 1060:
                raise
            state = ABSENT
        self.records[("service", ep.name, name.upper())] = {"kind": "service", "server": ep.name, "service": name,
                                                             "state": state}
        return state

    def payload(self, path: Path, sha256: str, size: int) -> None:
        self.records[("payload", str(path))] = {"kind": "payload", "path": str(path), "sha256": sha256, "size": size}

    def list(self) -> list[dict[str, Any]]:
        return [self.records[k] for k in sorted(self.records, key=lambda k: tuple(str(p) for p in k))]


def reobserve(conn: SiteConnection, observations: list[dict[str, Any]], *, content: bool = True) -> list[str]:
    """What changed since the observations were made, in words (empty: nothing).

    content=False compares sizes and write times only, without reading every file again."""
    changes = []
    spell = {name: CaseResolver(ep.files) for name, ep in conn.endpoints.items()}
    for rec in observations:
        kind = rec["kind"]
        if kind == "payload":
            p = Path(rec["path"])
            now = file_sha256(p) if p.is_file() else None
            if now != rec["sha256"]:
                changes.append(f"payload {p} changed or is missing")
            continue
        ep = conn.endpoint(rec["server"])
        if "path" in rec:
            rec = {**rec, "path": spell[ep.name](rec["path"])}
        if kind == "file":
            was = rec["state"]
            stat = ep.files.stat(rec["path"])
            if stat is None or was is None:
                if (stat is None) != (was is None):
                    changes.append(f"{ep.where(rec['path'])} {'appeared' if was is None else 'disappeared'}")
                continue
            if stat.is_dir:
                if was["size"] != -1:
                    changes.append(f"{ep.where(rec['path'])} is now a folder")
                continue
            if (stat.size, stat.mtime_ns) != (was["size"], was["mtime_ns"]):
                what = []
                if stat.size != was["size"]:
                    what.append(f"size {was['size']:,} -> {stat.size:,}")
                if stat.mtime_ns != was["mtime_ns"]:
                    what.append(f"write time {_iso(was['mtime_ns'])} -> {_iso(stat.mtime_ns)}")
                changes.append(f"{ep.where(rec['path'])} changed: {', '.join(what)}")
            elif content and was.get("sha256") and ep.files.sha256(rec["path"]) != was["sha256"]:
                changes.append(f"{ep.where(rec['path'])} content changed (same size and time)")
        elif kind == "folder":
            stat = ep.files.stat(rec["path"])
            state = "missing" if stat is None else ("folder" if stat.is_dir else "file")
            if state != rec["state"]:
                changes.append(f"{ep.where(rec['path'])} was a {rec['state']}, is now {state}".replace("a missing",
                                                                                                     "missing"))
        elif kind == "service":
            try:
                state = ep.services.query(rec["service"]).state
            except ServiceError as exc:
                if exc.winerror != 1060:
                    raise
                state = ABSENT
            if state != rec["state"]:
                changes.append(f"{ep.name} service {rec['service']} was {rec['state']}, is now {state}")
    return changes


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- planning ------------------------------------------------------------------------------


@dataclass
class _Payload:
    path: Path
    size: int
    sha256: str


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
    def __init__(self, pb: LoadedPlaybook, site: SiteRef, conn: SiteConnection):
        self.pb = pb
        self.site = site
        self.conn = conn
        self.obs = Observer(conn)
        m = pb.manifest.manifest
        self.tzname = m.timezone or site.site.timezone
        self.tz = ZoneInfo(self.tzname)
        pb.manifest.check_times(self.tz)
        self.actions: list[Action] = []
        self.skipped: list[Skip] = []
        self.problems: list[str] = []
        self.checks: list[Check] = []
        self.payloads: dict[tuple[str, str], _Payload] = {}
        self.svc_state: dict[tuple[str, str], str] = {}

    # -- helpers --

    def _servers(self, step_index: int, selector: Any) -> list[Endpoint]:
        eps = list(self.conn.endpoints.values())
        if selector == "site_server":
            return [self.conn.site_server]
        if selector == "all":
            return eps
        if selector in ("logon_servers", "helper_servers"):
            role = selector[:-1]
            return [e for e in eps if e.role == role]
        out = []
        for j, name in enumerate(selector):
            try:
                out.append(self.conn.endpoint(name))
            except KeyError:
                raise self.pb.doc.error(("steps", step_index, "servers", j),
                                        f"no server {name!r} in site {self.site.name}; servers: "
                                        + ", ".join(self.conn.endpoints)) from None
        return out

    def _payload(self, step_index: int, file_index: int, entry: FileEntry) -> _Payload:
        key = entry.key
        if key in self.payloads:
            return self.payloads[key]
        where = ("steps", step_index, "replace", "files", file_index)
        path = find_payload(self.pb, entry)
        if path is None:
            raise self.pb.doc.error(where, f"hotfix file {entry.name} for {entry.platform.key} not found under "
                                    f"{self.pb.payload_dir()} (expected {entry.platform.key}\\{entry.name}); put the "
                                    "hotfix files there, or run `deployer lab init` for stand-ins")
        size = path.stat().st_size
        if entry.size is not None and not entry.size.matches(size):  # size: null, the article gives none
            raise self.pb.doc.error(where, f"hotfix file {path} is {size:,} bytes, but the manifest lists "
                                    f"{entry.describe()} as {entry.size}: wrong file?")
        sha = file_sha256(path)
        if entry.sha256 and sha != entry.sha256:
            raise self.pb.doc.error(where, f"hotfix file {path} does not match the manifest's sha256")
        if entry.version:
            with open(path, "rb") as fh:
                ver = fileversion.find_version(iter(lambda: fh.read(1 << 20), b""))
            if ver != entry.version:
                raise self.pb.doc.error(where, f"hotfix file {path} has version {ver or 'none'}, the manifest "
                                        f"lists {entry.version}")
        p = _Payload(path, size, sha)
        self.payloads[key] = p
        self.obs.payload(path, sha, size)
        return p

    def _state(self, ep: Endpoint, service: str, step_index: int) -> str:
        key = (ep.name, service.upper())
        if key not in self.svc_state:
            state = self.obs.service(ep, service)
            if state in PENDING_STATES:
                raise TargetError(f"service {service} is {state}; wait until it settles and plan again",
                                  server=ep.name)
            if state == ABSENT:
                raise self.pb.doc.error(("steps", step_index), f"service {service} is not installed on {ep.name} "
                                        "(Windows error 1060)")
            self.svc_state[key] = state
        return self.svc_state[key]

    def _number(self) -> int:
        return len(self.actions) + 1

    # -- steps --

    def plan(self) -> Plan:
        for i, step in enumerate(self.pb.steps):
            if isinstance(step, ReplaceStep):
                self._replace(i, step)
            elif isinstance(step, StopStep):
                self._service_step(i, step.servers, step.stop, STOPPED)
            elif isinstance(step, StartStep):
                self._service_step(i, step.servers, step.start, RUNNING)
            elif isinstance(step, SendcodeStep):
                self._sendcode(i, step)
            elif isinstance(step, ResetStep):
                self._reset(i, step)
        self._converge()
        return self._finish()

    def _replace(self, i: int, step: ReplaceStep) -> None:
        spec = step.replace
        wanted = spec.platforms or self.site.site.platform_list
        plats = [p for p in self.site.site.platform_list if p in wanted]
        for ep in self._servers(i, step.servers):
            for plat in plats:
                try:
                    rendered = templating.render(spec.into, template_vars(self.site, ep, plat))
                    folder = winpath.relative_to_root(rendered, ep.sms_root)
                except (templating.TemplateProblem, winpath.PathRuleError) as exc:
                    raise self.pb.doc.error(("steps", i, "replace", "into"), str(exc)) from None
                folder_state = self.obs.folder(ep, folder)
                if folder_state == "folder":
                    folder = self.obs.real_case(ep, folder)
                if folder_state != "folder":
                    self.problems.append(f"step {i + 1}: destination folder {ep.where(folder)} "
                                         f"{'is a file' if folder_state == 'file' else 'does not exist'}; "
                                         "replacing files there will fail")
                for j, name in enumerate(spec.files):
                    entry = self.pb.manifest.manifest.entry(name, plat)
                    if entry is None:
                        raise self.pb.doc.error(("steps", i, "replace", "files", j),
                                                f"the manifest has no {name} for {plat.key}, a platform of site "
                                                f"{self.site.name}; limit the step with platforms: [...]")
                    entry_index = self.pb.manifest.manifest.files.index(entry)
                    payload = self._payload(i, j, entry)
                    path = winpath.join(folder, name)
                    self.checks.append(Check(ep.name, path, entry_index, "playbook"))
                    current = self.obs.file(ep, path, content=True)
                    ver = None
                    if entry.version and current is not None and current.size >= 0:
                        ver = fileversion.find_version(ep.files.read_chunks(path))
                    stat = None if current is None or current.size < 0 else \
                        FileStat(current.name or name, current.size, current.mtime_ns)
                    j_ = judge(entry, stat, self.tz, sha256=current.sha256 if current else None, version=ver)
                    if current is not None and current.size < 0:
                        j_ = Judgement("mismatch", "is a folder, not a file")
                        self.problems.append(f"{ep.where(path)} is a folder; it cannot be replaced by a file")
                    if current is not None and current.name:
                        path = winpath.join(folder, current.name)
                    if j_.passes(self.pb.manifest.manifest.rule):
                        self.skipped.append(Skip(i, ep.name, ep.where(path),
                                                 f"already {'at' if j_.status == 'ok' else 'later than'} the manifest"
                                                 + (f" ({j_.detail})" if j_.detail else "")))
                        continue
                    self.actions.append(ReplaceFile(
                        number=self._number(), step=i, server=ep.name, path=path, where=ep.where(path),
                        file=entry.name, platform=plat.key, source=str(payload.path),
                        new=FileState(payload.size, entry.mtime_ns(self.tz), payload.sha256, winpath.basename(path)),
                        before=current, status=j_.status, detail=j_.detail, entry_index=entry_index))

    def _service_step(self, i: int, selector: Any, names: list[str], target: str) -> None:
        cls = StopService if target == STOPPED else StartService
        for ep in self._servers(i, selector):
            for name in names:
                state = self._state(ep, name, i)
                if state == target:
                    self.skipped.append(Skip(i, ep.name, f"{'stop' if target == STOPPED else 'start'} {name}",
                                             f"already {target}"))
                    continue
                self.actions.append(cls(self._number(), i, ep.name, name, state))
                self.svc_state[(ep.name, name.upper())] = target

    def _sendcode(self, i: int, step: SendcodeStep) -> None:
        spec = step.sendcode
        for ep in self._servers(i, step.servers):
            state = self._state(ep, spec.service, i)
            if state != RUNNING:
                raise self.pb.doc.error(("steps", i, "sendcode"),
                                        f"code {spec.code} goes to {spec.service} on {ep.name}, which is {state} at "
                                        "that point; Windows would answer ERROR_SERVICE_NOT_ACTIVE (1062). Start it "
                                        "in an earlier step")
            self.actions.append(SendCode(self._number(), i, ep.name, spec.service, spec.code))

    def _reset(self, i: int, step: ResetStep) -> None:
        ss = self.conn.site_server
        scm = "SMS_SITE_CONFIG_MANAGER"
        scm_state = self._state(ss, scm, i)
        copies: list[HelperCopy] = []
        helper_services: dict[str, dict[str, str]] = {}
        replaced = {(a.server, winpath.key(a.path)): a for a in self.actions if isinstance(a, ReplaceFile)}
        for ep in self.conn.endpoints.values():
            plat = ep.platform
            for name in sms.HELPER_FILES:
                src = winpath.join(layout.site_bin(plat), name)
                replace = replaced.get((ss.name, winpath.key(src)))
                in_playbook = replace is not None or self._in_playbook(ss, plat, name)
                if replace is not None:
                    after = replace.new
                    src = replace.path
                else:
                    after = self.obs.file(ss, src, content=True)
                    if after is None or after.size < 0:
                        continue
                dst = winpath.join(layout.helper_bin(plat), name)
                before = self.obs.file(ep, dst, content=True)
                dst = self.obs.real_case(ep, dst)
                entry = self.pb.manifest.manifest.entry(name, plat)
                if entry is not None and in_playbook:  # a file this playbook puts in Site.srv
                    self.checks.append(Check(ep.name, dst, self.pb.manifest.manifest.files.index(entry), "reset"))
                if before is not None and after.same_content(before):
                    continue
                copies.append(HelperCopy(ep.name, dst, ep.where(dst), src, before,
                                         FileState(after.size, after.mtime_ns, after.sha256, after.name)))
            if any(c.server == ep.name for c in copies):
                helper_services[ep.name] = {}
                for svc in sms.HELPER_SERVICES:
                    helper_services[ep.name][svc] = self.obs.service(ep, svc)
        if scm_state != RUNNING and scm_state != STOPPED:
            raise TargetError(f"{scm} is {scm_state}", server=ss.name)
        self.actions.append(ResetSite(self._number(), i, ss.name, scm_state, copies, helper_services,
                                      step.reset_site.timeout))
        self.svc_state[(ss.name, scm)] = RUNNING

    def _in_playbook(self, ep: Endpoint, plat: Platform, name: str) -> bool:
        """Does a replace step of this playbook target Site.srv\\<Platform>.bin\\<name> on `ep`?"""
        want = winpath.key(winpath.join(layout.site_bin(plat), name))
        return any(c.server == ep.name and winpath.key(c.path) == want for c in self.checks)

    def _converge(self) -> None:
        has_file_steps = any(isinstance(s, (ReplaceStep, ResetStep)) for s in self.pb.steps)
        changes = any(isinstance(a, ReplaceFile) or (isinstance(a, ResetSite) and a.copies) for a in self.actions)
        if has_file_steps and not changes:
            for a in self.actions:
                self.skipped.append(Skip(a.step, a.server, _label(a), "not needed: every file is already in place"))
            self.actions = []
            self.problems = [p for p in self.problems if "will fail" not in p]
        elif changes and not any(isinstance(a, ReplaceFile) for a in self.actions):
            # Only Helper.srv copies are stale: the reset alone installs them, and the services the
            # playbook stops to replace Site.srv files need not go down for it.
            for a in self.actions:
                if isinstance(a, (StopService, StartService)):
                    self.skipped.append(Skip(a.step, a.server, _label(a), "not needed: no file is replaced, only "
                                             "the site reset runs"))
            self.actions = [a for a in self.actions if not isinstance(a, (StopService, StartService))]
            for i, a in enumerate(self.actions, 1):
                a.number = i

    def _finish(self) -> Plan:
        pb, site = self.pb, self.site
        observations = self.obs.list()
        return Plan(
            kb=pb.kb, title=pb.head.title, site=site.name, site_code=site.code,
            rule=pb.manifest.manifest.rule, timezone=self.tzname,
            playbook=str(pb.path.resolve()), playbook_sha256=hashlib.sha256(pb.doc.text.encode()).hexdigest(),
            manifest=str(pb.manifest.path.resolve()),
            manifest_sha256=hashlib.sha256(pb.manifest.doc.text.encode()).hexdigest(),
            inventory=str(site.inventory.path.resolve()),
            site_sha256=site_digest(site),
            actions=self.actions, skipped=self.skipped, problems=self.problems, checks=self.checks,
            observations=observations, fingerprint=fingerprint(observations),
            created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )


def _label(a: Action) -> str:
    label = {"stop": "stop", "start": "start", "reset_site": "reset site", "sendcode": "send code"}[a.kind]
    what = f"{label} {getattr(a, 'service', '')}".strip()
    return f"{what} {a.code}" if isinstance(a, SendCode) else what


def build_plan(pb: LoadedPlaybook, site: SiteRef, conn: SiteConnection) -> Plan:
    return Planner(pb, site, conn).plan()


def site_digest(site: SiteRef) -> str:
    """Identifies the site's inventory entry: a saved plan is refused if it changed."""
    return hashlib.sha256(canonical(site.site.model_dump(mode="json"))).hexdigest()


def describe(action: Action) -> str:
    """One line for a plan listing."""
    if isinstance(action, StopService):
        return f"stop {action.service} on {action.server} (running -> stopped)"
    if isinstance(action, StartService):
        return f"start {action.service} on {action.server} (stopped -> running)"
    if isinstance(action, SendCode):
        return f"send code {action.code} ({sms.describe_code(action.code)}) to {action.service} on {action.server}"
    if isinstance(action, ResetSite):
        return (f"reset site: restart SMS_SITE_CONFIG_MANAGER on {action.server}, send code 194; "
                f"{len(action.copies)} Helper.srv cop{'y' if len(action.copies) == 1 else 'ies'} will change")
    return f"replace {action.where}"

