"""Where things live in an SMS 1.2 site, relative to a server's SMS root (the SMS_SHRx share).

SMS 1.2 created its folders in upper case (D:\\SMS\\LOGON.SRV\\PCMINS.BOX in Q123499);
articles write Site.srv\\<Platform>.bin. Windows does not care, and neither may we.
"""

from __future__ import annotations

from ..model.runpaths import STATE_DIR  # noqa: F401
from .platforms import Platform

SITE_SRV = "SITE.SRV"
SITECFG_BOX = "SITE.SRV\\SITECFG.BOX"
MAINCFG_BOX = "SITE.SRV\\MAINCFG.BOX"
CLIENT_SRC = "SITE.SRV\\MAINCFG.BOX\\CLIENT.SRC"
PCMDOM_BOX = "SITE.SRV\\MAINCFG.BOX\\PCMDOM.BOX"
HELPER_SRV = "HELPER.SRV"
LOGON_SRV = "LOGON.SRV"
PCMINS_BOX = "LOGON.SRV\\PCMINS.BOX"
SYSTEM_MAP = "SYSTEM.MAP"
LOGS = "LOGS"  # SMS trace logs, when tracing is on
MAINTMAN_LOG = "LOGS\\MAINTMAN.LOG"

# deployer's own folder on each server's SMS share (journals, backups, the site lock): STATE_DIR,
# from model/runpaths.py, where a run's names live

# Files workstations run (copied to the logon servers by Maintenance Manager); nothing
# on a server holds them open. Everything else in a manifest is a server binary.
CLIENT_FILES = frozenset(
    n.casefold()
    for n in (
        "Pcmwin32.exe", "Pcmwin16.exe", "Pcmdos_2.exe", "Pcmdos_4.exe", "Invwin32.exe", "Invwin16.exe",
        "Invdos.exe", "Invmac", "Sms.ini", "Smsrun16.exe", "Smsrun32.exe", "Mifcheck.exe",
    )
)


def site_bin(platform: Platform) -> str:
    return f"{SITE_SRV}\\{platform.folder}"


def client_src_bin(platform: Platform) -> str:
    return f"{CLIENT_SRC}\\{platform.folder}"


def helper_bin(platform: Platform) -> str:
    return f"{HELPER_SRV}\\{platform.folder}"


def logon_bin(platform: Platform) -> str:
    return f"{LOGON_SRV}\\{platform.folder}"


def is_logon_server(role: str, logon_srv_is_folder: bool) -> bool:
    """The one rule for which servers Maintenance Manager feeds: every `logon_server`, and a site
    server that carries LOGON.SRV (a site server that is a domain controller is a logon server
    too on a real site, and the lab's has one). Planning, replication, the forced client
    update, verify, `clients` and the mock's Maintenance Manager all ask this."""
    return role == "logon_server" or (role == "site_server" and logon_srv_is_folder)


def is_client_file(name: str) -> bool:
    return name.casefold() in CLIENT_FILES


def default_folder(name: str, platform: Platform) -> str:
    """Where an article's file belongs on the site server when no playbook says."""
    return client_src_bin(platform) if is_client_file(name) else site_bin(platform)
