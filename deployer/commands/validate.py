"""`deployer validate FILE...`: check playbooks, manifests and inventories offline.

Each file is loaded exactly as `plan` and `apply` load it (the same loaders, so the same
messages with file:line), without an inventory or a site: a playbook with its manifest and
every step, service and control-code rule that needs no site; a manifest; an inventory with
its groups. The kind is told by the file's keys, never by its name. Nothing is connected
and nothing is written.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import DeployerError, ExitCode, InputError, InputErrors, exit_help
from ..report import out as outmod

KINDS = ("playbook", "manifest", "inventory")


@dataclass
class Checked:
    path: Path
    kind: str | None
    summary: str = ""
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.path), "kind": self.kind, "valid": not self.errors, "summary": self.summary,
                "errors": self.errors}


def kind_of(data: Any) -> str | None:
    """What a YAML document is, by its top-level keys (None: cannot tell)."""
    if not isinstance(data, dict):
        return None
    if "sites" in data:
        return "inventory"
    if "steps" in data:
        return "playbook"
    # a manifest's groups: is a list of tables; an inventory's is a mapping (and it has sites:)
    if "files" in data or isinstance(data.get("groups"), list) or "rule" in data:
        return "manifest"
    return None


def _messages(exc: DeployerError) -> list[str]:
    if isinstance(exc, InputErrors):
        return [str(e) for e in exc.errors]
    return [str(exc) or type(exc).__name__]


def _is_plan(path: Path) -> bool:
    """A saved plan (`deployer plan -o`): JSON with the plan's own keys, or a .json file that is
    not JSON at all (load_plan then names the line where it breaks)."""
    from ..plan.saved import looks_like_plan

    if not looks_like_plan(path):
        return False
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return path.suffix.lower() == ".json"
    return isinstance(data, dict) and bool({"format", "digest", "actions"} & set(data))


def check_plan(path: Path, inventory: Path | None) -> Checked:
    """The checks `apply PLAN` makes before it connects: the file, its digest and types, its
    site as the inventory defines it now, its servers and its manifest."""
    from ..fleet.workflow import check_saved

    try:
        plan, site, _ = check_saved(path, inventory)
    except DeployerError as exc:
        return Checked(path, "plan", errors=_messages(exc))
    return Checked(path, "plan", summary=f"plan {plan.kb} for site {site.name}: {_n(len(plan.actions), 'action')}")


def check_file(path: Path, inventory: Path | None = None) -> Checked:
    from ..model.yamlsrc import load_yaml

    if _is_plan(path):
        return check_plan(path, inventory)

    try:
        doc = load_yaml(path)
    except DeployerError as exc:
        return Checked(path, None, errors=_messages(exc))
    kind = kind_of(doc.data)
    if kind is None:
        what = "is empty" if doc.data is None else "is not a playbook, a manifest or an inventory"
        if isinstance(doc.data, dict):  # `step:` for `steps:`
            from ..model.suggest import close_matches

            near = [f"{k!r} for {c!r}" for k in doc.data for c in close_matches(str(k), ["steps", "files", "sites"], 1)]
            what += f" (did you mean {' or '.join(near)}?)" if near else ""
        return Checked(path, None, errors=[str(InputError(
            f"{what}: a playbook has steps:, a manifest files: (or groups: of tables), an inventory sites:",
            doc.location()))])
    try:
        return Checked(path, kind, summary=_load(kind, path))
    except DeployerError as exc:
        return Checked(path, kind, errors=_messages(exc))


def _load(kind: str, path: Path) -> str:
    if kind == "playbook":
        from ..steps.playbook import load_playbook

        pb = load_playbook(path)
        return (f"playbook {pb.kb}: {_n(len(pb.steps), 'step')}; manifest {os.path.normpath(pb.manifest.path)} "
                f"({_n(len(pb.manifest.manifest.files), 'file')})")
    if kind == "manifest":
        from ..model.manifest import load_manifest

        m = load_manifest(path)
        return f"manifest {m.manifest.kb}: {_n(len(m.manifest.files), 'file')}, rule {m.manifest.rule}"
    from ..model.inventory import load_inventory

    inv = load_inventory(path)
    groups = len(inv.inventory.groups)
    return f"inventory: {_n(len(inv.inventory.sites), 'site')}" + (f", {_n(groups, 'group')}" if groups else "")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class Format(str, Enum):
    text = "text"
    json = "json"


def validate(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Playbooks, manifests, inventories "
                                                "(told apart by their keys: steps:, files:, sites:) and saved plans.")],
    format: Annotated[Format, typer.Option("--format", "-f", help="json: one entry per file with its kind and "
                                           "errors.")] = Format.text,
    inventory: Annotated[Optional[Path], typer.Option("--inventory", "-i", help="For a saved plan: the inventory "
                                                   "`apply PLAN -i` would use (default: the plan's own).")] = None,
) -> None:
    """Check playbooks, manifests, inventories and saved plans offline, with the messages plan and apply give (no site read)."""
    results = [check_file(p, inventory) for p in files]
    bad = [r for r in results if r.errors]
    if format == Format.json:
        sys.stdout.write(json.dumps({"valid": not bad, "files": [r.to_json() for r in results]}, indent=1) + "\n")
    else:
        stdout, stderr = outmod.stdout(), outmod.stderr()
        for r in results:
            if r.errors:
                for e in r.errors:
                    stderr.line(f"deployer: {e}", "bad")
            else:
                stdout.line(f"{r.path}: valid {r.summary}", "good")
        stdout.line(f"{len(results) - len(bad)} of {len(results)} files valid"
                    + (f"; {len(bad)} with errors" if bad else "") + ".", "bad" if bad else "good")
    if bad:
        raise typer.Exit(int(ExitCode.BAD_INPUT))


EPILOG = exit_help(ExitCode.OK, ExitCode.BAD_INPUT,
                   meanings={0: "every file is valid", 2: "a file has errors (each printed with its file:line)"})
