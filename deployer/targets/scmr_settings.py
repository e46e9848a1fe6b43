"""Where a server's `services: scmr` connects: its own settings where the inventory gives them,
else its SMB file transport's, so that files and services share one session when they can.
Used by the SMB 2/3 and the SMB1 service transports alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..model.inventory import ScmrServices as ScmrSpec
from ..model.inventory import SmbFiles as SmbFilesSpec
from .connect import ConnectContext


@dataclass(frozen=True)
class ScmrSettings:
    host: str
    port: int
    username: str
    password: Any  # the inventory's password source
    pick: Callable[[str], Any]  # any other field: the scmr spec's when given, else the files'

    @property
    def timeout(self) -> float:
        return self.pick("timeout")


def scmr_settings(ctx: ConnectContext) -> ScmrSettings:
    spec = ctx.server.services
    assert isinstance(spec, ScmrSpec)
    base = ctx.server.files if isinstance(ctx.server.files, SmbFilesSpec) else None
    given = spec.model_fields_set

    def pick(field: str) -> Any:
        if field in given or base is None:
            return getattr(spec, field)
        return getattr(base, field)

    host = spec.host or (base.host if base else None)
    same_host = base is not None and host == base.host
    port = spec.port or (base.port if same_host else 445)
    username = spec.username or (base.username if base else None)
    password = spec.password or (base.password if base else None)
    assert host and username and password, "the inventory model requires them"
    return ScmrSettings(host, port, username, password, pick)
