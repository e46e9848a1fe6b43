"""The transport registry: what each `transport:` of the inventory is, read from its declaration.

A transport declares itself (as pyinfra's connectors declare `data_cls` and `data_meta`) in one
small module of deployer/model/transports/ holding a `TRANSPORT = Transport(...)`:

- its host key: the `transport:` value of the inventory's `files:` or `services:` entry;
- the settings model of each role it serves (files and/or services), a pydantic model whose
  fields carry their `Field(description=...)` (the schema, docs and error messages read them);
- its implementations: the module under deployer/targets/ that registers the factories, imported
  only when a site connects to a server using it (SMB names two: SMB 2/3 and SMB1, picked by the
  settings' `dialect:`), each with its capabilities (hard link, server-side copy, durable append).

Why the declarations live in model/ and the implementations in targets/: the inventory is a
model (model/ may not import targets/, tests/test_layers.py), and validating it, `deployer
schema` and the host limits must not import a protocol library (smbprotocol, impacket,
paramiko: slow to import, and one of an untested version refuses to load, which must stay a
connect-time error of the servers using it, never a reason an inventory cannot be read).
The settings model is the contract between the two halves; targets/ reaches the declaration
through the registry, never the other way round.

The registry finds the declarations by listing deployer/model/transports/ (no hand-written
list); a transport kept outside the package names its module in $DEPLOYER_TRANSPORTS
(comma-separated), and that one module may then hold its factories too.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag

from ..errors import SetupError
from .common import Strict, number_in
from .secrets import SecretSource
from .suggest import did_you_mean

ENV = "DEPLOYER_TRANSPORTS"  # more declaration modules, outside deployer/model/transports/
FILES, SERVICES = "files", "services"

# What an implementation can do beyond the FileTransport protocol (targets/base.py).
HARD_LINK = "hard_link"  # files.hard_link(src, dst): a second name, no bytes moved (Runner.backup)
SERVER_COPY = "server_copy"  # files.copy runs on the server: the bytes make no round trip through deployer
DURABLE_APPEND = "durable_append"  # append(durable=True) reaches stable storage before it returns
# append() of several records costs what one costs (one write, one round trip) and is durable
# as a whole: the Runner lets an action's "done" ride with the next record and sends grouped
# swaps' "begin" records in one append (run/apply.py). Where each append is cheap (local
# files), records go one at a time.
GROUPED_APPEND = "grouped_append"
RENAME_MANY = "rename_many"  # files.rename_many(pairs): many renames in the round trips of one (grouped swaps)
# the prepare's uploads are queued and sent together at its end: files.deferred_writes() holds
# write_file and set_mtime of its block and sends them in the round trips of about one file
DEFERRED_WRITES = "deferred_writes"
CAPABILITIES = (HARD_LINK, SERVER_COPY, DURABLE_APPEND, GROUPED_APPEND, RENAME_MANY, DEFERRED_WRITES)


class TransportSettings(Strict):
    """A `files:` or `services:` entry: `transport:` names the declaration, the rest are its settings.

    Each subclass declares `transport: Literal["key"]` itself, after its settings (pydantic keeps
    the fields in the order the classes give them, and error messages list them in that order)."""

    if TYPE_CHECKING:
        transport: str

    def reaches(self, server: Any) -> list[tuple[str, int]]:
        """The host:port pairs a session to `server` opens for this entry (the host limits count
        them); none for a transport that opens no network session."""
        return []

    def implementation(self, server: Any) -> str:
        """Which of the declaration's implementations serves this entry (default: the host key)."""
        return self.transport

    def check_with(self, server: Any) -> None:
        """Refuse (ValueError) what only the whole server entry shows wrong, such as a setting that
        contradicts its other transport's."""


@dataclass(frozen=True)
class Implementation:
    module: str  # registers the factories (targets.connect.register_files/register_services) when imported
    capabilities: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {', '.join(CAPABILITIES)}")


@dataclass(frozen=True)
class Transport:
    key: str  # the inventory's `transport:` value
    summary: str  # one line, for `--help`-style listings and the schema
    files: type[TransportSettings] | None = None  # the settings of `files: {transport: key}`; None: serves no files
    services: type[TransportSettings] | None = None
    implementations: dict[str, Implementation] = field(default_factory=dict)  # by TransportSettings.implementation
    labels: dict[str, str] = field(default_factory=dict)  # a role's protocol in listings: {"files": "SFTP"}

    def settings(self, role: str) -> type[TransportSettings] | None:
        return self.files if role == FILES else self.services


class Registry:
    """Host key -> declaration; the declarations are imported the first time one is asked for."""

    PACKAGE: ClassVar[str] = f"{__package__}.transports"

    def __init__(self) -> None:
        self._by_key: dict[str, Transport] | None = None

    def _modules(self) -> list[str]:
        package = importlib.import_module(self.PACKAGE)
        return sorted(f"{self.PACKAGE}.{m.name}" for m in pkgutil.iter_modules(package.__path__) if not m.ispkg)

    def all(self) -> dict[str, Transport]:
        if self._by_key is None:
            by_key: dict[str, Transport] = {}
            for name in self._modules():
                self._add(by_key, getattr(importlib.import_module(name), "TRANSPORT", None), name)
            for name in (m.strip() for m in os.environ.get(ENV, "").split(",")):
                if name:
                    self._add(by_key, _outside(name), f"${ENV}: {name}")
            self._by_key = by_key
        return self._by_key

    @staticmethod
    def _add(by_key: dict[str, Transport], decl: Any, where: str) -> None:
        if not isinstance(decl, Transport):
            raise SetupError(f"{where} declares no transport; a transport module holds TRANSPORT = Transport(...) "
                             '(docs/architecture.md, "Adding a transport")')
        if decl.key in by_key:
            raise SetupError(f"{where} declares transport {decl.key!r}, which is declared already; each "
                             f"transport: name is declared once (declared: {', '.join(sorted(by_key))})")
        by_key[decl.key] = decl

    def get(self, key: str) -> Transport:
        return self.all()[key]

    def keys(self, role: str) -> list[str]:
        return sorted(k for k, t in self.all().items() if t.settings(role) is not None)

    def listing(self, role: str) -> str:
        """`mock, smb (SMB 2/3) or ssh (SFTP)`: the transports serving a role, for descriptions."""
        names = [f"{k} ({self.get(k).labels[role]})" if role in self.get(k).labels else k for k in self.keys(role)]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

    def implementation(self, spec: TransportSettings, server: Any) -> tuple[str, Implementation]:
        """The implementation's name (the factory key) and declaration for an inventory entry."""
        name = spec.implementation(server)
        return name, self.get(spec.transport).implementations[name]


def _outside(name: str) -> Any:
    """The declaration of a transport module named in $DEPLOYER_TRANSPORTS (the operator's input)."""
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # any failure of someone else's module: one clear error, no traceback
        raise SetupError(f"${ENV} names {name!r}, which cannot be imported ({type(exc).__name__}: {exc}); it "
                         "lists Python modules, comma-separated, each declaring a transport") from None
    return getattr(module, "TRANSPORT", None)


REGISTRY = Registry()


# --- settings every network transport writes the same way -------------------------------------

Timeout = Annotated[float, number_in(0, 3600, "timeout", integer=False, above=True),
                    Field(description="seconds any single operation may take")]
Port = Annotated[int, number_in(1, 65535, "port")]

PASSWORD_HELP = ("passwords are not written in the inventory; use {env: VARIABLE}, {file: PATH} (a file readable "
                 "only by you) or {prompt: true}")


def _password(v: Any) -> Any:
    # SecretSource refuses a string or a number itself; anything else that is not a mapping
    # ([hunter2], 1.5) got pydantic's "valid dictionary or instance of SecretSource", which does
    # not say what to write. Never echo the value: it may be the password.
    if v is not None and not isinstance(v, (dict, SecretSource)):
        raise ValueError(PASSWORD_HELP)
    return v


Password = Annotated[SecretSource, BeforeValidator(_password)]
OptionalPassword = Annotated[SecretSource | None, BeforeValidator(_password)]


# --- the inventory's `files:` and `services:` fields, built from the registry --------------------

def _transport(v: Any) -> Any:
    return {"transport": v} if isinstance(v, str) else v


def _discriminate(v: Any) -> str | None:
    return v.get("transport") if isinstance(v, dict) else getattr(v, "transport", None)


def _known(role: str) -> Any:
    """A before-validator naming the transports this role has, with the closest to a typo."""
    def check(v: Any) -> Any:
        v = _transport(v)
        key = v.get("transport") if isinstance(v, dict) else None
        keys = REGISTRY.keys(role)
        if isinstance(key, str) and key not in keys:
            raise ValueError(f"transport must be one of {', '.join(keys)}{did_you_mean(key, keys)}")
        return v
    check.__qualname__ = f"transport_field.{role}"
    check.transport_role = role  # type: ignore[attr-defined]  # schema.py describes it by this
    return check


def transport_field(role: str) -> Any:
    """The annotation of a `files:` or `services:` field: a union of the declared settings models,
    told apart by `transport:` (a bare name, `files: mock`, is a mapping with only that key)."""
    keys = REGISTRY.keys(role)
    choices = tuple(Annotated[REGISTRY.get(k).settings(role), Tag(k)] for k in keys)  # type: ignore[valid-type]
    return Annotated[Union[choices],  # type: ignore[valid-type]
                     Discriminator(_discriminate, custom_error_type="transport",
                                   custom_error_message=f"transport must be one of {', '.join(keys)}"),
                     BeforeValidator(_known(role))]


