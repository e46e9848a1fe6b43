"""`deployer version` (hidden): the version alone, for scripts; `deployer --version` says it in words."""

from __future__ import annotations

from .. import __version__


def version_cmd() -> None:
    """Print deployer's version."""
    print(__version__)
