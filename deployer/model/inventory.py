"""The site inventory (`sites.yaml`): sites, their servers, and how to reach each server.

A site is named by the operator (`DEMO`) and carries its 3-character SMS site code.
Each server names a file transport and a service transport; `mock` (the default) is the
embedded simulated site under the site's `mock.path`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from ..errors import InputError
from ..sms.platforms import Platform
from .suggest import did_you_mean, listing
from .winpath import PathRuleError, parse_root
from .yamlsrc import Document, load_yaml
from .common import Strict, check_timezone, matching, validate
from .transport import FILES, SERVICES, transport_field
from .transports.mock import MockTransport
# the settings models, where callers have always imported them from (each now lives in its transport's module)
from .transports.scmr import ScmrServices  # noqa: F401
from .transports.smb import SMB1_IMPLEMENTATIONS, SmbFiles, SmbSettings  # noqa: F401
from .transports.ssh import SshFiles, SshServices, SshSettings  # noqa: F401
from .inventory_expand import GroupSpec, SiteDefaults, expand_inventory
from .manifest import PlatformField
from .preflight import PreflightSettings

RESERVED_VARS = frozenset({"sms_root", "platform", "platform_name", "platform_folder", "site", "site_code", "server",
                           "server_platform", "role"})


def _var_value(v: Any) -> Any:
    # one message instead of pydantic's three (not a string, not an integer, not a boolean)
    if not isinstance(v, (str, int, bool)):
        kind = {type(None): "nothing", dict: "a mapping", list: "a list"}.get(type(v), type(v).__name__)
        raise ValueError(f"a variable is text, a whole number or true/false (got {kind})")
    return v


VarValue = Annotated[str | int | bool, BeforeValidator(_var_value)]

# Each transport declares its settings in its own module (model/transports/, found by the
# registry in model/transport.py); `files:` and `services:` are the union of what they declare.
FilesSpec = transport_field(FILES)
ServicesSpec = transport_field(SERVICES)


def _root_folder(v: str) -> str:
    """A Windows folder below a drive (the SMS root, a PCM install folder), written one way."""
    try:
        drive, parts = parse_root(v)
    except PathRuleError as exc:
        raise ValueError(str(exc)) from None
    return f"{drive}:\\" + "\\".join(parts)


class _Host(Strict):
    """What an SMS server and a PCM host share: their `files:` and `services:` must agree (each
    subclass declares the two fields itself, so that they keep their place among its keys)."""

    @model_validator(mode="after")
    def _transports_agree(self) -> "_Host":
        self.files.check_with(self)  # type: ignore[attr-defined]
        self.services.check_with(self)  # type: ignore[attr-defined]
        return self

    @property
    def smb1(self) -> bool:
        """Whether anything reaches this host over SMB1."""
        specs = (self.files, self.services)  # type: ignore[attr-defined]
        return any(s.implementation(self) in SMB1_IMPLEMENTATIONS for s in specs)


class Server(_Host):
    role: Literal["site_server", "logon_server", "helper_server"]
    platform: PlatformField
    sms_root: Annotated[str, AfterValidator(_root_folder)] = "C:\\SMS"
    files: FilesSpec = MockTransport()
    services: ServicesSpec = MockTransport()


PCM_SERVICE = "SMS_PACKAGE_COMMAND_MANAGER_NT"
Executable = Annotated[str, matching(r"[^\\/:*?\"<>|]{1,255}", "executable {v!r} must be a file name (the install "
                                     "folder is install_dir)")]
Region = Annotated[str | None, matching(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", "region {v!r} must be a name of letters, "
                                        "digits, '-', '_' or '.' (at most 63), such as eu-west")]
SITE_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}"  # site and group names


def _names_match(names: Any, pattern: str, message: str) -> None:
    """Each name (a mapping's keys) matches `pattern` whole; else `message` with {v!r} the name."""
    for name in names:
        if not re.fullmatch(pattern, name):
            raise ValueError(message.format(v=name))


class PcmHost(_Host):
    """A Windows NT Workstation or member server running the PCM service outside any SMS root.

    Its files live in the install folder Rservice's .ini names ([installation directory],
    e.g. C:\\PCMSVC), which is also what HKLM\\Software\\Microsoft\\SMS\\Identification
    "Installation Directory" holds [Q191329]. Paths on the host are relative to that folder:
    over SMB, `share` is a share of it; over SSH, `root` names it.
    """

    platform: PlatformField = Field(default="x86", validate_default=True)
    install_dir: Annotated[str, AfterValidator(_root_folder)] = Field(default="C:\\PCMSVC", description="the "
                                                                      "service's installation directory")
    service: str = Field(default=PCM_SERVICE, description="the service name ([service name] in the .ini)")
    executable: Executable = Field(default="PCMSVC32.EXE", description="its executable ([executable file])")
    files: FilesSpec = MockTransport()
    services: ServicesSpec = MockTransport()


def _case_duplicate(names: list[str]) -> tuple[str, str] | None:
    """The first name that repeats an earlier one but for case: (earlier, later)."""
    seen: dict[str, str] = {}
    for n in names:
        if n.casefold() in seen:
            return seen[n.casefold()], n
        seen[n.casefold()] = n
    return None


def _check_server_name(name: str) -> None:
    _names_match([name], r"[A-Za-z0-9][A-Za-z0-9_-]{0,14}", "server name {v!r} must be a NetBIOS name: 1-15 letters, "
                 "digits, - or _")


def _no_case_duplicates(names: list[str], what: str) -> None:
    dup = _case_duplicate(names)
    if dup:
        raise ValueError(f"{what} names {dup[0]!r} and {dup[1]!r} differ only in case; {what} names are "
                         "case-insensitive (as Windows names are), so each must be distinct")


class MockSite(Strict):
    path: str = Field(description="folder holding the mock site, relative to the inventory file")


def _code(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        # YAML reads `code: 001` as the number 1: the leading zeros are gone before we see it
        raise ValueError("a site code is 3 letters or digits written as text; quote a numeric code (code: '001')")
    return v.upper() if isinstance(v, str) else v


class Site(Strict):
    code: Annotated[str, BeforeValidator(_code)]
    description: str | None = None
    timezone: str = "UTC"
    platforms: list[PlatformField] | None = None
    mock: MockSite | None = None
    region: Region = Field(default=None, description="the region whose workers run this site "
                               "(`deployer worker --region NAME`); none: the controller runs it")
    vars: dict[str, VarValue] = Field(default_factory=dict)
    preflight: PreflightSettings = Field(default_factory=PreflightSettings)  # Q166765 checks (deployer preflight)
    servers: dict[str, Server] = Field(min_length=1)
    pcm_hosts: dict[str, PcmHost] = Field(default_factory=dict, description="NT Workstations and member servers "
                                          "running the PCM service (see `deployer inventory from-rservice`)")

    @field_validator("code")
    @classmethod
    def _site_code(cls, v: str) -> str:
        if not isinstance(v, str) or not re.fullmatch(r"[A-Z0-9]{3}", v):
            raise ValueError(f"site code {v!r} must be exactly 3 letters or digits, as in SMS (for example DMO)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v) or "UTC"

    @field_validator("vars")
    @classmethod
    def _vars(cls, v: dict[str, Any]) -> dict[str, Any]:
        _names_match(v, r"[A-Za-z_][A-Za-z0-9_]*", "variable name {v!r} must be a plain identifier")
        for name in v:
            if name in RESERVED_VARS:
                raise ValueError(f"variable {name!r} is set by deployer; reserved: {', '.join(sorted(RESERVED_VARS))}")
        return v

    @field_validator("servers", "pcm_hosts")
    @classmethod
    def _host_names(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        for name in v:
            _check_server_name(name)
        _no_case_duplicates(list(v), "server" if info.field_name == "servers" else "PCM host")
        return v

    @model_validator(mode="after")
    def _hosts_are_not_servers(self) -> "Site":
        servers = {n.casefold(): n for n in self.servers}
        for name in self.pcm_hosts:
            if name.casefold() in servers:
                raise ValueError(f"{name!r} is listed under both servers and pcm_hosts; a site server, logon "
                                 "server or helper server runs its PCM service from Helper.srv and is updated "
                                 "by the site reset, so list it under servers only")
        return self

    @model_validator(mode="after")
    def _one_site_server(self) -> "Site":
        site_servers = [n for n, s in self.servers.items() if s.role == "site_server"]
        if len(site_servers) != 1:
            raise ValueError(f"a site has exactly one server with role: site_server (found {len(site_servers)})")
        return self

    @property
    def site_server_name(self) -> str:
        return next(n for n, s in self.servers.items() if s.role == "site_server")

    @property
    def platform_list(self) -> list[Platform]:
        """The platforms whose binaries the site carries in Site.srv (default: its servers')."""
        if self.platforms:
            return list(dict.fromkeys(self.platforms))
        return list(dict.fromkeys(s.platform for s in self.servers.values()))

    def uses_mock(self) -> bool:
        hosts = [*self.servers.values(), *self.pcm_hosts.values()]
        return any(s.files.transport == "mock" or s.services.transport == "mock" for s in hosts)


class Inventory(Strict):
    sites: dict[str, Site] = Field(min_length=1)
    # named sets of sites for --group: each member a site name or a glob over site names ('EU*');
    # the mapping form (with fields for its sites) and `defaults:` are written out by inventory_expand
    groups: dict[str, list[str] | GroupSpec] = Field(default_factory=dict, description="named sets of sites for --group: each member a site name, a glob (EU*) or a range; or a mapping with sites: and fields its sites take")
    defaults: SiteDefaults | None = Field(default=None, description="fields every site (server:, every server) starts from")

    @field_validator("sites")
    @classmethod
    def _names(cls, v: dict[str, Site]) -> dict[str, Site]:
        _names_match(v, SITE_NAME, "site name {v!r} must be 1-32 letters, digits, '.', '-' or '_'")
        _no_case_duplicates(list(v), "site")  # --site is matched case-insensitively
        return v


@dataclass(frozen=True)
class SiteRef:
    """A site as loaded: its name, its model, and where the inventory lives."""

    name: str
    site: Site
    inventory: "LoadedInventory"

    @property
    def code(self) -> str:
        return self.site.code

    def mock_root(self) -> Path:
        if self.site.mock is None:
            raise self.inventory.doc.error(
                ("sites", self.name), f"site {self.name} uses the mock target but has no mock: {{path: ...}} folder"
            )
        return (self.inventory.base_dir / self.site.mock.path).resolve()


@dataclass(frozen=True)
class LoadedInventory:
    inventory: Inventory
    doc: Document
    # where relative paths (mock folders, key, password and known_hosts files) resolve: the
    # inventory file's folder, or on a worker its project folder (`deployer worker --project`)
    base: Path | None = None

    @property
    def path(self) -> Path:
        return self.doc.path

    @property
    def base_dir(self) -> Path:
        return self.base if self.base is not None else self.doc.path.parent

    def site(self, name: str) -> SiteRef:
        for key, site in self.inventory.sites.items():
            if key.casefold() == name.casefold():
                return SiteRef(key, site, self)
        raise InputError(f"no site named {name!r} in the inventory{did_you_mean(name, self.inventory.sites)}; "
                         f"{listing(list(self.inventory.sites), 'site')}", self.doc.location(("sites",)))

    def all_sites(self) -> list[SiteRef]:
        return [SiteRef(k, s, self) for k, s in self.inventory.sites.items()]

    def matching(self, pattern: str) -> list[SiteRef]:
        """Sites whose name matches a glob (`EU*`, `SITE0?`), case-insensitively, in inventory order."""
        pat = pattern.casefold()
        return [SiteRef(k, s, self) for k, s in self.inventory.sites.items() if fnmatch.fnmatchcase(k.casefold(), pat)]

    def group(self, name: str) -> list[SiteRef]:
        for key, members in self.inventory.groups.items():
            if key.casefold() == name.casefold():
                picked: dict[str, SiteRef] = {}
                for m in members:
                    picked.update((r.name, r) for r in self.matching(m))
                return [r for r in self.all_sites() if r.name in picked]
        known = listing(list(self.inventory.groups), "group") if self.inventory.groups else \
            "groups: none (add groups: to the inventory)"
        raise InputError(f"no group named {name!r} in the inventory{did_you_mean(name, self.inventory.groups)}; "
                         f"{known}", self.doc.location(("groups",)))


def _located_name_checks(doc: Document) -> None:
    """Bad site or server names, reported at the name's own line.

    The models refuse them too, but from inside a validator the error can only point at the
    `sites:` or `servers:` key, not at the offending name: a NetBIOS-invalid server name, and
    names differing only in case (at the second one).
    """
    sites = doc.data.get("sites") if isinstance(doc.data, dict) else None
    if not isinstance(sites, dict):
        return
    for name, site in sites.items():
        servers = site.get("servers") if isinstance(site, dict) else None
        for server in servers if isinstance(servers, dict) else ():
            try:
                _check_server_name(server)
            except ValueError as exc:
                raise doc.error(("sites", name, "servers", server), str(exc)) from None
    dup = _case_duplicate(list(sites))
    if dup:
        raise doc.error(("sites", dup[1]), f"site {dup[1]!r} differs from site {dup[0]!r} only in case; site names "
                        "are matched case-insensitively (--site), so each must be distinct")
    for name, site in sites.items():
        servers = site.get("servers") if isinstance(site, dict) else None
        dup = _case_duplicate(list(servers)) if isinstance(servers, dict) else None
        if dup:
            raise doc.error(("sites", name, "servers", dup[1]), f"server {dup[1]!r} differs from server {dup[0]!r} "
                            "only in case; Windows server names are case-insensitive, so each must be distinct")


def _check_groups(doc: Document, inv: Inventory) -> None:
    """Every group member names a site or matches one: a typo in a group would silently leave
    a site out of a rollout."""
    for name, members in inv.groups.items():
        if not re.fullmatch(SITE_NAME, name):
            raise doc.error(("groups", name), f"group name {name!r} must be 1-32 letters, digits, '.', '-' or '_'")
        if not members:
            raise doc.error(("groups", name), f"group {name} lists no site; list site names or globs ('EU*')")
        for i, member in enumerate(members):
            if not any(fnmatch.fnmatchcase(site.casefold(), member.casefold()) for site in inv.sites):
                raise doc.error(("groups", name, i), f"group {name}: {member!r} matches no site of the inventory; "
                                f"sites: {', '.join(inv.sites)}")


def load_inventory(path: Path | str) -> LoadedInventory:
    doc = expand_inventory(load_yaml(path))  # ranges, defaults: and group fields written out
    _located_name_checks(doc)
    inv = validate(doc, Inventory)
    _check_groups(doc, inv)
    for name, site in inv.sites.items():
        if site.uses_mock() and site.mock is None:
            raise doc.error(("sites", name), "servers use the mock target, so the site needs mock: {path: <folder>}")
    return LoadedInventory(inv, doc)
