"""A hotfix catalogue: a folder of manifests, each a hotfix, and which hotfix supersedes which.

As Hfnetchk's XML catalogue did for Windows: every manifest of the folder is loaded; one that
cannot be read is named with its error and the rest are kept; rows an importer flagged for
review are listed. Supersedence is

- derived: S supersedes H when S replaces every file of H (same name, platform and folder
  kind) with a later one: a higher version where both list one, else a later date and time;
- declared: a manifest's `supersedes: [Q...]` (what files alone cannot show).

Playbooks are matched to hotfixes by their `manifest:` (or, failing that, `kb:`), read as
plain YAML so that a draft playbook that would not load still names its hotfix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from ..errors import DeployerError
from ..model.manifest import FileEntry, LoadedManifest, load_manifest, version_tuple
from ..sms import attrs, layout
from ..model.yamlsrc import load_yaml

DERIVED, DECLARED = "derived", "declared"


def _stamp(f: FileEntry, zone: str | None) -> datetime:
    """The listed write time, comparable across manifests: a manifest that pins a zone is read
    in it, the others (the site's zone, whichever it is) as one common wall clock."""
    dt = datetime.combine(f.date, f.time or time(0, 0))
    if zone:
        return dt.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def file_key(f: FileEntry) -> tuple[str, str, str]:
    """Same name, platform and folder kind (Site.srv or Maincfg.box\\Client.src)."""
    kind = "client" if layout.is_client_file(f.name) else "site"
    return f.name.casefold(), f.platform.key, kind


def later(new: FileEntry, new_zone: str | None, old: FileEntry, old_zone: str | None) -> bool:
    """Is `new` a later build of the same file than `old`?"""
    if new.version and old.version:
        a, b = version_tuple(new.version), version_tuple(old.version)
        if a != b:
            return a > b
    return _stamp(new, new_zone) > _stamp(old, old_zone)


@dataclass
class Hotfix:
    kb: str
    title: str | None
    path: Path
    loaded: LoadedManifest
    playbook: Path | None = None
    flagged: list[str] = field(default_factory=list)  # "line N: reason" of rows flagged for review

    @property
    def files(self) -> list[FileEntry]:
        return self.loaded.manifest.files

    @property
    def released(self) -> datetime:
        """The newest listed write time: the order to apply hotfixes in (oldest first)."""
        zone = self.loaded.manifest.timezone
        return max(_stamp(f, zone) for f in self.files)

    @property
    def released_text(self) -> str:
        return attrs.format_date(self.released.date())

    def platforms(self) -> list[str]:
        return sorted({f.platform.article_name for f in self.files})


@dataclass
class Problem:
    path: Path
    message: str


@dataclass
class Edge:
    new: str
    old: str
    how: str  # derived, declared (or both: "derived, declared")


@dataclass
class Catalog:
    root: Path
    hotfixes: dict[str, Hotfix] = field(default_factory=dict)  # by KB, in file order
    problems: list[Problem] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (KB, declared superseded KB not here)

    def superseders(self, kb: str) -> list[str]:
        """Every hotfix that supersedes `kb`, directly or through a chain (nearest first)."""
        direct: dict[str, list[str]] = {}
        for e in self.edges:
            direct.setdefault(e.old, []).append(e.new)
        out: list[str] = []
        todo = list(direct.get(kb, []))
        while todo:
            k = todo.pop(0)
            if k in out or k == kb:  # a declared cycle must not loop
                continue
            out.append(k)
            todo.extend(direct.get(k, []))
        return out

    def replaces(self, kb: str) -> set[str]:
        """Every hotfix `kb` supersedes, directly or through a chain."""
        return {k for k in self.hotfixes if kb in self.superseders(k)}

    def cycles(self) -> list[str]:
        return sorted(k for k in self.hotfixes if kb_in_own_chain(self, k))


def kb_in_own_chain(cat: Catalog, kb: str) -> bool:
    direct: dict[str, list[str]] = {}
    for e in cat.edges:
        direct.setdefault(e.old, []).append(e.new)
    seen, todo = set(), list(direct.get(kb, []))
    while todo:
        k = todo.pop()
        if k == kb:
            return True
        if k not in seen:
            seen.add(k)
            todo.extend(direct.get(k, []))
    return False


def manifest_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".yaml", ".yml"))


def load_catalog(folder: Path, playbook_dirs: list[Path] | None = None) -> Catalog:
    """Every manifest of `folder`; playbooks from `playbook_dirs` (default: the folder itself and
    a `playbooks/` beside it). A manifest that cannot be read is a Problem, never the end."""
    from ..errors import InputError

    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no such folder"
        raise InputError(f"catalogue {folder}: {what}; name a folder of manifests (such as the output of "
                         "`deployer kb import ARTICLES -o DIR`)")
    cat = Catalog(folder)
    playbooks = _playbooks(playbook_dirs if playbook_dirs is not None else [folder, folder.parent / "playbooks"])
    for p in manifest_files(folder):
        if p.resolve() in playbooks["paths"]:
            continue  # a playbook kept beside its manifests (kb import --playbook)
        try:
            loaded = load_manifest(p)
        except DeployerError as exc:
            note = ""
            if "# REVIEW line" in p.read_text(encoding="utf-8", errors="replace"):
                note = " (kb import left rows of it commented out for review: fix them against the article)"
            cat.problems.append(Problem(p, str(exc) + note))
            continue
        m = loaded.manifest
        if m.kb in cat.hotfixes:
            cat.problems.append(Problem(p, f"{m.kb} is also {cat.hotfixes[m.kb].path.name}; the first is kept"))
            continue
        flagged = [f"line {f.line or '?'}: {f.describe()}: {f.review}" for f in m.files if f.review]
        book = playbooks["by_manifest"].get(p.resolve()) or playbooks["by_kb"].get(m.kb)
        cat.hotfixes[m.kb] = Hotfix(m.kb, m.title, p, loaded, book, flagged)
    cat.edges = derive_edges(cat)
    return cat


def _playbooks(dirs: list[Path]) -> dict:
    """Playbooks by the manifest they name (resolved) and by their KB, read as plain YAML."""
    found: dict = {"paths": set(), "by_manifest": {}, "by_kb": {}}
    for d in dirs:
        if not d.is_dir():
            continue
        for p in manifest_files(d):
            try:
                if "steps:" not in p.read_text(encoding="utf-8", errors="replace"):
                    continue  # a manifest, not a playbook: not parsed twice (YAML parsing is most of a load)
                data = load_yaml(p).data
            except (DeployerError, OSError):
                continue  # a broken playbook names no hotfix; the manifest's own problems are reported
            if not isinstance(data, dict) or "steps" not in data:
                continue
            found["paths"].add(p.resolve())
            man = data.get("manifest")
            if isinstance(man, str):
                found["by_manifest"].setdefault((p.parent / man).resolve(), p)
            kb = data.get("kb")
            if isinstance(kb, str):
                found["by_kb"].setdefault(kb.strip().upper(), p)
    return found


def derive_edges(cat: Catalog) -> list[Edge]:
    """Derived and declared supersedence, one edge per (new, old)."""
    by_key: dict[tuple, list[tuple[str, FileEntry]]] = {}
    for kb, h in cat.hotfixes.items():
        for f in h.files:
            by_key.setdefault(file_key(f), []).append((kb, f))
    edges: dict[tuple[str, str], set[str]] = {}
    for kb, h in cat.hotfixes.items():
        zone = h.loaded.manifest.timezone
        candidates: set[str] | None = None
        for f in h.files:
            newer = {k for k, g in by_key[file_key(f)]
                     if k != kb and later(g, cat.hotfixes[k].loaded.manifest.timezone, f, zone)}
            candidates = newer if candidates is None else candidates & newer
            if not candidates:
                break
        for new in candidates or ():
            edges.setdefault((new, kb), set()).add(DERIVED)
    for kb, h in cat.hotfixes.items():
        for old in h.loaded.manifest.supersedes:
            if old == kb:
                continue
            if old in cat.hotfixes:
                edges.setdefault((kb, old), set()).add(DECLARED)
            else:
                cat.unknown.append((kb, old))
    order = list(cat.hotfixes)
    return [Edge(n, o, ", ".join(sorted(how))) for (n, o), how in
            sorted(edges.items(), key=lambda e: (order.index(e[0][0]), order.index(e[0][1])))]


def reduced(cat: Catalog) -> list[Edge]:
    """The edges a chain needs: A->C is left out when A->B->C says it."""
    out = []
    for e in cat.edges:
        via = [b.new for b in cat.edges if b.old == e.old and b.new != e.new]
        if any(e.new in cat.superseders(v) for v in via):
            continue
        out.append(e)
    return out
