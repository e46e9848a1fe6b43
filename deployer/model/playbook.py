"""A playbook: a KB article's procedure as ordered, declarative steps.

Each step is a mapping with exactly one action key:
  stop: [SERVICE, ...]            start: [SERVICE, ...]
  replace: {files: [...], into: TEMPLATE, platforms: [...]}
  reset_site: {}                  sendcode: {service: NAME, code: 128-255}
and optionally `servers:` (site_server, the default; logon_servers; helper_servers;
all; or a list of server names) and `name:` (a label shown in plans).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, field_validator

from ..errors import InputError, InputErrors
from ..sms import services as sms_services
from ..sms.platforms import Platform
from ..templating import TemplateProblem, check_syntax
from ..yamlsrc import Document, load_yaml
from .common import Strict, number_in, validate
from .manifest import FileName, LoadedManifest, PlatformField, load_manifest

SELECTORS = ("site_server", "logon_servers", "helper_servers", "all")


def _services(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


ServiceList = Annotated[list[str], BeforeValidator(_services), Field(min_length=1)]


def _selector(v: Any) -> Any:
    # One message naming every choice, instead of pydantic's two (one per branch of the union,
    # neither of which mentions the other).
    if (isinstance(v, str) and v in SELECTORS) or (isinstance(v, list) and all(isinstance(n, str) for n in v)):
        return v
    got = repr(v) if isinstance(v, str) else {dict: "a mapping", list: "a list with a non-name in it",
                                              type(None): "nothing"}.get(type(v), type(v).__name__)
    raise ValueError(f"must be one of {', '.join(SELECTORS)}, or a list of server names (got {got})")


Selector = Annotated[Union[Literal["site_server", "logon_servers", "helper_servers", "all"], list[str]],
                     BeforeValidator(_selector)]


class _StepBase(Strict):
    name: str | None = None
    servers: Selector = "site_server"


class StopStep(_StepBase):
    stop: ServiceList


class StartStep(_StepBase):
    start: ServiceList


class ReplaceSpec(Strict):
    files: list[FileName] = Field(min_length=1)
    into: str
    platforms: list[PlatformField] | None = None

    @field_validator("into")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            check_syntax(v)
        except TemplateProblem as exc:
            raise ValueError(str(exc)) from None
        return v


class ReplaceStep(_StepBase):
    replace: ReplaceSpec


class ResetSpec(Strict):
    timeout: Annotated[float, number_in(0, 3600, "timeout", integer=False, above=True)] = Field(
        default=300.0, description="seconds to wait for the helper copies")


class ResetStep(Strict):
    name: str | None = None
    reset_site: ResetSpec


def _code(v: Any) -> Any:
    # The range and the service's codes are checked against Q168682 after validation
    # (check_control); here only the type, with a message that says what a code is.
    if isinstance(v, str) and re.fullmatch(r"\s*[0-9]{1,12}\s*", v):
        return int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("a control code is a whole number from 128 to 255 (the user-defined service codes of "
                         "Q168682)")
    return v


class SendcodeSpec(Strict):
    service: str
    code: Annotated[int, BeforeValidator(_code)]


class SendcodeStep(_StepBase):
    sendcode: SendcodeSpec


Step = Union[StopStep, StartStep, ReplaceStep, ResetStep, SendcodeStep]
STEP_KINDS: dict[str, type[Strict]] = {
    "stop": StopStep, "start": StartStep, "replace": ReplaceStep, "reset_site": ResetStep, "sendcode": SendcodeStep,
}


class ServiceDecl(Strict):
    """A non-SMS service a playbook controls, with the user-defined codes it accepts."""

    accepts: list[Annotated[int, number_in(128, 255, "control code")]] = Field(default_factory=list)


class PlaybookHead(Strict):
    kb: str
    title: str | None = None
    description: str | None = None
    manifest: str
    payloads: str = Field(description="folder with the hotfix files, one subfolder per platform")
    services: dict[str, ServiceDecl] = Field(default_factory=dict)
    steps: list[Any] = Field(min_length=1)


def step_kind(step: Step) -> str:
    return next(k for k, cls in STEP_KINDS.items() if isinstance(step, cls))


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

    def accepts(self, service: str) -> frozenset[int] | None:
        decl = self.head.services.get(service)
        return frozenset(decl.accepts) if decl else None

    def step_location(self, index: int, *rest: str | int):
        return self.doc.location(("steps", index, *rest))


def _canonical_service(name: str, declared: dict[str, ServiceDecl]) -> str:
    for d in declared:
        if d.casefold() == name.casefold():
            return d
    return sms_services.lookup(name).name


def _parse_step(doc: Document, head: PlaybookHead, i: int, raw: Any) -> Step:
    kp = ("steps", i)
    if not isinstance(raw, dict):
        raise doc.error(kp, f"a step is a mapping with one action key; allowed: {', '.join(STEP_KINDS)}")
    actions = [k for k in raw if k in STEP_KINDS]
    if len(actions) != 1:
        unknown = [k for k in raw if k not in STEP_KINDS and k not in ("name", "servers")]
        if not actions and unknown:
            raise doc.error(kp + (unknown[0],), f"unknown step {unknown[0]!r}; allowed steps: {', '.join(STEP_KINDS)}")
        what = "no action" if not actions else f"several actions ({', '.join(actions)})"
        raise doc.error(kp, f"a step has exactly one action key, found {what}; allowed: {', '.join(STEP_KINDS)}")
    step = validate(doc, STEP_KINDS[actions[0]], raw, prefix=kp)
    declared = head.services
    if isinstance(step, (StopStep, StartStep)):
        key = "stop" if isinstance(step, StopStep) else "start"
        names = []
        for j, n in enumerate(getattr(step, key)):
            try:
                names.append(_canonical_service(n, declared))
            except ValueError as exc:
                raise doc.error(kp + (key, j), _with_declared(str(exc), declared)) from None
        step = step.model_copy(update={key: names})
    elif isinstance(step, SendcodeStep):
        spec = step.sendcode
        try:
            svc = _canonical_service(spec.service, declared)
        except ValueError as exc:
            raise doc.error(kp + ("sendcode", "service"), _with_declared(str(exc), declared)) from None
        decl = declared.get(svc)
        try:
            sms_services.check_control(svc, spec.code, frozenset(decl.accepts) if decl else None)
        except sms_services.ControlCodeError as exc:
            raise doc.error(kp + ("sendcode", "code"), str(exc)) from None
        step = step.model_copy(update={"sendcode": spec.model_copy(update={"service": svc})})
    if isinstance(step, _StepBase) and isinstance(step.servers, list) and not step.servers:
        raise doc.error(kp + ("servers",), f"servers: is empty; use one of {', '.join(SELECTORS)} or server names")
    return step


def _with_declared(msg: str, declared: dict[str, ServiceDecl]) -> str:
    if declared:
        msg += f"; or a service this playbook declares under services: ({', '.join(declared)})"
    else:
        msg += "; other services must be declared under the playbook's services: key"
    return msg


def _check_against_manifest(doc: Document, steps: list[Step], manifest: LoadedManifest) -> list[InputError]:
    errors = []
    for i, step in enumerate(steps):
        if not isinstance(step, ReplaceStep):
            continue
        for j, name in enumerate(step.replace.files):
            entries = [f for f in manifest.manifest.files if f.name.casefold() == name.casefold()]
            wanted: list[Platform] = step.replace.platforms or []
            if not entries:
                errors.append(doc.error(("steps", i, "replace", "files", j),
                                        f"{name} is not in the manifest {manifest.path.name}; files there: "
                                        + ", ".join(sorted({f.name for f in manifest.manifest.files}))))
                continue
            for p in wanted:
                if not any(f.platform == p for f in entries):
                    have = ", ".join(f.platform.key for f in entries)
                    errors.append(doc.error(("steps", i, "replace", "files", j),
                                            f"the manifest lists {name} for {have}, not for {p.key}"))
    return errors


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
    manifest_path = (doc.path.parent / head.manifest)
    try:
        manifest = load_manifest(manifest_path)
    except InputError as exc:
        if exc.location and exc.location.file == str(manifest_path) and exc.message == "file not found":
            raise doc.error(("manifest",), f"manifest {head.manifest!r} not found (looked at {manifest_path})") from None
        if exc.location and exc.location.file == str(manifest_path) and exc.location.line is None:
            # the manifest could not be opened at all (`manifest: ''` or a folder, unreadable): the
            # mistake is this line of the playbook, and the error had no line to point at
            raise doc.error(("manifest",), f"manifest {head.manifest!r} ({manifest_path}): {exc.message}; "
                            "expected the manifest YAML file, relative to this playbook") from None
        raise
    if manifest.manifest.kb != head.kb.strip().upper():
        errors.append(doc.error(("manifest",), f"the manifest is for {manifest.manifest.kb}, the playbook for {head.kb}"))
    if not errors:
        errors.extend(_check_against_manifest(doc, steps, manifest))
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return LoadedPlaybook(head, steps, doc, manifest)
