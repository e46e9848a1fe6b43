"""What the mock site's SMS services do when a Sendcode.exe code reaches them (Q168682).

`MockServices.control` checks the code as Windows would (87, 1052, 1062) and then hands it
here. Each reaction returns what the service did, in words, for `deployer sendcode` to show:

  128 / 129  memory allocation tracking on / off (kept per service in `<SERVER>/sms.json`)
  130        the service's memory allocation dump files in the root directory of the SMS
             root's drive; the article names six files without saying who writes which:
             Smsexec.mem, Alerter.mem, Appmgr.mem and Sched.mem are SMS_EXECUTIVE's (the
             Executive, its Alerter, Applications Manager and Scheduler threads), Hman.mem
             SMS_HIERARCHY_MANAGER's, Scmanmem.log SMS_SITE_CONFIG_MANAGER's
  132        net pause support toggled
  192        a watchdog cycle: every server's installation checked (service images present),
             logon servers counted, stopped SMS components started again
  193        a watchdog cycle, then a status file `<SITECODE>00000.CT2` in Site.srv\\Sitecfg.box
  194        the site reset (`MockServices._site_reset`): Site.srv service files to Helper.srv
  195        a watchdog cycle, then a user group MIF in Site.srv\\Inventry.box
  196        a watchdog cycle; the logon script (Logon.srv\\Runsms.bat) on every logon server is
             rewritten only when the site's options enable both "Automatically Configure
             Workstation Logon Scripts" and "Use All Detected Servers"

The site's options (the Site Properties an SMS administrator sets) live in the site
server's `sms.json` under "site"; absent keys take SMS 1.2's defaults (SITE_DEFAULTS).
"""

from __future__ import annotations

import fcntl
import json
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..model import winpath
from ..sms import layout
from ..targets.base import STOPPED, TargetError
from .fs import windows_error, write_json_atomic

if TYPE_CHECKING:
    from ..targets.mock import MockServices, MockSite

STATE_FILE = "sms.json"
SITE_CONFIG_MANAGER = "SMS_SITE_CONFIG_MANAGER"

# SMS 1.2 Site Properties the mock's services consult. PCM polls every 60 minutes unless the
# administrator changes it (Site Properties > Clients); logon scripts are left alone by default.
SITE_DEFAULTS: dict[str, Any] = {
    "pcm_polling_interval_minutes": 60,
    "auto_configure_logon_scripts": False,
    "use_all_detected_servers": False,
}

MEMORY_FILES: dict[str, tuple[str, ...]] = {
    "SMS_EXECUTIVE": ("Smsexec.mem", "Alerter.mem", "Appmgr.mem", "Sched.mem"),
    "SMS_HIERARCHY_MANAGER": ("Hman.mem",),
    "SMS_SITE_CONFIG_MANAGER": ("Scmanmem.log",),
}

INVENTORY_BOX = "SITE.SRV\\INVENTRY.BOX"
USER_GROUP_MIF = "USERGRP.MIF"
LOGON_SCRIPT = "LOGON.SRV\\RUNSMS.BAT"


# --- state beside scm.json -------------------------------------------------------------------


def _read(server_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((server_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return {}


@contextmanager
def _locked(server_dir: Path) -> Iterator[dict[str, Any]]:
    with open(server_dir / "sms.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = _read(server_dir)
        yield state
        try:
            write_json_atomic(server_dir / STATE_FILE, state, durable=False, indent=None)  # the registry, written back lazily
        except OSError as exc:  # a full disk under the SMS state: Windows error 112, not a traceback
            raise windows_error(exc, server_dir.name, STATE_FILE) from None


def site_options(site: "MockSite") -> dict[str, Any]:
    """The site's options as the site server keeps them, SMS 1.2's defaults filled in."""
    server = site.root / _site_server(site)
    return {**SITE_DEFAULTS, **_read(server).get("site", {})}


def set_site_options(site: "MockSite", **options: Any) -> None:
    unknown = set(options) - set(SITE_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown site options {sorted(unknown)}; known: {', '.join(SITE_DEFAULTS)}")
    with _locked(site.root / _site_server(site)) as state:
        state.setdefault("site", {}).update(options)


def service_flags(site: "MockSite", server: str, service: str) -> dict[str, Any]:
    return dict(_read(site.root / server).get("services", {}).get(service, {}))


def _site_server(site: "MockSite") -> str:
    return next(n for n, s in site.servers.items() if s.role == "site_server")


def _stamp() -> str:
    return time.strftime("%m/%d/%y %H:%M:%S", time.gmtime())


# --- reactions -------------------------------------------------------------------------------


def react(scm: "MockServices", service: str, code: int) -> list[str]:
    """Carry out `code` on `service` (already checked: running, accepted). Returns what happened."""
    if code in (128, 129):
        return [_tracking(scm, service, on=code == 128)]
    if code == 130:
        return _dump_memory(scm, service)
    if code == 132:
        return [_toggle_net_pause(scm, service)]
    if service != SITE_CONFIG_MANAGER:
        return []  # only Site Configuration Manager runs watchdog cycles (Q168682: 192-196)
    if code == 194:
        return _site_reset(scm)
    if code in (192, 193, 195, 196):
        done = _watchdog(scm)
        if code == 193:
            done.append(_write_ct2(scm))
        elif code == 195:
            done.append(_write_user_group_mif(scm))
        elif code == 196:
            done.extend(_logon_scripts(scm))
        return done
    return []


def _tracking(scm: "MockServices", service: str, *, on: bool) -> str:
    with _locked(scm.dir) as state:
        flags = state.setdefault("services", {}).setdefault(service, {})
        was = bool(flags.get("memory_tracking"))
        flags["memory_tracking"] = on
        if on and not was:
            flags["tracking_since"] = _stamp()
    word = "on" if on else "off"
    if was == on:
        return f"memory allocation tracking was already {word}"
    return f"memory allocation tracking switched {word}"


def _root_dir(scm: "MockServices") -> tuple[str, Path]:
    """The root directory of the drive the SMS root is on (C:\\), as a folder of the mock server."""
    drive, _ = winpath.parse_root(scm.site.server_info(scm.server).sms_root)
    return f"{drive}:\\", scm.dir / drive


def _dump_memory(scm: "MockServices", service: str) -> list[str]:
    flags = service_flags(scm.site, scm.server, service)
    shown, folder = _root_dir(scm)
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for name in MEMORY_FILES.get(service, ()):
        if flags.get("memory_tracking"):
            blocks = 100 + zlib.crc32(f"{service}{name}{flags.get('tracking_since')}".encode()) % 900
            body = (f"Memory allocation tracking: on since {flags.get('tracking_since')}\r\n"
                    f"Outstanding allocations: {blocks}\r\nBytes outstanding: {blocks * 48}\r\n")
        else:
            body = ("Memory allocation tracking: off (send code 128 to start it)\r\n"
                    "Outstanding allocations: not tracked\r\n")
        text = f"{service} memory allocation dump ({name}), {_stamp()}\r\n{body}"
        # The mock's own path for C:\<name>: a plain file write, outside the SMS share.
        existing = next((p for p in folder.iterdir() if p.name.casefold() == name.casefold()), folder / name)
        try:
            existing.write_text(text, encoding="ascii", newline="")
        except OSError as exc:
            raise windows_error(exc, scm.server, f"{shown}{existing.name}") from None
        done.append(f"wrote {shown}{existing.name}")
    return done


def _toggle_net_pause(scm: "MockServices", service: str) -> str:
    with _locked(scm.dir) as state:
        flags = state.setdefault("services", {}).setdefault(service, {})
        flags["net_pause"] = not flags.get("net_pause", False)
        on = flags["net_pause"]
    return f"net pause support switched {'on' if on else 'off'}"


def _watchdog(scm: "MockServices") -> list[str]:
    site = scm.site
    done, logon = [], []
    for info in site.servers.values():
        if info.role == "logon_server":
            logon.append(info.name)
        services = site.services(info.name)
        files = site.files(info.name)
        state = services.current()["services"]
        missing = sorted({p for s in state.values() for p in [s["image"], *s.get("modules", [])]
                          if files.stat(p) is None}, key=str.casefold)
        if missing:
            done.append(f"installation check on {info.name}: missing {', '.join(missing)}")
        for name, svc in state.items():
            if svc["state"] != STOPPED:
                continue
            try:
                services.start(name)
                done.append(f"restarted {name} on {info.name} (it was stopped)")
            except TargetError as exc:
                done.append(f"could not restart {name} on {info.name}: {exc}")
    done.insert(0, f"watchdog cycle: {len(site.servers)} servers checked, logon servers {', '.join(logon) or 'none'}")
    return done


def _server_states(site: "MockSite") -> list[str]:
    lines = []
    for info in site.servers.values():
        for name, svc in site.services(info.name).current()["services"].items():
            lines.append(f"{info.name}\t{name}\t{svc['state']}")
    return lines


def _write_ct2(scm: "MockServices") -> str:
    site = scm.site
    code = site.meta.get("code", "SMS")
    rel = winpath.join(layout.SITECFG_BOX, f"{code}00000.CT2")
    body = ["[Site Status]", f"Site={code}", f"Written={_stamp()}", "[Services]", *_server_states(site)]
    files = site.files(scm.server)
    files.makedirs(layout.SITECFG_BOX)
    files.write_file(rel, [("\r\n".join(body) + "\r\n").encode("ascii")], durable=False)
    return f"wrote status file {winpath.absolute(site.server_info(scm.server).sms_root, rel)}"


def _write_user_group_mif(scm: "MockServices") -> str:
    site = scm.site
    code = site.meta.get("code", "SMS")
    rel = winpath.join(INVENTORY_BOX, USER_GROUP_MIF)
    mif = (f'Start Component\r\n  Name = "User Group"\r\n  Start Group\r\n    Name = "Identification"\r\n'
           f'    ID = 1\r\n    Class = "MICROSOFT|IDENTIFICATION|1.0"\r\n'
           f'    Start Attribute\r\n      Name = "Site"\r\n      ID = 1\r\n      Type = String(3)\r\n'
           f'      Value = "{code}"\r\n    End Attribute\r\n  End Group\r\nEnd Component\r\n')
    files = site.files(scm.server)
    files.makedirs(INVENTORY_BOX)
    files.write_file(rel, [mif.encode("ascii")], durable=False)
    return f"wrote user group MIF {winpath.absolute(site.server_info(scm.server).sms_root, rel)}"


def _logon_scripts(scm: "MockServices") -> list[str]:
    site = scm.site
    opts = site_options(site)
    off = [label for key, label in (("auto_configure_logon_scripts", "Automatically Configure Workstation Logon Scripts"),
                                    ("use_all_detected_servers", "Use All Detected Servers")) if not opts[key]]
    if off:
        return [f"logon scripts left as they are: the site's option {' and '.join(repr(o) for o in off)} "
                f"{'is' if len(off) == 1 else 'are'} off"]
    logon = [i.name for i in site.servers.values() if i.role == "logon_server"]
    done = []
    for name in logon:
        script = ("@echo off\r\nrem Systems Management Server logon script\r\n"
                  f"rem configured by SMS_SITE_CONFIG_MANAGER {_stamp()}; logon servers: {', '.join(logon)}\r\n"
                  "%0\\..\\X86.BIN\\CLIENT32.EXE /S\r\n")
        files = site.files(name)
        files.write_file(LOGON_SCRIPT, [script.encode("ascii")], durable=False)
        done.append(f"rewrote logon script {winpath.absolute(site.server_info(name).sms_root, LOGON_SCRIPT)} "
                    f"on {name}")
    return done


def _site_reset(scm: "MockServices") -> list[str]:
    log = scm.dir / "scm.log"
    before = log.stat().st_size if log.exists() else 0
    scm._site_reset()
    with open(log, "rb") as fh:
        fh.seek(before)
        new = fh.read().decode("utf-8", "replace").splitlines()
    installed = [line.split(" SMS_SITE_CONFIG_MANAGER ", 1)[1] for line in new
                 if " SMS_SITE_CONFIG_MANAGER installed " in line]
    if not installed:
        return ["site reset: every Helper.srv copy was already current"]
    return [f"site reset: {len(installed)} files installed", *installed]
