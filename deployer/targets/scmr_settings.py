"""Where a server's `services: scmr` connects: decided by the scmr declaration (model/transports/scmr.py),
for the SMB 2/3 and the SMB1 service transports alike, and for the host limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.transports.scmr import ScmrSettings
from ..model.transports.scmr import scmr_settings as _of_server

if TYPE_CHECKING:
    from .connect import ConnectContext


def scmr_settings(ctx: ConnectContext) -> ScmrSettings:
    return _of_server(ctx.server)


__all__ = ["ScmrSettings", "scmr_settings"]
