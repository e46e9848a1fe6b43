"""One adapter per protocol library: the only modules that touch a library's internals.

deployer uses smbprotocol and paramiko through their public API wherever it serves. Where
it does not (see each adapter's docstring for why), the private attributes, hooks and
message texts it relies on are used here and nowhere else, and each adapter refuses, when
it is imported, a version of its library outside the range it was tested with: an upgrade
that moved an internal shows up as one clear error naming the tested range, not as a
wrong result or a traceback in the middle of a run.

To support a newer version: run the whole suite against it (the SMB and SSH tests start
real servers), then widen the adapter's TESTED range and the pin in pyproject.toml together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

from ...errors import UnsupportedLibrary


@dataclass(frozen=True)
class TestedRange:
    """Versions >= `lowest` and < `below`, as pyproject.toml pins them."""

    lowest: tuple[int, ...]
    below: tuple[int, ...]

    def __str__(self) -> str:
        return f">={_dotted(self.lowest)},<{_dotted(self.below)}"

    def __contains__(self, version: tuple[int, ...]) -> bool:
        return self.lowest <= version < self.below


def release(version: str) -> tuple[int, ...] | None:
    """The release numbers of a version string (`5.1.0rc1` -> (5, 1, 0)); None if it has none."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    if m is None:
        return None
    parts = tuple(int(p) for p in m.group(1).split("."))
    return parts + (0,) * (3 - len(parts)) if len(parts) < 3 else parts


def installed_version(distribution: str) -> str:
    return metadata.version(distribution)


def require(distribution: str, tested: TestedRange, why: str) -> str:
    """The installed version of `distribution`, or UnsupportedLibrary when it is outside `tested`."""
    try:
        installed = installed_version(distribution)
    except metadata.PackageNotFoundError:
        installed = "(no package metadata)"
    parsed = release(installed)
    if parsed is None or parsed not in tested:
        raise UnsupportedLibrary(distribution, installed, str(tested), why)
    return installed


def _dotted(version: tuple[int, ...]) -> str:
    """As a pin writes it: (5, 2, 0) -> 5.2."""
    while len(version) > 2 and version[-1] == 0:
        version = version[:-1]
    return ".".join(str(p) for p in version)
