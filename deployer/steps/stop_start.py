"""`stop: [SERVICE, ...]` and `start: [SERVICE, ...]`: service transitions, waiting for the
final state. A service already in that state is skipped.

Undo: a stop is undone by the settle phase of the undo (every service back to the state the
plan observed), after the files are restored; before them, every service the run did stop
is stopped again if something restarted it, since Windows refuses to replace a file a
running service holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from ..sms import services as sms_services
from ..targets.base import RUNNING, STOPPED
from ..model.common import accepts
from .base import StepKind, StepModel, plural

SERVICE_NAME = {"type": "string", "minLength": 1}


@accepts(lambda inner: {"anyOf": [SERVICE_NAME, {"type": "array", "items": SERVICE_NAME, "minItems": 1}],
                        "description": "a service name, or a list of them"})
def _services(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


ServiceList = Annotated[list[str], BeforeValidator(_services), Field(min_length=1)]


class StopStep(StepModel):
    stop: ServiceList = Field(description="stop these services, waiting until each is stopped; one already stopped "
                              "is skipped")


class StartStep(StepModel):
    start: ServiceList = Field(description="start these services, waiting until each runs; one already running is "
                               "skipped")


@dataclass
class StopService:
    number: int
    step: int
    server: str
    service: str
    before: str
    kind: str = "stop"


@dataclass
class StartService:
    number: int
    step: int
    server: str
    service: str
    before: str
    kind: str = "start"


class _Transition(StepKind):
    target: str
    verb: str
    summary_rank = 10
    summary_group = "services"
    outage_only = True

    def normalise(self, doc, declared, index, step):
        names = []
        for j, n in enumerate(getattr(step, self.key)):
            try:
                names.append(sms_services.canonical(n, declared))
            except ValueError as exc:
                raise doc.error(("steps", index, self.key, j), sms_services.with_declared(str(exc), declared)) from None
        return step.model_copy(update={self.key: names})

    def plan(self, planner, index, step):
        for ep in planner.servers(index, step.servers):
            for name in getattr(step, self.key):
                state = planner.state(ep, name, index)
                if state == self.target:
                    planner.skip(index, ep.name, f"{self.key} {name}", f"already {self.target}")
                    continue
                planner.add(self.action(planner.number(), index, ep.name, name, state))
                planner.svc_state[(ep.name, name.upper())] = self.target

    def execute(self, run, a):
        run.service(a.server, a.service, self.target)

    def undo(self, undo, a):
        pass  # services are quiesced before and settled after the files (undo.py)

    def service_effects(self, a):
        return [(a.server, a.service, self.target)]

    def describe(self, a):
        other = RUNNING if self.target == STOPPED else STOPPED
        return f"{self.key} {a.service} on {a.server} ({other} -> {self.target})"

    def label(self, a):
        return f"{self.key} {a.service}"

    def render(self, a, tz):
        other = RUNNING if self.target == STOPPED else STOPPED
        return [(f"{self.key} {a.service} on {a.server}: {other} -> {self.target}", None)]

    def summarize(self, actions):
        return plural(len(actions), "service transition") if actions else None


class Stop(_Transition):
    key = "stop"
    model = StopStep
    action = StopService
    target = STOPPED

    def quiesce(self, undo, a):
        # only a stop that completed changed anything: a stop that failed, or never ran, did not
        if a.number not in undo.done or a.server in undo.unreachable:
            return
        undo.stop_if_running(a.server, a.service, "to restore the files it holds")


class Start(_Transition):
    key = "start"
    model = StartStep
    action = StartService
    target = RUNNING
