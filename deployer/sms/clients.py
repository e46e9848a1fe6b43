"""Which CopyListVersion a site's clients will compare against, per logon server.

A client upgrades its SMS files when the CopyListVersion of its copy list on the logon
server it uses (Cl_nt.txt for Windows NT, Cl_win95.txt, Cl_win.txt, Cl_dos.txt,
Cl_os2.txt) differs from the one in its Sms.ini [Q166771]. Maintenance Manager writes the
copy lists on the site server when System.map gets a new timestamp and replicates them to
every logon server's Logon.srv\\<Platform>.bin on its next cycle; until then a logon
server still offers the previous version. This module reads both sides and says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..model import winpath
from ..model.inventory import SiteRef
from . import layout
from .platforms import lookup as platform_lookup
from ..targets.base import TargetError
from ..targets.connect import SiteConnection
from .copylists import COPY_LISTS, read_version as _read_version


@dataclass
class CopyList:
    server: str
    path: str  # as an operator would type it: D:\SMS\LOGON.SRV\X86.BIN\CL_NT.TXT
    platform: str
    name: str
    version: int | None  # None: missing, or no CopyListVersion in it
    status: str  # current | behind | ahead | unknown | missing | unreadable
    detail: str = ""


@dataclass
class ClientsReport:
    site: str
    site_server: str
    source: dict[str, int | None] = field(default_factory=dict)  # "x86 CL_NT.TXT" -> version on the site server
    copy_lists: list[CopyList] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # logon server -> why it could not be read

    @property
    def current(self) -> bool:
        return not self.errors and all(c.status == "current" for c in self.copy_lists)

    def to_json(self) -> dict:
        return {"site": self.site, "site_server": self.site_server, "current": self.current,
                "source": self.source, "copy_lists": [asdict(c) for c in self.copy_lists], "errors": self.errors}


def report(site: SiteRef, conn: SiteConnection) -> ClientsReport:
    s = site.site
    out = ClientsReport(site.name, s.site_server_name)
    server_ep = conn.site_server
    lists = [(p, name) for p in s.platform_list for name in COPY_LISTS.get(p.key, ())]
    for plat, name in lists:
        version, _ = _read_version(server_ep.files, winpath.join(layout.client_src_bin(plat), name))
        out.source[f"{plat.key} {name}"] = version
    for server_name, server in s.servers.items():
        ep = conn.endpoint(server_name)
        if server.role != "logon_server":  # a site server that carries LOGON.SRV offers copy lists too
            try:
                st = ep.files.stat(layout.LOGON_SRV) if server.role == "site_server" else None
            except TargetError:
                st = None
            if not layout.is_logon_server(server.role, st is not None and st.is_dir):
                continue
        try:
            for plat, name in lists:
                rel = winpath.join(layout.logon_bin(platform_lookup(plat.key)), name)
                version, how = _read_version(ep.files, rel)
                source = out.source[f"{plat.key} {name}"]
                if how != "found":
                    status, detail = how, ("not on this logon server yet" if how == "missing"
                                           else "no CopyListVersion in it")
                elif source is None:
                    status, detail = "unknown", "the site server has no such copy list to compare with"
                elif version == source:
                    status, detail = "current", ""
                elif version < source:
                    status, detail = "behind", (f"the site server has {source}; Maintenance Manager's next cycle "
                                                "replicates it")
                else:
                    status, detail = "ahead", f"the site server has {source}"
                out.copy_lists.append(CopyList(server_name, winpath.absolute(ep.sms_root, rel), plat.key, name,
                                               version, status, detail))
        except TargetError as exc:
            out.errors[server_name] = str(exc)
    return out
