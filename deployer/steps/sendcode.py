"""`sendcode: {service: NAME, code: 128-255}`: a user-defined service control code, as
Sendcode.exe sends it (Q168682).

Load: the code is checked against Q168682's table for the service (194 to SMS_EXECUTIVE is
refused: Windows would answer 1052). Plan: the service must be running at that point of
the plan (a stopped one would answer 1062). Undo: a code cannot be taken back; the undo
says so and goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from ..model.common import NUMERIC_TEXT, Strict, accepts
from ..sms import services as sms
from ..targets.base import RUNNING
from .base import StepKind, StepModel, plural


@accepts(lambda inner: {"anyOf": [{"type": "integer", "minimum": 128, "maximum": 255}, NUMERIC_TEXT],
                        "description": "a user-defined control code, 128-255 (Q168682)"})
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
    service: str = Field(description="an SMS 1.2 service, or one declared under the playbook's services:")
    code: Annotated[int, BeforeValidator(_code)]


class SendcodeStep(StepModel):
    sendcode: SendcodeSpec = Field(description="send a user-defined control code to a service (checked against "
                                   "Q168682)")


@dataclass
class SendCode:
    number: int
    step: int
    server: str
    service: str
    code: int
    kind: str = "sendcode"


class Sendcode(StepKind):
    key = "sendcode"
    model = SendcodeStep
    action = SendCode
    summary_rank = 30
    summary_group = "codes"
    reversible = False

    def normalise(self, doc, declared, index, step):
        spec = step.sendcode
        try:
            svc = sms.canonical(spec.service, declared)
        except ValueError as exc:
            raise doc.error(("steps", index, "sendcode", "service"), sms.with_declared(str(exc), declared)) from None
        decl = declared.get(svc)
        try:
            sms.check_control(svc, spec.code, frozenset(decl.accepts) if decl else None)
        except sms.ControlCodeError as exc:
            raise doc.error(("steps", index, "sendcode", "code"), str(exc)) from None
        return step.model_copy(update={"sendcode": spec.model_copy(update={"service": svc})})

    def plan(self, planner, i, step):
        spec = step.sendcode
        for ep in planner.servers(i, step.servers):
            state = planner.state(ep, spec.service, i)
            if state != RUNNING:
                raise planner.error(("steps", i, "sendcode"),
                                    f"code {spec.code} goes to {spec.service} on {ep.name}, which is {state} at "
                                    "that point; Windows would answer ERROR_SERVICE_NOT_ACTIVE (1062). Start it "
                                    "in an earlier step")
            planner.add(SendCode(planner.number(), i, ep.name, spec.service, spec.code))

    def execute(self, run, a):
        run.ep(a.server).services.control(a.service, a.code)

    def undo(self, undo, a):
        undo.say(f"  code {a.code} sent to {a.service} cannot be taken back ({sms.describe_code(a.code)}); "
                 "nothing to undo")

    def describe(self, a):
        return f"send code {a.code} ({sms.describe_code(a.code)}) to {a.service} on {a.server}"

    def label(self, a):
        return f"send code {a.service} {a.code}"

    def render(self, a, tz):
        return [(f"send code {a.code} to {a.service} on {a.server} ({sms.describe_code(a.code)})", None)]

    def summarize(self, actions):
        return plural(len(actions), "control code") if actions else None
