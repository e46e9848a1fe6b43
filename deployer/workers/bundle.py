"""What a task carries: the playbook, its manifest and the inventory as text, and the hotfix
files by sha256.

Why the texts travel with the task instead of living on the workers: a rollout must run the
exact playbook and manifest the operator planned with, on every worker, with nothing to
keep in sync on the jump hosts; they are a few kilobytes. The hotfix files are megabytes,
so they travel once per rollout by content (payloads.py). The inventory's paths (a mock
site's folder, key files, password files) are read on the worker: a worker resolves its own
secrets, which never cross the broker.

On the worker the bundle becomes a project folder laid out as on the controller (the
playbook's `manifest:` and `payloads:` keep their meaning), keyed by the bundle's digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .payloads import cache_dir, fetch, sha256_file


@dataclass(frozen=True)
class Bundle:
    playbook: str  # relative to the bundle's root
    inventory: str
    texts: dict[str, str]  # relative path -> text
    payloads: dict[str, str]  # relative path -> sha256

    def to_json(self) -> dict[str, Any]:
        return {"playbook": self.playbook, "inventory": self.inventory, "texts": self.texts,
                "payloads": self.payloads}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Bundle":
        return cls(d["playbook"], d["inventory"], dict(d["texts"]), dict(d["payloads"]))

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


def make_bundle(playbook_path: Path, manifest_path: Path, inventory_path: Path, payload_dir: Path) -> Bundle:
    """The bundle of a playbook (with its manifest and hotfix files) and an inventory."""
    files = [playbook_path.resolve(), manifest_path.resolve(), inventory_path.resolve()]
    payloads = sorted(p.resolve() for p in payload_dir.rglob("*") if p.is_file()) if payload_dir.is_dir() else []
    root = Path(os.path.commonpath([str(p.parent) for p in files] + ([str(payload_dir.resolve())] if payloads else [])))

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    texts = {rel(p): p.read_text(encoding="utf-8") for p in files}
    return Bundle(rel(files[0]), rel(files[2]), texts, {rel(p): sha256_file(p) for p in payloads})


def _inside(root: Path, relpath: str) -> Path:
    p = (root / relpath).resolve()
    if root.resolve() not in p.parents:
        raise InputError(f"a task names the path {relpath!r}, outside its project folder: refused")
    return p


def materialise(bundle: Bundle, redis, base: Path | None = None) -> Path:
    """The bundle as a folder on this worker (texts written, payloads fetched and verified); its root."""
    base = base or cache_dir().parent / "projects"
    root = base / bundle.digest
    done = root / ".complete"
    if done.is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    for relpath, text in bundle.texts.items():
        p = _inside(root, relpath)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    for relpath, sha in bundle.payloads.items():
        p = _inside(root, relpath)
        p.parent.mkdir(parents=True, exist_ok=True)
        cached = fetch(redis, sha)
        if p.exists():
            p.unlink()
        try:
            os.link(cached, p)
        except OSError:  # another file system: copy
            p.write_bytes(cached.read_bytes())
        if sha256_file(p) != sha:
            raise InputError(f"the hotfix file {relpath} does not verify after it was placed: refused")
    done.write_text("ok\n")
    return root
