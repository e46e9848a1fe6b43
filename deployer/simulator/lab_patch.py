"""Lab sites at a patch level: `deployer lab init SITE --patched-with Q241656[:FILE+FILE],...`.

Each named hotfix's files are written where `deployer verify MANIFEST` (and so `deployer scan`)
looks for them (deployer/sms/verify.py's default_checks: the site server's Site.srv or Client.src
folder, and the Helper.srv copies of service files), as the same stand-ins `lab init` writes
for payloads: the manifest's size and date, so the site reads as if the hotfix were applied.
`Q241656:Base.dll+Pcmsvc32.exe` writes only those files: a site half-patched by hand. Hotfixes
are written in the order given, so a later one leaves its files over an earlier one's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ..errors import InputError
from ..kb.catalog import Catalog
from .lab import _put, payload_label, standin_bytes, standin_size
from ..model.inventory import SiteRef
from ..model.manifest import UNKNOWN, kb_number
from ..targets.base import FileTransport
from ..sms.verify import default_checks

_SPEC = re.compile(r"(?P<kb>[^:]+)(?::(?P<files>.+))?")


@dataclass(frozen=True)
class Patch:
    kb: str
    only: frozenset[str] | None  # file names (casefolded), or None for every file


def parse(specs: list[str]) -> list[Patch]:
    """`Q241656`, `Q241656:Base.dll+Pcmsvc32.exe`; several by commas or repeating the option."""
    out = []
    for spec in (p.strip() for s in specs for p in s.split(",")):
        if not spec:
            continue
        m = _SPEC.fullmatch(spec)
        try:
            kb = kb_number(m.group("kb") if m else spec)
        except ValueError:
            raise InputError(f"--patched-with {spec!r}: expected an article such as Q241656, optionally with the "
                             "files to write (Q241656:Base.dll+Pcmsvc32.exe)") from None
        files = m.group("files") if m else None
        out.append(Patch(kb, frozenset(f.strip().casefold() for f in files.split("+") if f.strip()) if files else None))
    return out


def writer(site: SiteRef, catalog: Catalog, patches: list[Patch]):
    """The `patch` callback of lab.init_mock_site: per server, the stand-ins of every patch."""
    plans: dict[str, list[tuple[str, bytes, int]]] = {}
    for p in patches:
        h = catalog.hotfixes.get(p.kb)
        if h is None:
            raise InputError(f"--patched-with {p.kb}: not in the catalogue {catalog.root} (it has "
                             f"{', '.join(catalog.hotfixes) or 'no hotfix'})")
        m = h.loaded.manifest
        names = {f.name.casefold() for f in m.files}
        if p.only and not p.only <= names:
            raise InputError(f"--patched-with {p.kb}: {', '.join(sorted(p.only - names))} not in its manifest "
                             f"(files: {', '.join(sorted({f.name for f in m.files}))})")
        tz = ZoneInfo(m.timezone or site.site.timezone)
        h.loaded.check_times(tz)
        for c in default_checks(h.loaded, site):
            entry = m.files[c.entry_index]
            if entry.platform is UNKNOWN or (p.only and entry.name.casefold() not in p.only):
                continue  # a row without a platform names no one folder to write
            label = payload_label(m, entry.name, entry.platform.key)
            size = 64 * 1024 if entry.size is None else (
                entry.size.value if entry.size.unit == "B" else standin_size(entry.size, label))
            plans.setdefault(c.server.casefold(), []).append(
                (c.path, standin_bytes(label, size, entry.version), entry.mtime_ns(tz)))

    def patch(server: str, files: FileTransport) -> None:
        for path, data, mtime_ns in plans.get(server.casefold(), []):
            _put(files, path, data, mtime_ns)

    return patch
