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
import itertools
import json
import ntpath
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, PayloadUnverifiable
from .payloads import cache_dir, fetch, sha256_file

if TYPE_CHECKING:
    from ..steps.playbook import LoadedPlaybook

# where a worker reads the inventory's relative paths (serve.py's --project sets it); here, not in
# serve.py, because the task that reads it must not import the worker's start-up (an import cycle)
PROJECT_ENV = "DEPLOYER_WORKER_PROJECT"


@dataclass(frozen=True)
class Bundle:
    playbook: str  # relative to the bundle's root
    inventory: str
    texts: dict[str, str]  # relative path -> text
    payloads: dict[str, str]  # relative path -> sha256
    # relative path -> the controller's file its bytes are read from (to publish them); never sent
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"playbook": self.playbook, "inventory": self.inventory, "texts": self.texts,
                "payloads": self.payloads}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Bundle":
        return cls(d["playbook"], d["inventory"], dict(d["texts"]), dict(d["payloads"]))

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


def make_bundle(pb: "LoadedPlaybook", inventory_path: Path) -> Bundle:
    """The bundle of a playbook (with its manifest and hotfix files) and an inventory.

    Laid out as the playbook names its manifest and hotfix folder (`manifest:`, `payloads:`,
    relative to it), not where the controller's files physically are: a `payloads/` (or
    `playbooks/`, `manifests/`) folder that is a symbolic link, inside the project or leading
    out of it, is followed on the controller exactly as a one-site run follows it, and the
    worker receives plain files where the playbook looks for them. The hotfix files sent are
    the ones a site's plan reads (`<payloads>/<platform folder>/<file>`); their bytes are
    still checked against the manifest on the worker, as on a site. Any other file a step names
    relative to the playbook (a preflight's `pcm_record`) travels as a hotfix file does, by its
    sha256, its bytes as they are (a PCMDUMP text may be UTF-16 or in the DOS code page)."""
    refs: dict[Any, str] = {("manifest",): pb.head.manifest, ("payloads",): pb.head.payloads, **_step_files(pb)}
    for where, ref in refs.items():
        if posixpath.isabs(ref.replace("\\", "/")) or ntpath.isabs(ref):
            # the worker would read its own disk's path of that name, not the controller's file
            raise InputError(f"{where[-1]}: {ref!r} is an absolute path; a rollout through workers needs it relative "
                             "to the playbook (the worker rebuilds the playbook's folder, not the controller's disk)",
                             pb.doc.location(where))
    norm = {k: posixpath.normpath(v.replace("\\", "/")) for k, v in refs.items()}
    up = max(len(list(itertools.takewhile(lambda part: part == "..", v.split("/")))) for v in norm.values())
    book = Path(os.path.abspath(pb.path))
    folders = [p.name or f"_{i}" for i, p in enumerate(list(book.parents)[:up])][::-1]
    folders += [f"_{i}" for i in range(up - len(folders))]  # a playbook too near / for its '..': named apart
    playbook = "/".join([*folders, book.name])
    here = posixpath.dirname(playbook)
    manifest = posixpath.normpath(posixpath.join(here, norm[("manifest",)]))
    payload_root = posixpath.normpath(posixpath.join(here, norm[("payloads",)]))
    payloads, sources = {}, {}
    for where, ref in refs.items():
        named = pb.path.parent / ref
        # a link on the way that points nowhere: each worker would say "not found" in its own cache
        dangling = next((p for p in (named, *named.parents) if os.path.islink(p) and not p.exists()), None)
        if dangling is not None:
            raise InputError(f"{where[-1]}: {ref!r}: {dangling} is a symbolic link to {os.readlink(dangling)}, which "
                             "does not exist: nothing was sent; point the link at the folder", pb.doc.location(where))
        if where[0] == "steps":  # read where the controller's step read it (links followed)
            rel, src = posixpath.normpath(posixpath.join(here, norm[where])), pb.path.parent / ref
            payloads[rel], sources[rel] = sha256_file(src), str(src)
    folder = pb.payload_dir()
    for d in sorted(folder.iterdir()) if folder.is_dir() else []:
        for f in sorted(d.iterdir()) if d.is_dir() else []:
            if f.is_file():  # a link to a file counts as the file: a site's plan reads it so too
                rel = posixpath.join(payload_root, d.name, f.name)
                payloads[rel], sources[rel] = sha256_file(f), str(f)
    inv = Path(os.path.abspath(inventory_path))
    inventory = inv.name if inv.name not in (playbook, manifest) else f".inventory/{inv.name}"
    texts = {playbook: pb.doc.text, manifest: pb.manifest.doc.text,
             inventory: inventory_path.read_text(encoding="utf-8")}
    return Bundle(playbook, inventory, texts, payloads, sources)


def _step_files(pb: "LoadedPlaybook") -> dict[tuple[Any, ...], str]:
    """The files the playbook's steps name relative to it, by their place in the playbook."""
    from ..steps import KINDS  # each kind says which files it names (steps/base.py files_named)

    steps = pb.doc.data.get("steps") if isinstance(pb.doc.data, dict) else None
    found = {}
    for i, raw in enumerate(steps if isinstance(steps, list) else []):
        for key, spec in raw.items() if isinstance(raw, dict) else ():
            kind = KINDS.get(key)
            for name, ref in (kind.files_named(spec) if kind is not None else {}).items():
                found[("steps", i, key, name)] = ref
    return found


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
