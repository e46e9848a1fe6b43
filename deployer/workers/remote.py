"""Applying a playbook to sites through their regions' workers, from the controller."""

from __future__ import annotations

import uuid
from pathlib import Path

from ..model.inventory import SiteRef
from ..steps.playbook import LoadedPlaybook
from .broker import broker, check
from .bundle import make_bundle
from .dispatch import Dispatcher


def new_rollout_id() -> str:
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def dispatcher_for(pb: LoadedPlaybook, inventory_path: Path, broker_url: str | None, *, rollout: str | None = None,
                   start_timeout: float = 300.0) -> Dispatcher:
    """A dispatcher for one rollout of `pb` over `inventory_path`'s sites (payloads published once)."""
    b = broker(broker_url)
    check(b)  # a refused password or a broker out of reach is said in words before anything is sent
    bundle = make_bundle(pb, inventory_path)
    return Dispatcher(b, rollout or new_rollout_id(), bundle, start_timeout=start_timeout)


def regional(site: SiteRef) -> str | None:
    return site.site.region
