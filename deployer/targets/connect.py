"""From an inventory site to live endpoints: one file and one service transport per server.

Which module serves an inventory entry is its transport's declaration's to say (the registry,
model/transport.py: `transport: smb` with `dialect: smb1` is targets/smb1.py); that module is
imported the first time a server uses it, and registers its factories here by name. A factory
gets a ConnectContext: the site, the server, a pool for connections that two transports share
(the SMB session that carries both files and \\\\pipe\\\\svcctl; the SSH client that carries
SFTP and sc.exe), and secret resolution (each password is asked or read once per run).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..model import winpath
from ..model.transport import REGISTRY, Implementation
from ..report.escape import visible
from ..model.secrets import Secret, SecretSource
from ..sms.platforms import Platform
from .base import FileTransport, ServiceTransport

if TYPE_CHECKING:  # annotations only: a transport module kept outside the package imports this one
    from ..model.inventory import Server, SiteRef  # while the inventory model is being built
    from ..model.transport import TransportSettings
    from ..run.context import CancelToken


@dataclass
class ConnectContext:
    site: SiteRef
    name: str  # the server's name in the inventory
    server: Server  # or a PcmHost: both name their files: and services: transports
    pool: dict[Any, Any]  # shared connections, closed with the SiteConnection
    closers: list[Callable[[], None]]

    def secret(self, source: SecretSource, what: str) -> Secret:
        """The password, from the process's one credential cache: a fleet reads each source once."""
        from . import credentials

        return credentials.resolve(source, self.site.inventory.base_dir, what)

    def shared(self, key: Any, make: Callable[[], Any], close: Callable[[Any], None]) -> Any:
        """One connection per key for the whole site connection."""
        if key not in self.pool:
            conn = make()
            self.pool[key] = conn
            self.closers.append(lambda: close(conn))
        return self.pool[key]

    def session(self, link_class: Callable[..., Any], options: Any, password: SecretSource, timeout: float) -> Any:
        """The site connection's session (an SmbLink, an Smb1Link) for these options: files and
        services of a server share it, logged on with the password from the credential cache."""
        def make() -> Any:
            secret = self.secret(password, f"{options.username} on {options.where}")
            return link_class(self.name, options, secret, timeout=timeout, password_source=password.describe())

        return self.shared(options.key, make, lambda link: link.close())


FileFactory = Callable[[ConnectContext], FileTransport]
ServiceFactory = Callable[[ConnectContext, FileTransport], ServiceTransport]

FILE_TRANSPORTS: dict[str, FileFactory] = {}
SERVICE_TRANSPORTS: dict[str, ServiceFactory] = {}


def register_files(name: str) -> Callable[[FileFactory], FileFactory]:
    def deco(f: FileFactory) -> FileFactory:
        FILE_TRANSPORTS[name] = f
        return f
    return deco


def register_services(name: str) -> Callable[[ServiceFactory], ServiceFactory]:
    def deco(f: ServiceFactory) -> ServiceFactory:
        SERVICE_TRANSPORTS[name] = f
        return f
    return deco


@dataclass
class Endpoint:
    name: str
    role: str
    platform: Platform
    sms_root: str
    files: FileTransport
    services: ServiceTransport
    capabilities: frozenset[str] = frozenset()  # what its files can do beyond the protocol (model/transport.py)

    def can(self, capability: str) -> bool:
        """Whether the files transport declares `capability` (HARD_LINK, SERVER_COPY, DURABLE_APPEND)."""
        return capability in self.capabilities

    def where(self, rel: str) -> str:
        """How an operator would name the path: SERVER C:\\SMS\\Site.srv\\X86.BIN\\Base.dll."""
        return f"{self.name} {winpath.absolute(self.sms_root, rel)}"


@dataclass
class SiteConnection:
    site: SiteRef
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # the SMS servers
    closers: list[Callable[[], None]] = field(default_factory=list)
    # PCM service hosts (inventory pcm_hosts): reached like servers, but not SMS servers, so
    # kept apart from `endpoints` (selectors, the site reset); one that is off or unreachable
    # is in `unreachable` with the reason, and the site is still worked on.
    hosts: dict[str, Endpoint] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    known: Any = None  # the site's known hashes, when the session keeps them (run/known.py)

    @property
    def site_server(self) -> Endpoint:
        return self.endpoints[self.site.site.site_server_name]

    def every_endpoint(self) -> dict[str, Endpoint]:
        return {**self.endpoints, **self.hosts}

    def endpoint(self, name: str) -> Endpoint:
        for key, ep in self.every_endpoint().items():
            if key.casefold() == name.casefold():
                return ep
        raise KeyError(name)

    def traffic(self) -> dict[str, Any]:
        """Round trips and bytes so far, per server and in total (targets/traffic.py)."""
        from .traffic import meters_of, summary

        return summary(meters_of(t for ep in self.every_endpoint().values() for t in (ep.files, ep.services)))

    def close(self) -> None:
        for ep in self.every_endpoint().values():
            for t in (ep.services, ep.files):
                try:
                    t.close()
                except Exception:  # closing is best effort; the run's outcome is already decided
                    pass
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                pass
        self.closers.clear()

    def __enter__(self) -> "SiteConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mock_site(ctx: ConnectContext):
    from ..errors import InputError
    from .mock import MockSite

    def make() -> MockSite:
        try:
            site = MockSite(ctx.site.mock_root())
        except InputError as exc:  # point at the inventory line that names the folder
            raise InputError(exc.message, ctx.site.inventory.doc.location(("sites", ctx.site.name, "mock", "path")),
                             field=f"sites.{ctx.site.name}.mock.path") from None
        site.start_work_cycle()  # the site's SMS_EXECUTIVE threads run while deployer has it open
        return site

    return ctx.shared(("mock", str(ctx.site.mock_root())), make, lambda s: s.close())


@register_files("mock")
def _mock_files(ctx: ConnectContext) -> FileTransport:
    from .traffic import MeteredFiles

    return MeteredFiles(_mock_site(ctx).files(ctx.name))  # type: ignore[return-value]


@register_services("mock")
def _mock_services(ctx: ConnectContext, files: FileTransport) -> ServiceTransport:
    return _mock_site(ctx).services(ctx.name)


def _implementation(spec: TransportSettings, server: Any, kind: str,
                    factories: dict[str, Any]) -> tuple[str, Implementation]:
    """The factory name and declaration serving an inventory entry, its module imported on first use.

    A transport whose library is an untested version (adapters/) refuses to load (SetupError):
    raised here, for the servers that use it only."""
    import importlib

    name, impl = REGISTRY.implementation(spec, server)
    if name not in factories:
        importlib.import_module(impl.module)
    if name not in factories:
        raise KeyError(f"no {kind} transport {name!r}: {impl.module} registers none")
    return name, impl


def transport_names(server: Server) -> tuple[str, str]:
    """The registered factories for a server: SMB1 ones when its inventory entry asks for SMB1 (never by fallback)."""
    return server.files.implementation(server), server.services.implementation(server)


def _stderr(text: str) -> None:
    print(visible(text), file=sys.stderr)


def warn_smb1(site: SiteRef, warn: Callable[[str], None]) -> None:
    """One warning per run that reaches servers (or PCM hosts) over SMB1: the operator chose it, and should know."""
    names = [n for n, s in {**site.site.servers, **site.site.pcm_hosts}.items() if s.smb1]
    if names:
        warn(f"Warning: {', '.join(names)} reached over SMB1 (NT LM 0.12, `dialect: smb1` in the inventory): an old "
             "protocol with weaker signing and no encryption; use it only for hosts that speak nothing newer "
             "(Windows NT 4.0, Windows 2000).")


def connect(site: SiteRef, warn: Callable[[str], None] | None = None, *, cancel: CancelToken | None = None,
            note: Callable[[str], None] | None = None) -> SiteConnection:
    """The site's endpoints; `warn` gets the notices of connecting (default: standard error).

    The session first takes its slots of the hosts it reaches (host_limits.py), waiting while
    one of them has --max-per-host sessions open (`note` hears why it waits, `cancel` ends the
    wait); SiteConnection.close gives them back after the last connection is closed."""
    from . import host_limits

    release = host_limits.LIMITER.acquire(host_limits.host_keys(site), cancel, note)
    conn = SiteConnection(site, closers=[release])  # the first closer, so the last to run
    pool: dict[Any, Any] = {}
    try:
        warn_smb1(site, warn or _stderr)
        for name, server in site.site.servers.items():
            conn.endpoints[name] = _endpoint(ConnectContext(site, name, server, pool, conn.closers), server.role,
                                             server.sms_root)
        for name, host in site.site.pcm_hosts.items():
            _connect_host(conn, site, name, host, pool)
    except BaseException:
        conn.close()
        raise
    return conn


def _endpoint(ctx: ConnectContext, role: str, root: str) -> Endpoint:
    server = ctx.server
    files_kind, files_impl = _implementation(server.files, server, "file", FILE_TRANSPORTS)
    services_kind, _ = _implementation(server.services, server, "service", SERVICE_TRANSPORTS)
    files = FILE_TRANSPORTS[files_kind](ctx)
    services = SERVICE_TRANSPORTS[services_kind](ctx, files)
    return Endpoint(ctx.name, role, server.platform, root, files, services, files_impl.capabilities)


def _connect_host(conn: SiteConnection, site: SiteRef, name: str, host: Any, pool: dict[Any, Any]) -> None:
    """A PCM service host, or the reason it cannot be reached (bad credentials stay bad input)."""
    from .base import TargetError

    try:
        conn.hosts[name] = _endpoint(ConnectContext(site, name, host, pool, conn.closers), "pcm_host", host.install_dir)
    except TargetError as exc:
        conn.unreachable[name] = str(exc)
