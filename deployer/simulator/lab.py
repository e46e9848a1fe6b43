"""Lab sites: a realistic pre-hotfix SMS 1.2 site, and stand-in hotfix payloads.

`deployer lab init SITE` lays out every server of a mock site (Site.srv with its platform
folders, Maincfg.box\\Client.src, Sitecfg.box, Helper.srv, Logon.srv with Pcmins.box, the
SMS services running) and writes stand-ins for every playbook's payload files with the
manifest's exact sizes (a rounded `524KB` becomes a byte count that rounds to it) and
dates. The tree is written through the FileTransport interface, so the same layout can
be put on a real share for testing.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, ContextManager
from zoneinfo import ZoneInfo

from ..targets import standin
from ..model import winpath
from ..errors import InputError
from ..model.inventory import SiteRef
from ..model.manifest import Manifest, version_tuple
from ..steps.playbook import LoadedPlaybook
from ..sms import attrs, layout, platforms
from ..sms.pcm.standin import standin_ins
from ..sms import services as sms
from ..sms.baseline import CLIENT_BIN, LOGON_SCRIPTS, SITE_BIN, BaselineFile
from ..sms.fileversion import fixed_file_info
from ..targets.base import RUNNING, FileTransport
from . import maintman as mock_maintman
from ..targets.mock import FORMAT, SITE_FILE, MockSite, sms_dir
from .fs import write_json_atomic


def standin_bytes(label: str, size: int, version: str | None = None) -> bytes:
    """Deterministic content of exactly `size` bytes: an MZ header naming what it stands for,
    an optional version resource, then noise seeded by the label (so no two files match)."""
    head = standin.HEAD + f"{label}\r\n".encode()  # the marker that keeps it off real servers
    if version:
        head += b"VS_VERSION_INFO\x00" + fixed_file_info(version_tuple(version))  # type: ignore[arg-type]
    if len(head) > size:
        head = head[:size]
    rng = random.Random(zlib.crc32(label.encode()))
    return head + rng.randbytes(size - len(head))


def is_standin(path: Path) -> bool:
    """The file is a stand-in `lab init` wrote (its MZ header names it), or empty."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    return not head or head.startswith(b"MZ\x90\x00deployer stand-in: ")


def standin_size(spec: attrs.SizeSpec, label: str) -> int:
    """An exact byte count that matches the article's size (any in range for rounded KB)."""
    lo, hi = spec.byte_range
    return hi - zlib.crc32(label.encode()) % (hi - lo + 1)


def local_mtime_ns(date_text: str, time_text: str, tz: ZoneInfo) -> int:
    dt = datetime.combine(attrs.parse_date(date_text), attrs.parse_time(time_text)).replace(tzinfo=tz)
    return int(dt.timestamp()) * 1_000_000_000


@dataclass
class LabReport:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)


# --- the site tree -------------------------------------------------------------------------


def _put(files: FileTransport, rel: str, data: bytes, mtime_ns: int) -> None:
    files.makedirs(winpath.parent(rel))
    files.write_file(rel, [data])
    files.set_mtime(rel, mtime_ns)


def _put_baseline(files: FileTransport, folder: str, f: BaselineFile, platform: str, tz: ZoneInfo) -> None:
    data = standin_bytes(f"SMS 1.2 {f.name} ({platform})", f.size, f.version)
    _put(files, winpath.join(folder, f.name), data, local_mtime_ns(f.date, f.time, tz))


def build_server_tree(files: FileTransport, *, role: str, platform: str, site_platforms: list[str],
                      site_code: str, tz: ZoneInfo) -> None:
    """Lay out one server's SMS root as SMS 1.2 SP4 leaves it."""
    own = platforms.lookup(platform)
    if role == "site_server":
        for p in site_platforms:
            plat = platforms.lookup(p)
            for f in SITE_BIN[plat.key]:
                _put_baseline(files, layout.site_bin(plat), f, plat.key, tz)
            for f in CLIENT_BIN.get(plat.key, ()):
                _put_baseline(files, layout.client_src_bin(plat), f, plat.key, tz)
        stamp = local_mtime_ns("11/20/99", "9:12AM", tz)
        _put(files, winpath.join(layout.SITECFG_BOX, f"{site_code}00000.CT0"),
             standin_bytes(f"site control file {site_code}", 18_432), stamp)
        files.makedirs(layout.PCMDOM_BOX)
        _put(files, layout.SYSTEM_MAP, f"[System Map]\r\nSite={site_code}\r\n".encode(), stamp)
    # Every server runs helper services from Helper.srv: the copies of the last site reset.
    for f in SITE_BIN[own.key]:
        if f.name.casefold() in {h.casefold() for h in sms.HELPER_FILES}:
            _put_baseline(files, layout.helper_bin(own), f, own.key, tz)
    # Logon.srv: Maintenance Manager's copies of the client files, scripts, PCM instructions.
    for p in site_platforms:
        plat = platforms.lookup(p)
        for f in CLIENT_BIN.get(plat.key, ()):
            _put_baseline(files, layout.logon_bin(plat), f, plat.key, tz)
    script_time = local_mtime_ns(SITE_BIN["x86"][0].date, "4:20PM", tz)
    for name, text in LOGON_SCRIPTS.items():
        _put(files, winpath.join(layout.LOGON_SRV, name), text.encode(), script_time)
    ins = standin_ins(site_code)  # PCMDUMP's text of one record: what `deployer pcm dump` reads
    _put(files, winpath.join(layout.PCMINS_BOX, f"{site_code}00005.INS"), ins, local_mtime_ns("11/19/99", "5:56PM", tz))


def server_services(role: str, platform: str) -> dict[str, dict]:
    """The SMS services a server runs and the files each holds open (for the mock SCM)."""
    plat = platforms.lookup(platform)
    if role == "site_server":
        folder, names = layout.site_bin(plat), list(sms.SMS_SERVICES)
    else:
        folder, names = layout.helper_bin(plat), list(sms.HELPER_SERVICES)
    out = {}
    for name in names:
        info = sms.SMS_SERVICES[name]
        out[name] = {
            "display_name": info.display_name,
            "state": RUNNING,
            "image": winpath.join(folder, info.image.upper()),
            "modules": [winpath.join(folder, m.upper()) for m in info.modules],
            "accepts": sorted(info.accepts),
        }
    return out


def build_pcm_host_tree(files: FileTransport, *, platform: str, executable: str, tz: ZoneInfo) -> None:
    """A workstation's PCM service folder as Rservice installed it: the executable only [Q191329]."""
    plat = platforms.lookup(platform)
    pcm = next(f for f in SITE_BIN[plat.key] if f.name.casefold() == "pcmsvc32.exe")
    data = standin_bytes(f"SMS 1.2 {pcm.name} ({plat.key})", pcm.size, pcm.version)
    _put(files, executable.upper(), data, local_mtime_ns(pcm.date, pcm.time, tz))


def pcm_host_services(service: str, executable: str) -> dict[str, dict]:
    info = sms.SMS_SERVICES["SMS_PACKAGE_COMMAND_MANAGER_NT"]
    return {service: {"display_name": info.display_name, "state": RUNNING, "image": executable.upper(),
                      "modules": [], "accepts": sorted(info.accepts)}}


def init_mock_site(site: SiteRef, *, force: bool = False,
                   patch: Callable[[str, FileTransport], None] | None = None,
                   claim: Callable[[SiteRef, Path], ContextManager[None]] | None = None) -> LabReport:
    """claim: held while an existing site is deleted for `force` (run/lab_claim.py's `claimed`:
    the site lock, and a refusal while a run is unfinished there). The simulator knows nothing
    of runs, so a caller that forces without one is refused rather than risk a run's journal."""
    report = LabReport()
    root = site.mock_root()
    if (root / SITE_FILE).exists() and not force:
        report.kept.append(str(root))
        return report
    if root.exists() and not (root / SITE_FILE).exists() and any(root.iterdir()):
        # not a mock site lab made (no site.json): --force would delete someone's folder, and
        # writing into it would mix a site into it
        raise InputError(f"{root}, the mock folder of site {site.name}, holds files but no {SITE_FILE}: it is not a "
                         "mock site `deployer lab init` made, and lab init never deletes or writes into a folder it "
                         "did not make. Point the site's mock: {path: ...} at a new folder, or empty this one")
    if root.exists() and force:
        if claim is None:
            raise InputError(f"mock site {site.name} at {root} exists: recreating it needs the site's claim "
                             "(`deployer lab init --force` takes it)")
        with claim(site, root):
            shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    s = site.site
    tz = ZoneInfo(s.timezone)
    site_platforms = [p.key for p in s.platform_list]
    meta = {
        "format": FORMAT, "site": site.name, "code": s.code, "timezone": s.timezone, "platforms": site_platforms,
        "servers": {n: {"role": v.role, "platform": v.platform.key, "sms_root": v.sms_root} for n, v in s.servers.items()},
        "pcm_hosts": {n: {"platform": h.platform.key, "install_dir": h.install_dir} for n, h in s.pcm_hosts.items()},
        mock_maintman.SETTINGS_KEY: {"interval": mock_maintman.DEFAULT_INTERVAL},
    }
    roots = {**{n: v.sms_root for n, v in s.servers.items()}, **{n: h.install_dir for n, h in s.pcm_hosts.items()}}
    for name, folder in roots.items():
        server_dir = root / name
        sms_dir(server_dir, folder).mkdir(parents=True)
        write_json_atomic(server_dir / "scm.json", {"services": {}})
    write_json_atomic(root / SITE_FILE, meta)
    mock = MockSite(root)
    for name, server in s.servers.items():
        build_server_tree(mock.files(name), role=server.role, platform=server.platform.key,
                          site_platforms=site_platforms, site_code=s.code, tz=tz)
        if patch is not None:  # `--patched-with`: hotfix files written before their services hold them (lab_patch.py)
            patch(name, mock.files(name))
        # services start only once their files are in place, as after setup
        write_json_atomic(root / name / "scm.json", {"services": server_services(server.role, server.platform.key)})
    for name, host in s.pcm_hosts.items():
        build_pcm_host_tree(mock.files(name), platform=host.platform.key, executable=host.executable, tz=tz)
        write_json_atomic(root / name / "scm.json", {"services": pcm_host_services(host.service, host.executable)})
    # copy lists at CopyListVersion 1 and a first replication, as SMS setup leaves a site
    mock_maintman.install(mock)
    report.created.append(str(root))
    return report


# --- payloads --------------------------------------------------------------------------------


def payload_label(manifest: Manifest, name: str, platform: str) -> str:
    return f"{manifest.kb} {name} ({platform})"


@dataclass
class PayloadReport:
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # files lab did not write: never overwritten, even with --force


def init_payloads(playbook: LoadedPlaybook, *, force: bool = False) -> PayloadReport:
    """Write stand-ins for every manifest file into the playbook's payload folder.

    Only lab's own files are ever rewritten (its marker in the bytes, or its sha256 in the
    folder's `.deployer-standin` record): a file there that lab did not write, such as the
    vendor's hotfix an operator put in place, is kept whatever `force` says, and reported."""
    m = playbook.manifest.manifest
    tz = ZoneInfo(m.timezone or "UTC")
    root = playbook.payload_dir()
    record = standin.load_record(root)
    report = PayloadReport()
    for entry in m.files:
        folder = root / entry.platform.key
        target = folder / entry.name
        rel = target.relative_to(root).as_posix()
        label = payload_label(m, entry.name, entry.platform.key)
        if entry.size is None:  # the article gives no size: any stand-in will do
            size = 64 * 1024
        else:
            size = entry.size.value if entry.size.unit == "B" else standin_size(entry.size, label)
        if target.exists() or target.is_symlink():
            if not target.is_file() or not standin.owned_by_lab(target, rel, record):
                report.kept.append(str(target))
                continue
            if not force and target.stat().st_size == size:
                continue
        folder.mkdir(parents=True, exist_ok=True)
        data = standin_bytes(label, size, entry.version)
        target.write_bytes(data)
        ns = entry.mtime_ns(tz)
        os.utime(target, ns=(ns, ns))
        record[rel] = hashlib.sha256(data).hexdigest()
        report.written.append(str(target))
    if report.written:
        standin.save_record(root, record)
    return report
