"""`deployer catalog list|graph` and `deployer scan`: which hotfixes each site needs (issue 23).

The catalogue is a folder of manifests (deployer/kb/catalog.py); the scan reads each site
once and judges every hotfix as verify would (deployer/scan/). Nothing here writes to a site.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..fleet.options import DEFAULT_FORKS, AllOpt, ForksOpt, GroupOpt, SitesOpt
from ..errors import EXIT_CODES_HELP, ExitCode, InputError
from ..report import formats, out as outmod
from ..report.escape import visible_line
from ..report.owned import ForceOpt
from .common import InventoryOpt, emit

if TYPE_CHECKING:
    from ..kb.catalog import Catalog

CatalogOpt = Annotated[Optional[Path], typer.Option(
    "--catalog", "-c", help="Folder of manifests, one hotfix each (default: manifests/ beside the inventory, "
                            "else ./manifests).")]

app = typer.Typer(help="The hotfix catalogue: a folder of manifests, and which hotfix supersedes which.",
                  no_args_is_help=True, epilog=EXIT_CODES_HELP)


# the formats a scan is written in: report/formats' registry
ScanFormat = Enum("ScanFormat", {n: n for n in formats.names("scan")}, type=str)  # type: ignore[misc]


class GraphFormat(str, Enum):
    text = "text"
    dot = "dot"


def _default_catalog(inventory: Path | None) -> Path:
    from ..model import inventory_source

    try:
        inv = inventory_source.resolve(inventory).path
        beside = inv.parent / "manifests"
        if beside.is_dir():
            try:  # as the operator would type it: the apply commands the scan prints are copied from it
                return beside.resolve().relative_to(Path.cwd().resolve())
            except ValueError:
                return beside
    except InputError:
        pass
    return Path("manifests")


def load(catalog: Path | None, inventory: Path | None = None) -> "Catalog":
    """The catalogue; playbooks from it, from playbooks/ beside it, and from playbooks/ beside the
    inventory (a catalogue imported elsewhere still finds the project's procedures by their kb:)."""
    from ..model import inventory_source
    from ..kb.catalog import load_catalog

    folder = catalog or _default_catalog(inventory)
    dirs = [folder, folder.parent / "playbooks"]
    try:
        beside = inventory_source.resolve(inventory).path.parent / "playbooks"
        if beside.resolve() not in {d.resolve() for d in dirs}:
            try:
                beside = beside.resolve().relative_to(Path.cwd().resolve())
            except ValueError:
                pass
            dirs.append(beside)
    except InputError:
        pass  # no inventory: `catalog list` needs none
    return load_catalog(folder, dirs)


def _problems(cat: "Catalog") -> None:
    from ..report.scan_text import safe

    err = outmod.stderr()
    for p in cat.problems:
        err.line(f"deployer: {safe(str(p.path))}: not loaded: {safe(p.message)}", "warn")
    for kb, old in cat.unknown:
        err.line(f"deployer: {kb} declares it supersedes {old}, which is not in the catalogue", "warn")
    for kb in cat.cycles():
        err.line(f"deployer: {kb} supersedes itself through a chain of declared supersedes: (check the manifests' "
                 "supersedes:); a scan counts none of that chain as installed through it", "warn")


@app.command("list", epilog=EXIT_CODES_HELP)
def catalog_list(catalog: CatalogOpt = None, inventory: InventoryOpt = None,
                 format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text") -> None:
    """Each hotfix of the catalogue with its files, platforms and products; unreadable manifests are named."""
    from ..report.scan_text import safe

    if format not in ("text", "json"):
        raise InputError(f"--format {format!r}: allowed: text, json")
    cat = load(catalog, inventory)
    hotfixes = sorted(cat.hotfixes.values(), key=lambda h: (h.released, h.kb))
    if format == "json":
        sys.stdout.write(json.dumps({
            "catalog": str(cat.root),
            "hotfixes": [{"kb": h.kb, "title": h.title, "released": h.released_text, "manifest": str(h.path),
                          "playbook": str(h.playbook) if h.playbook else None, "platforms": h.platforms(),
                          "products": h.loaded.manifest.products, "flagged": h.flagged,
                          "supersedes": [e.old for e in cat.edges if e.new == h.kb],
                          "files": [{"name": f.name, "platform": f.platform.article_name, "date": str(f.date),
                                     "version": f.version} for f in h.files]} for h in hotfixes],
            "problems": [{"manifest": str(p.path), "error": p.message} for p in cat.problems]}, indent=1) + "\n")
        return
    out = outmod.stdout()
    out.line(f"{len(hotfixes)} hotfixes in {safe(str(cat.root))}" + (
        f"; {len(cat.problems)} manifests not loaded" if cat.problems else "") + ".")
    for h in hotfixes:
        out.line(f"{safe(h.kb):<9} {h.released_text:<9} {safe(h.title)}")
        names = sorted({f.name for f in h.files}, key=str.casefold)
        out.line(f"    files ({len(h.files)}): {safe(', '.join(names))}")
        out.line(f"    platforms: {safe(', '.join(h.platforms()))}")
        if h.loaded.manifest.products:
            out.line(f"    products: {safe('; '.join(h.loaded.manifest.products))}")
        if h.playbook:
            out.line(f"    playbook: {safe(str(h.playbook))}")
        for f in h.flagged:
            out.line(f"    flagged for review: {safe(f)}", "warn")
    _problems(cat)


def chains(cat: "Catalog") -> list[str]:
    """The supersedence chains as indented lines: each newest hotfix, what it replaces below it."""
    from ..kb.catalog import reduced
    from ..report.scan_text import safe

    edges = reduced(cat)
    below: dict[str, list] = {}
    for e in edges:
        below.setdefault(e.new, []).append(e)
    olds = {e.old for e in edges}
    roots = [kb for kb in cat.hotfixes if kb in below and kb not in olds]
    lines: list[str] = []

    def node(kb: str) -> str:
        h = cat.hotfixes[kb]
        return f"{safe(kb)} ({h.released_text}) {safe(h.title)}"

    def walk(kb: str, depth: int, seen: tuple) -> None:
        for e in below.get(kb, []):
            loop = " (a cycle)" if e.old in seen else ""
            lines.append(f"{'    ' * depth}+- supersedes {node(e.old)} [{e.how}]{loop}")
            if not loop:
                walk(e.old, depth + 1, (*seen, e.old))

    shown: set[str] = set()
    # the newest chains first; then what only a cycle of declared supersedes reaches
    for r in [*sorted(roots, key=lambda k: cat.hotfixes[k].released, reverse=True), *below]:
        if r in shown:
            continue
        lines.append(node(r))
        walk(r, 1, (r,))
        shown |= {r, *cat.replaces(r)}
    return lines


def _dot(cat: "Catalog") -> str:
    from ..kb.catalog import reduced

    def q(text: str) -> str:  # a DOT string: control characters shown as every output shows them, one line
        flat = visible_line(text)
        return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'

    edges = reduced(cat)
    used = {e.new for e in edges} | {e.old for e in edges}
    out = ["digraph supersedence {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for kb in (k for k in cat.hotfixes if k in used):
        h = cat.hotfixes[kb]
        out.append(f"  {q(kb)} [label={q(f'{kb} {h.released_text}')}, tooltip={q(h.title or '')}];")
    for e in edges:
        out.append(f"  {q(e.new)} -> {q(e.old)} [label={q(e.how)}];")
    out.append("}")
    return "\n".join(out) + "\n"


@app.command("graph", epilog=EXIT_CODES_HELP)
def catalog_graph(catalog: CatalogOpt = None, inventory: InventoryOpt = None,
                  format: Annotated[GraphFormat, typer.Option("--format", "-f")] = GraphFormat.text) -> None:
    """Which hotfix supersedes which (derived from later files, or declared by `supersedes:`): text or DOT."""
    cat = load(catalog, inventory)
    if format == GraphFormat.dot:
        sys.stdout.write(_dot(cat))
    else:
        out = outmod.stdout()
        lines = chains(cat)
        for line in lines or ["No hotfix of the catalogue supersedes another."]:
            out.line(line)
        alone = [kb for kb in cat.hotfixes if all(kb not in (e.new, e.old) for e in cat.edges)]
        if lines and alone:
            out.line(f"({len(alone)} hotfixes neither supersede nor are superseded.)")
    _problems(cat)


def scan(
    site: SitesOpt = None,
    group: GroupOpt = None,
    all_sites: AllOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    format: Annotated[ScanFormat, typer.Option("--format", "-f")] = ScanFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to FILE.")] = None,
    force: ForceOpt = False,
    forks: ForksOpt = DEFAULT_FORKS,
) -> None:
    """Which hotfixes of the catalogue each site has: installed, missing, partial, superseded, not applicable or
    cannot tell, with the files that decide, and the order to apply what is missing. Reads only. Exit 3 when a
    hotfix is missing or partial."""
    from ..fleet import workflow
    from ..fleet.select import select_sites
    from ..scan.judge import scan as run_scan

    if output is not None and output.is_dir():
        raise InputError(f"--output {output}: is a folder; name a file")
    if output is not None:
        outmod.check_replace(output, what="the report", force=force)  # before the sites are read
    refs = select_sites(workflow.inventory(inventory), site, group, all_sites)
    cat = load(catalog, inventory)
    _problems(cat)
    err = outmod.stderr()
    if forks < 1:
        raise InputError(f"--forks {forks}: must be 1 or more")
    result = run_scan(cat, refs, warn=lambda s, m: err.line(f"Warning: {s}: {m}", "warn"), forks=forks)
    # through report/formats, as every command's report: drawn on the terminal (text), else written
    subject = formats.SiteReport(scan=result, chains=lambda: chains(cat))
    text: str | None = None
    if format.value == formats.DEFAULT and output is None:
        formats.show(formats.DEFAULT, "scan", subject, outmod.stdout())
    else:
        text = formats.write_site(format.value, "scan", subject)
    if output is not None and text is not None:
        verdict = "MISSING HOTFIXES" if result.failing else "nothing missing"
        emit(text, output, f"Report written to {output}: {verdict}", what="the report", force=force)
    elif text is not None:
        sys.stdout.write(text)
    if result.failing:
        raise typer.Exit(int(ExitCode.MISMATCH))
    if result.unreachable:
        raise typer.Exit(int(ExitCode.FAILED_RESTORED))


def lab_patches(specs: list[str] | None, catalog: Path | None, inventory: Path | None, targets: list, force: bool):
    """`lab init --patched-with`: per site, the callback that writes the hotfixes' files (lab_patch.py)."""
    if not specs:
        return None
    from ..simulator import lab_patch

    patches = lab_patch.parse(specs)
    from ..targets.mock import SITE_FILE

    existing = [t.name for t in targets if (t.mock_root() / SITE_FILE).exists()]
    if existing and not force:
        raise InputError(f"--patched-with makes a new site, and {', '.join(existing)} exists; add --force to "
                         "recreate it (its state is lost)")
    cat = load(catalog, inventory)
    writers = {t.name: lab_patch.writer(t, cat, patches) for t in targets}  # every refusal before any site is made
    return lambda site: writers[site.name]
