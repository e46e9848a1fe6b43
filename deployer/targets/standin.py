"""Lab stand-ins: recognising the hotfix files `deployer lab init` writes, and keeping them off real servers.

A stand-in has the article's exact size and date, so every check that judges a file by its
attributes (plan, verify, a saved plan's fingerprint) takes it for the hotfix. Two things
tell it apart, and either is enough:

- its bytes: every stand-in starts `MZ\\x90\\x00deployer stand-in: <what it stands for>`
  (lab.standin_bytes), which travels with the file (into a worker's payload cache, a copy
  made by hand);
- the record lab keeps beside the payloads, `<payloads>/.deployer-standin`: each file it
  wrote with its sha256. A file listed there with that sha256 is lab's.

Only a transport that declares `accepts_standins = True` (the mock site: a lab for a lab
file) may receive one. The engine refuses every other upload of a stand-in in one place
(run/apply.py's Runner, before anything is written to the site), whatever the transport,
the command (apply, a saved plan, a fleet, a worker) or the step that staged it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from . import temps
from ..errors import InputError
from .base import local_sha256

MARKER = b"deployer stand-in: "
HEAD = b"MZ\x90\x00" + MARKER  # how every stand-in begins
RECORD = ".deployer-standin"
RECORD_FORMAT = 1


def marked(data: bytes) -> bool:
    """The first bytes of a file: does it carry lab's stand-in marker where lab writes it?"""
    return data.startswith(HEAD)


def read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(HEAD))
    except OSError:
        return b""


def file_sha256(path: Path) -> str:
    return local_sha256(path)


# --- the record beside the payloads --------------------------------------------------------


def load_record(folder: Path) -> dict[str, str]:
    """`relative path (forward slashes) -> sha256` of what lab wrote under `folder`; {} if none or unreadable."""
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        files = data.get("files", {}) if isinstance(data, dict) else {}
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (OSError, ValueError):
        return {}


def save_record(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / temps.temp_name(RECORD, temps.DEPLOYER, "record")
    tmp.write_text(json.dumps({"format": RECORD_FORMAT, "written_by": "deployer lab init",
                               "files": dict(sorted(files.items()))}, indent=1) + "\n", encoding="utf-8")
    tmp.replace(folder / RECORD)


def _recorded(path: Path, sha256: str | None) -> Path | None:
    """The record (in the payload folder: the file's platform folder's parent, or its own) listing this file."""
    for folder in (path.parent.parent, path.parent):
        files = load_record(folder)
        if not files:
            continue
        try:
            rel = path.relative_to(folder).as_posix()
        except ValueError:
            continue
        want = files.get(rel) or next((v for k, v in files.items() if k.casefold() == rel.casefold()), None)
        if want is not None and want == (sha256 or file_sha256(path)):
            return folder / RECORD
    return None


def reason(path: Path, sha256: str | None = None) -> str | None:
    """Why `path` is a lab stand-in, or None when nothing says it is."""
    if marked(read_head(path)):
        return "its bytes carry the lab's stand-in marker"
    try:
        record = _recorded(path, sha256)
    except OSError:
        return None
    if record is not None:
        return f"{record} lists it as written by `deployer lab init`"
    return None


def owned_by_lab(path: Path, rel: str, record: dict[str, str]) -> bool:
    """May lab init rewrite this existing file? Only its own stand-in: the marker, or its sha256 in the record."""
    if marked(read_head(path)):
        return True
    want = record.get(rel)
    return want is not None and want == file_sha256(path)


# --- the one refusal -------------------------------------------------------------------------


def accepts_standins(files: Any) -> bool:
    """A transport's capability: only one that declares it (the mock) may receive a stand-in."""
    return bool(getattr(files, "accepts_standins", False))


def refuse_on_real_servers(uploads: Iterable[tuple[str, str, str | None]], transports: dict[str, Any]) -> None:
    """Refuse (exit 2, before anything is written) when a stand-in would be uploaded to a server
    whose file transport is not the mock. `uploads`: (server, local file, sha256) of every upload;
    `transports`: server name -> its FileTransport."""
    bad: dict[str, list[str]] = {}
    checked: dict[str, str | None] = {}
    for server, source, sha in uploads:
        files = transports.get(server)
        if files is None or accepts_standins(files):
            continue
        if source not in checked:
            checked[source] = reason(Path(source), sha)
        if checked[source] is not None:
            bad.setdefault(source, []).append(server)
    if bad:
        lines = [f"{src} -> {', '.join(sorted(set(servers)))} ({checked[src]})" for src, servers in bad.items()]
        raise InputError("lab stand-ins would be uploaded to real servers; a stand-in only looks like the hotfix "
                         "(its size and date) and is never sent to a server that is not the mock site:\n  "
                         + "\n  ".join(lines) + "\nPut the vendor's hotfix files in their place (nothing was touched)")
