"""`transport: mock`: the embedded simulated site under the site's `mock.path` (deployer/simulator/)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..transport import DURABLE_APPEND, HARD_LINK, SERVER_COPY, Implementation, Transport, TransportSettings


class MockTransport(TransportSettings):
    """The embedded mock site (the site's `mock.path`)."""

    transport: Literal["mock"] = Field(default="mock", description="mock: the embedded simulated site")


TRANSPORT = Transport(
    "mock", "the embedded simulated site (local folders, no network session)", files=MockTransport,
    services=MockTransport,
    # local files: a hard link is os.link, a copy stays on the disk, an append is fsync'd
    implementations={"mock": Implementation("deployer.targets.connect",
                                            frozenset({HARD_LINK, SERVER_COPY, DURABLE_APPEND}))},
)
