"""`preflight: {pcm_record: FILE, request: ID}`: Q166765's checks before a PCM-service
distribution or a hotfix; a failed check stops the playbook before anything changes.

Plan: every check of deployer/sms/preflight.py runs against the site as it will be at that
point of the plan (the PCM service's state as earlier steps leave it). A check that fails
refuses the plan (exit 2, nothing touched) with the requirement it enforces; one that
cannot be checked on a target is a warning of the plan. What the checks read (the PCM
service, Helper.srv's Pcmsvc32.exe, the backup marker) is part of the plan's fingerprint,
so a saved plan is refused when any of it changed. Run: a preflight that is the plan's
first action checks again (a saved plan may be applied much later); nothing has changed
yet, so a failure leaves the site as it was. Undo: nothing to undo.

`pcm_record` (relative to the playbook): the package's PCM record(s), PCMDUMP output or
deployer-pcm YAML; `request` picks one record by RequestID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field

from ..errors import InputError
from ..model import winpath
from ..model.common import Strict, accepts
from ..sms import layout
from ..targets.base import TargetError
from .base import StepKind, StepModel, plural

# The checks and the PCM record readers are imported when a preflight step is planned or run:
# every playbook loads every step kind, and most have no preflight step.
if TYPE_CHECKING:
    from ..sms import preflight as checks
    from ..sms.pcm.record import PcmRecord


class PreflightSpec(Strict):
    pcm_record: str | None = Field(default=None, description="the package's PCM record(s), PCMDUMP output or "
                                   "deployer-pcm YAML, relative to the playbook")
    request: str | None = Field(default=None, description="picks one record by its RequestID")


@accepts(lambda inner: {"anyOf": [inner, {"type": "null"}]})  # `- preflight:` alone
def _spec(v: Any) -> Any:
    return {} if v is None else v  # `- preflight:` alone means every check with no PCM record


class PreflightStep(StepModel):
    preflight: Annotated[PreflightSpec, BeforeValidator(_spec)] = Field(
        description="Q166765's checks before a PCM-service distribution or a hotfix (empty: every check, no PCM record)")


@dataclass
class Preflight:
    number: int
    step: int
    server: str  # the site server: where the run's journal notes it
    passed: int
    unchecked: list[str] = field(default_factory=list)  # "check on target: detail"
    pcm_record: str | None = None
    request: str | None = None
    kind: str = "preflight"


def _records(path: str | None, request: str | None, where: str) -> list[PcmRecord] | None:
    if path is None:
        if request:
            raise ValueError("request picks a record of pcm_record: give the file too")
        return None
    from ..sms.pcm.load import load as load_pcm

    records = load_pcm(path).records
    if request:
        records = [r for r in records if r.request_id.casefold() == request.casefold()]
        if not records:
            raise ValueError(f"no record with RequestID {request!r} in {where}")
    return records


def _failure_text(failed: list[checks.CheckResult]) -> str:
    return "; ".join(f"{r.check} on {r.target}: {r.detail} [{r.requirement}]" for r in failed)


class PreflightKind(StepKind):
    key = "preflight"
    model = PreflightStep
    action = Preflight
    summary_rank = 5

    def files_named(self, spec: Any) -> dict[str, str]:
        record = spec.get("pcm_record") if isinstance(spec, dict) else None
        return {"pcm_record": record} if isinstance(record, str) else {}

    def normalise(self, doc, declared, index, step):
        spec = step.preflight
        if spec.pcm_record is None:
            if spec.request:
                raise doc.error(("steps", index, "preflight", "request"),
                                "request picks a record of pcm_record: give the file too")
            return step
        path = (Path(doc.path).parent / spec.pcm_record).resolve()
        try:
            _records(str(path), spec.request, spec.pcm_record)
        except ValueError as exc:
            raise doc.error(("steps", index, "preflight", "request"), str(exc)) from None
        except InputError as exc:  # the record file's own error, at its own file:line
            raise InputError(f"{exc} (the pcm_record of this playbook's preflight step)") from None
        return step.model_copy(update={"preflight": spec.model_copy(update={"pcm_record": str(path)})})

    def plan(self, planner, i, step):
        from ..sms import preflight as checks

        spec = step.preflight
        records = _records(spec.pcm_record, spec.request, spec.pcm_record or "")
        states = {}
        for ep in planner.conn.endpoints.values():
            # fingerprinted readings: a saved plan is refused when any of them changed
            planner.obs.service(ep, checks.PCM_SERVICE)
            planner.obs.file(ep, f"{layout.helper_bin(ep.platform)}\\{checks.PCM_IMAGE}", content=False)
            marker = planner.site.site.preflight.backup_marker
            if marker:
                planner.obs.file(ep, marker, content=False)
            known = planner.svc_state.get((ep.name, checks.PCM_SERVICE))
            if known:
                states[ep.name] = known
        results = checks.run(planner.site, planner.conn, planner.pb, records, service_states=states)
        failed = checks.failed(results)
        if failed:
            raise planner.error(("steps", i, "preflight"),
                                f"preflight failed, nothing was changed: {_failure_text(failed)}")
        unchecked = [f"{r.check} on {r.target}: {r.detail}" for r in results if r.status == checks.UNKNOWN]
        for u in unchecked:
            planner.problems.append(f"preflight: cannot check {u}")
        planner.add(Preflight(planner.number(), i, planner.conn.site_server.name,
                              sum(r.status == checks.PASS for r in results), unchecked, spec.pcm_record,
                              spec.request))

    def execute(self, run, a):
        if a.number != 1:
            return  # earlier actions changed the site on purpose: the plan-time checks stand
        from ..sms import preflight as checks

        records = _records(a.pcm_record, a.request, a.pcm_record or "")
        failed = checks.failed(checks.run(run.site, run.conn, _AsPlanned(run.manifest, run.plan), records))
        if failed:
            raise TargetError(f"preflight no longer passes, nothing was changed: {_failure_text(failed)}",
                              server=a.server)

    def undo(self, undo, a):
        pass  # checks change nothing

    def describe(self, a):
        return f"preflight checks (Q166765): {plural(a.passed, 'check')} passed" + \
            (f", {len(a.unchecked)} cannot be checked" if a.unchecked else "")

    def label(self, a):
        return "preflight checks"

    def render(self, a, tz):
        return [(self.describe(a), None)]


@dataclass(frozen=True)
class _AsPlanned:
    """What the checks ask of the playbook, answered from the run's plan and manifest (a kind loads
    no playbook: the loader sits above the registry). A file installs when the plan replaces it."""

    manifest: Any
    plan: Any

    def installs(self, name: str) -> bool:
        return any(winpath.basename(t.path).casefold() == name.casefold() for t in self.plan.touched())
