"""The local journal of a fleet run: which sites are done, failed, restored or not started.

Each site's own journal lives on its site server (run/journal.py) and says what happened
there; this file, on the controller, says where the rollout as a whole stands, so that
`deployer apply --resume FLEETRUN` starts exactly the sites that are not done yet. It is
one JSON document, replaced atomically (temporary file, rename): a killed controller leaves
the previous or the next version, never a torn one. Site state changes are written at most
every SAVE_EVERY seconds and forced to disk (fsync) when the rollout stops: the journal of
each site, on its server, is what guarantees that site; this one only says where to resume,
and a site it still calls waiting or running is one `--resume` starts again, which finds
it patched and does nothing (an fsync per site event cost a 100-site fleet seconds).
It holds names, paths and states only, never a credential.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InputError, Location
from ..model.secrets import redact
from ..targets.base import local_sha256

FORMAT = 1
SAVE_EVERY = 0.5  # seconds between writes of site state changes


def default_dir() -> Path:
    """`$XDG_STATE_HOME/deployer/fleets`, or `~/.local/state/deployer/fleets`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "deployer" / "fleets"


def new_fleet_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def file_sha256(path: Path) -> str:
    return local_sha256(path)  # in blocks: a hotfix file need not fit in memory


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class FleetJournal:
    """One fleet run's record; every method may be called from any site thread."""

    path: Path
    data: dict[str, Any]
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _saved_at: float = 0.0
    _dirty: bool = False

    @property
    def id(self) -> str:
        return self.data["id"]

    @classmethod
    def create(cls, folder: Path, *, command: str, sites: list[str], playbook: Path | None, inventory: Path,
               options: dict[str, Any], fingerprint: dict[str, Any] | None = None) -> "FleetJournal":
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the fleet journal folder ({exc.strerror or exc}); pass --fleet-dir "
                             "FOLDER", Location(str(folder))) from None
        fid = new_fleet_id()
        data = {
            "format": FORMAT, "id": fid, "command": command, "created_utc": _now(),
            "playbook": str(playbook.resolve()) if playbook else None,
            "playbook_sha256": file_sha256(playbook) if playbook else None,
            "inventory": str(inventory.resolve()), "options": options,
            "sites": {s: {"state": "waiting"} for s in sites},
        }
        if fingerprint is not None:
            data["fingerprint"] = fingerprint  # what decides the bytes and times put on sites (fleet_resume.py)
        journal = cls(folder / f"{fid}.json", data)
        journal._save(durable=True)
        return journal

    @classmethod
    def open(cls, folder: Path, fleet_id: str) -> "FleetJournal":
        path = folder / f"{fleet_id}.json"
        if "/" in fleet_id or "\\" in fleet_id or not path.is_file():
            known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
            listed = ", ".join(known[-10:]) or "none"
            raise InputError(f"no fleet run {fleet_id!r} in {folder}; fleet runs there: {listed} (another folder: "
                             "--fleet-dir)", Location(str(path)))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise InputError(f"the fleet journal cannot be read ({exc}); it is damaged. {AFRESH}",
                             Location(str(path))) from None
        wrong = _damage(data, fleet_id)
        if wrong:
            raise InputError(f"not a fleet journal of format {FORMAT}: {wrong}; it is damaged. {AFRESH}",
                             Location(str(path)))
        return cls(path, data)

    def site_states(self) -> dict[str, str]:
        with self._lock:
            return {name: rec.get("state", "waiting") for name, rec in self.data["sites"].items()}

    def record(self, site: str, state: str, **info: Any) -> None:
        with self._lock:
            rec = self.data["sites"].setdefault(site, {})
            # messages may quote outside text (an error echoing a URL): no secret reaches the file
            rec.update({k: redact(v) if isinstance(v, str) else v for k, v in info.items() if v is not None},
                       state=state, updated_utc=_now())
            self._dirty = True
            if time.monotonic() - self._saved_at >= SAVE_EVERY:
                self._save(durable=False)

    def note(self, **info: Any) -> None:
        """Fleet-level facts (when a rollout stopped and why, when it resumed), written to disk
        with every site state recorded so far."""
        with self._lock:
            self.data.update({k: redact(v) if isinstance(v, str) else v for k, v in info.items()})
            self._save(durable=True)

    def _save(self, *, durable: bool) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.data, fh, indent=1, sort_keys=True)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            self._saved_at = time.monotonic()
            self._dirty = False
        except BaseException:
            with_suppressed_unlink(tmp)
            raise


# The way forward from a fleet journal that cannot be trusted: each site's own journal, on its
# server, still says what happened there, so a new rollout over the same sites finds the patched
# ones with nothing to do and names a half-patched one with its `recover` command.
AFRESH = ("Each site's own journal is intact: start the rollout again (deployer apply PLAYBOOK with the same "
          "sites); a site already patched has nothing to do, and one left half-patched is named with its "
          "`deployer recover` command")


def _damage(data: Any, fleet_id: str) -> str | None:
    """What makes `data` unusable as a fleet journal (its shape, not its story), or None.
    Every field a resume reads is checked here, so a hand edit or a torn disk is refused in
    words, and a damaged fingerprint never silently turns off the check of what changed."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    if data.get("format") != FORMAT:
        return f"format {data.get('format')!r}"
    if data.get("id") != fleet_id:
        return f"its id is {data.get('id')!r}, not {fleet_id!r}"
    for key, kinds in (("command", (str,)), ("inventory", (str,)), ("playbook", (str, type(None))),
                       ("playbook_sha256", (str, type(None))), ("sites", (dict,))):
        if not isinstance(data.get(key), kinds):
            return f"no {key}" if key not in data else f"its {key} is not a {kinds[0].__name__}"
    if "fingerprint" in data and not isinstance(data["fingerprint"], dict):
        return "its fingerprint is not an object"
    for site, rec in data["sites"].items():
        if not isinstance(rec, dict) or not isinstance(rec.get("state", "waiting"), str):
            return f"site {site}'s record is not an object with a state"
    return None


def with_suppressed_unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
