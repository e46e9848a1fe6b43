"""What a resumed fleet must find unchanged: everything that decides the bytes and times put on sites.

A rollout stopped and resumed later must leave the same bytes and file times on its last
sites as on its first. The playbook alone does not decide them: its manifest (sizes, times,
versions), the hotfix files and the remaining sites' inventory entries (servers, roots,
platforms) do too. The fleet journal records a fingerprint of all of them when the rollout
starts; `--resume` recomputes it for the sites still to do and refuses (exit 2) naming
each difference, unless `--accept-changes` says the operator means it (the journal then
records the new fingerprint, so a later resume compares with what was last accepted).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import InputError, Location
from .journal import FleetJournal, file_sha256
from ..model.inventory import SiteRef
from ..steps.playbook import LoadedPlaybook
from ..targets.base import local_sha256 as sha256_file  # the one hasher of local files


def _file(path: Path) -> dict[str, Any]:
    return {"path": str(path.resolve()), "sha256": file_sha256(path)}


def _payloads(folder: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if folder.is_dir():
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                st = p.stat()
                out[p.relative_to(folder).as_posix()] = {"sha256": sha256_file(p), "size": st.st_size,
                                                         "mtime_ns": st.st_mtime_ns}
    return out


def site_digest(ref: SiteRef) -> str:
    """The site's inventory entry as loaded (defaults applied): its servers, roots, platforms, mock folder."""
    entry = ref.site.model_dump(mode="json")
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def fingerprint(pb: LoadedPlaybook, sites: list[SiteRef]) -> dict[str, Any]:
    return {"playbook": _file(pb.path), "manifest": _file(pb.manifest.path),
            "payload_dir": str(pb.payload_dir()), "payloads": _payloads(pb.payload_dir()),
            "sites": {s.name: site_digest(s) for s in sites}}


def differences(old: dict[str, Any], new: dict[str, Any], sites: list[str]) -> list[str]:
    """Each difference in words, for the sites still to do."""
    out: list[str] = []
    for what in ("playbook", "manifest"):
        a, b = old.get(what) or {}, new.get(what) or {}
        if a.get("path") != b.get("path"):
            out.append(f"the {what} is now {b.get('path')} (was {a.get('path')})")
        elif a.get("sha256") != b.get("sha256"):
            out.append(f"the {what} {b.get('path')} changed")
    if old.get("payload_dir") != new.get("payload_dir"):
        out.append(f"the hotfix files folder is now {new.get('payload_dir')} (was {old.get('payload_dir')})")
    before, now = old.get("payloads") or {}, new.get("payloads") or {}
    for name in sorted(set(before) | set(now)):
        a, b = before.get(name), now.get(name)
        if a is None:
            out.append(f"hotfix file {name} is new")
        elif b is None:
            out.append(f"hotfix file {name} is gone")
        else:
            what = [label for k, label in (("sha256", "content"), ("size", "size"), ("mtime_ns", "modified time"))
                    if a.get(k) != b.get(k)]
            if what:
                out.append(f"hotfix file {name} changed ({', '.join(what)})")
    old_sites, new_sites = old.get("sites") or {}, new.get("sites") or {}
    for s in sites:
        if s in old_sites and old_sites[s] != new_sites.get(s):
            out.append(f"the inventory entry of site {s} changed")
    return out


def refuse_if_changed(journal: FleetJournal, pb: LoadedPlaybook, sites: list[SiteRef], *, accept: bool) -> None:
    old = journal.data.get("fingerprint")
    if not isinstance(old, dict):
        return  # a journal from before fingerprints: resume() checked its playbook's hash, as it always did
    new = fingerprint(pb, sites)
    diff = differences(old, new, [s.name for s in sites])
    if diff and not accept:
        raise InputError(f"what fleet run {journal.id} puts on sites changed since fleet run {journal.id} started: "
                         + "; ".join(diff) + ". A rollout resumes only with the files it started with, so every "
                         "site gets the same bytes and times: put them back, start a new rollout, or resume with "
                         "--accept-changes to apply the new ones to the sites not done yet",
                         Location(str(journal.path)))


def merged(old: Any, new: dict[str, Any]) -> dict[str, Any]:
    """The journal's fingerprint after a resume: the new files, every site's last accepted entry."""
    sites = dict((old or {}).get("sites") or {}) if isinstance(old, dict) else {}
    sites.update(new["sites"])
    return {**new, "sites": sites}
