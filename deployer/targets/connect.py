"""From an inventory site to live endpoints: one file and one service transport per server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .. import winpath
from ..model.inventory import Server, SiteRef
from ..sms.platforms import Platform
from .base import FileTransport, ServiceTransport

# transport name -> factory(site, server name, server model, mock site or None) -> transport
FileFactory = Callable[[SiteRef, str, Server], FileTransport]
ServiceFactory = Callable[[SiteRef, str, Server, FileTransport], ServiceTransport]

FILE_TRANSPORTS: dict[str, FileFactory] = {}
SERVICE_TRANSPORTS: dict[str, ServiceFactory] = {}


@dataclass
class Endpoint:
    name: str
    role: str
    platform: Platform
    sms_root: str
    files: FileTransport
    services: ServiceTransport

    def where(self, rel: str) -> str:
        """How an operator would name the path: SERVER C:\\SMS\\Site.srv\\X86.BIN\\Base.dll."""
        return f"{self.name} {winpath.absolute(self.sms_root, rel)}"


@dataclass
class SiteConnection:
    site: SiteRef
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    @property
    def site_server(self) -> Endpoint:
        return self.endpoints[self.site.site.site_server_name]

    def endpoint(self, name: str) -> Endpoint:
        for key, ep in self.endpoints.items():
            if key.casefold() == name.casefold():
                return ep
        raise KeyError(name)

    def close(self) -> None:
        for ep in self.endpoints.values():
            for t in (ep.services, ep.files):
                try:
                    t.close()
                except Exception:  # closing is best effort; the run's outcome is already decided
                    pass

    def __enter__(self) -> "SiteConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mock_files(site: SiteRef, name: str, server: Server) -> FileTransport:
    from .mock import MockSite

    return MockSite(site.mock_root()).files(name)


def _mock_services(site: SiteRef, name: str, server: Server, files: FileTransport) -> ServiceTransport:
    from .mock import MockSite

    return MockSite(site.mock_root()).services(name)


FILE_TRANSPORTS["mock"] = _mock_files
SERVICE_TRANSPORTS["mock"] = _mock_services


def connect(site: SiteRef) -> SiteConnection:
    conn = SiteConnection(site)
    try:
        for name, server in site.site.servers.items():
            files = FILE_TRANSPORTS[server.files.transport](site, name, server)
            services = SERVICE_TRANSPORTS[server.services.transport](site, name, server, files)
            conn.endpoints[name] = Endpoint(name, server.role, server.platform, server.sms_root, files, services)
    except BaseException:
        conn.close()
        raise
    return conn
