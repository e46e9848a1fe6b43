"""A playbook: a KB article's procedure as ordered, declarative steps.

Each step is a mapping with exactly one action key:
  stop: [SERVICE, ...]            start: [SERVICE, ...]
  replace: {files: [...], into: TEMPLATE, platforms: [...]}
  reset_site: {}                  sendcode: {service: NAME, code: 128-255}
and optionally `servers:` (site_server, the default; logon_servers; helper_servers;
all; or a list of server names) and `name:` (a label shown in plans).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from ..errors import InputError, InputErrors
from ..sms import services as sms_services
from ..model.suggest import did_you_mean
from ..model.yamlsrc import Document, load_yaml
from ..model.common import Strict, number_in, validate
from ..model.manifest import LoadedManifest, load_manifest

Step = Any  # a step kind's model (deployer/steps/)


def _kinds():
    from . import KINDS  # the kinds import the models this module's neighbours define

    return KINDS


class ServiceDecl(Strict):
    """A non-SMS service a playbook controls, with the user-defined codes it accepts."""

    accepts: list[Annotated[int, number_in(128, 255, "control code")]] = Field(
        default_factory=list, description="the user-defined control codes (128-255) the service accepts")


class PlaybookHead(Strict):
    kb: str = Field(description="the KB article number, such as Q241656 (the manifest's must be the same)")
    title: str | None = Field(default=None, description="the article's title, shown in plans and reports")
    description: str | None = Field(default=None, description="free text for the reader")
    draft: bool = Field(False, description="true in a playbook drafted by `deployer kb import --playbook`: `apply` "
                        "refuses it until a person has finished it and removed this line")
    manifest: str = Field(description="the manifest (the article's file attribute table), relative to this playbook")
    payloads: str = Field(description="folder with the hotfix files, one subfolder per platform")
    services: dict[str, ServiceDecl] = Field(default_factory=dict, description="services other than SMS 1.2's that "
                                             "the steps control, each with the control codes it accepts")
    steps: list[Any] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedPlaybook:
    head: PlaybookHead
    steps: list[Step]
    doc: Document
    manifest: LoadedManifest

    @property
    def path(self) -> Path:
        return self.doc.path

    @property
    def kb(self) -> str:
        return self.head.kb

    def payload_dir(self) -> Path:
        return (self.path.parent / self.head.payloads).resolve()

    def installs(self, name: str) -> bool:
        """Does a step of this playbook put the manifest file `name` on the servers (any kind)?"""
        from . import kind_of

        return any(f.casefold() == name.casefold() for s in self.steps for f in kind_of(s).installs(s))

    def accepts(self, service: str) -> frozenset[int] | None:
        decl = self.head.services.get(service)
        return frozenset(decl.accepts) if decl else None

    def refuse_draft(self) -> None:
        """A draft (kb import --playbook) is never applied: a person finishes it first."""
        if self.head.draft:
            raise InputError("this playbook is a draft written by `deployer kb import --playbook`: finish every "
                             "`# FINISH:` line, then remove the line `draft: true`; until then it can be planned, "
                             "not applied", self.doc.location(("draft",)))

    def step_location(self, index: int, *rest: str | int):
        return self.doc.location(("steps", index, *rest))


def _parse_step(doc: Document, head: PlaybookHead, i: int, raw: Any) -> Step:
    kinds = _kinds()
    kp = ("steps", i)
    if not isinstance(raw, dict):
        raise doc.error(kp, f"a step is a mapping with one action key; allowed: {', '.join(kinds)}")
    actions = [k for k in raw if k in kinds]
    if len(actions) != 1:
        unknown = [k for k in raw if k not in kinds and k not in ("name", "servers")]
        if not actions and unknown:
            raise doc.error(kp + (unknown[0],), f"unknown step {unknown[0]!r}{did_you_mean(unknown[0], kinds)}; "
                            f"allowed steps: {', '.join(kinds)}")
        what = "no action" if not actions else f"several actions ({', '.join(actions)})"
        raise doc.error(kp, f"a step has exactly one action key, found {what}; allowed: {', '.join(kinds)}")
    kind = kinds[actions[0]]
    step = kind.normalise(doc, head.services, i, validate(doc, kind.model, raw, prefix=kp))
    servers = getattr(step, "servers", None)
    if isinstance(servers, list) and not servers:
        raise doc.error(kp + ("servers",), "servers: is empty; use one of site_server, logon_servers, "
                        "helper_servers, all or server names")
    return step


def _key(step: Step) -> str:
    from . import kind_of

    return kind_of(step).key


def _manifest(doc: Document, head: PlaybookHead) -> LoadedManifest:
    manifest_path = (doc.path.parent / head.manifest)
    try:
        return load_manifest(manifest_path)
    except InputError as exc:
        if exc.location and exc.location.file == str(manifest_path) and exc.message == "file not found":
            raise doc.error(("manifest",), f"manifest {head.manifest!r} not found (looked at {manifest_path})") from None
        if exc.location and exc.location.file == str(manifest_path) and exc.location.line is None:
            # the manifest could not be opened at all (`manifest: ''` or a folder, unreadable): the
            # mistake is this line of the playbook, and the error had no line to point at
            raise doc.error(("manifest",), f"manifest {head.manifest!r} ({manifest_path}): {exc.message}; "
                            "expected the manifest YAML file, relative to this playbook") from None
        raise


def load_playbook(path: Path | str) -> LoadedPlaybook:
    doc = load_yaml(path)
    head = validate(doc, PlaybookHead)
    for name in head.services:
        if name.upper() in sms_services.SMS_SERVICES:
            raise doc.error(("services", name), f"{name} is an SMS service already known to deployer; do not redeclare it")
    errors: list[InputError] = []
    steps: list[Step] = []
    for i, raw in enumerate(head.steps):
        try:
            steps.append(_parse_step(doc, head, i, raw))
        except InputErrors as exc:
            errors.extend(exc.errors)
        except InputError as exc:
            errors.append(exc)
    try:
        manifest = _manifest(doc, head)
    except InputError as exc:
        # the steps' own problems are said too, not only the manifest's (`deployer validate`)
        found = [*errors, *(exc.errors if isinstance(exc, InputErrors) else [exc])]
        raise (found[0] if len(found) == 1 else InputErrors(found)) from None
    if manifest.manifest.kb != head.kb.strip().upper():
        errors.append(doc.error(("manifest",), f"the manifest is for {manifest.manifest.kb}, the playbook for {head.kb}"))
    if not errors:
        kinds = _kinds()
        for i, step in enumerate(steps):
            errors.extend(kinds[_key(step)].manifest_problems(doc, i, step, manifest))
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return LoadedPlaybook(head, steps, doc, manifest)
