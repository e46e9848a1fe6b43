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

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, PayloadUnverifiable
from .payloads import cache_dir, fetch, sha256_file

# where a worker reads the inventory's relative paths (serve.py's --project sets it); here, not in
# serve.py, because the task that reads it must not import the worker's start-up (an import cycle)
PROJECT_ENV = "DEPLOYER_WORKER_PROJECT"


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
    """The bundle as a folder on this worker (texts written, payloads fetched and verified); its root.

    Content-addressed and immutable once published: the folder is named by the bundle's
    digest and built whole in a private temporary folder beside it, then renamed into place
    in one step. Tasks of one rollout starting at once on one host each build their own
    copy; the first rename wins, the others find the complete folder and drop theirs. No
    task ever sees a text being rewritten or a payload file unlinked under it."""
    base = base or cache_dir().parent / "projects"
    root = base / bundle.digest
    if (root / COMPLETE).is_file():
        return root
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.digest[:16]}.", suffix=".tmp", dir=base))
    try:
        _build(bundle, redis, tmp)
        for _ in range(3):
            try:
                os.rename(tmp, root)
                break
            except OSError:
                if (root / COMPLETE).is_file():
                    break  # another task's copy is in place: the same bytes
                # an incomplete folder by that name (an older deployer, a crash): set aside, never used
                with contextlib.suppress(FileNotFoundError):
                    os.rename(root, base / f".{bundle.digest[:16]}.incomplete-{os.urandom(3).hex()}")
        if not (root / COMPLETE).is_file():
            raise PayloadUnverifiable(f"the rollout's project folder {root} could not be put in place")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # another task's copy won the rename
    return root


COMPLETE = ".complete"


def _build(bundle: Bundle, redis, root: Path) -> None:
    for relpath, text in bundle.texts.items():
        p = _inside(root, relpath)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    for relpath, sha in bundle.payloads.items():
        p = _inside(root, relpath)
        p.parent.mkdir(parents=True, exist_ok=True)
        cached = fetch(redis, sha)
        try:
            os.link(cached, p)
        except OSError:  # another file system: copy
            shutil.copyfile(cached, p)
        if sha256_file(p) != sha:
            raise PayloadUnverifiable(f"the hotfix file {relpath} does not verify after it was placed: refused")
    (root / COMPLETE).write_text("ok\n")
