"""`update_pcm_hosts: {files: [Pcmsvc32.exe], unreachable: report}`: update the PCM service on
the site's Windows NT Workstations and member servers (inventory `pcm_hosts:`), the way
Rservice does (Q241656: "Windows NT Workstation-based computers that are running Pcmsvc32
must be updated using Rservice"; Q186404): stop SMS_PACKAGE_COMMAND_MANAGER_NT, replace
its files in the host's install folder from the manifest, start it again.

The step plans, per host, the same actions the `stop`, `replace` and `start` steps plan,
so each host gets the same backup, journal, verification and rollback as every replace;
a host already at the manifest is skipped, service included. A host that is off or
unreachable when the plan is made is reported per host and skipped
(`unreachable: report`, the default), or stops the run before anything changes
(`unreachable: fail`). `hosts:` limits the step to some of the site's hosts.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import Field

from ..model.common import Strict
from ..model.manifest import FileName
from ..model.suggest import did_you_mean
from ..targets.base import RUNNING, STOPPED, TargetError
from ..sms.verify import Check
from .base import StepKind
from .replace import Replace
from .stop_start import StartService, StopService


class PcmHostsSpec(Strict):
    files: list[FileName] = Field(default_factory=lambda: ["Pcmsvc32.exe"], min_length=1,
                                  description="the PCM service's files to replace, each listed in the manifest")
    hosts: list[str] | None = Field(default=None, description="some of the site's pcm_hosts (default: all)")
    unreachable: Literal["report", "fail"] = Field(
        default="report", description="a host that cannot be reached: report it and go on, or fail the run")


class PcmHostsStep(Strict):
    name: str | None = Field(default=None, description="a label shown in plans")
    update_pcm_hosts: PcmHostsSpec = Field(
        default_factory=PcmHostsSpec, description="update the PCM service on the site's pcm_hosts as Rservice would: "
        "stop SMS_PACKAGE_COMMAND_MANAGER_NT, replace its files, start it")


@dataclasses.dataclass
class PcmHostsPlanned:
    """The registry's action slot for this kind. It is never planned: the step plans the
    stop, replace and start kinds' own actions for each host, so the run, the undo, the
    journal and the saved plans treat a workstation's files exactly as a server's."""

    number: int
    step: int
    server: str
    kind: str = "update_pcm_hosts"


class UpdatePcmHosts(StepKind):
    key = "update_pcm_hosts"
    model = PcmHostsStep
    action = PcmHostsPlanned
    summary_rank = 90
    summary_group = "pcm_hosts"

    def manifest_problems(self, doc, index, step, manifest):
        errors = []
        for j, name in enumerate(step.update_pcm_hosts.files):
            if not any(f.name.casefold() == name.casefold() for f in manifest.manifest.files):
                errors.append(doc.error(("steps", index, "update_pcm_hosts", "files", j),
                                        f"{name} is not in the manifest {manifest.path.name}"
                                        f"{did_you_mean(name, {f.name for f in manifest.manifest.files})}; files there: "
                                        + ", ".join(sorted({f.name for f in manifest.manifest.files}))))
        return errors

    def plan(self, planner, i, step):
        spec = step.update_pcm_hosts
        hosts = planner.site.site.pcm_hosts
        names = list(hosts)
        if spec.hosts is not None:
            names = []
            for j, want in enumerate(spec.hosts):
                match = [n for n in hosts if n.casefold() == want.casefold()]
                if not match:
                    raise planner.error(("steps", i, "update_pcm_hosts", "hosts", j),
                                        f"no PCM service host {want!r} in site {planner.site.name}{did_you_mean(want, hosts)}; "
                                        "pcm_hosts: "
                                        + (", ".join(hosts) or "none"))
                names.append(match[0])
        if not names:
            planner.skip(i, planner.site.name, "update PCM service hosts", "the site lists no pcm_hosts")
        for name in names:
            why = planner.conn.unreachable.get(name)
            if why is not None:
                if spec.unreachable == "fail":
                    raise TargetError(f"PCM service host {name} cannot be reached ({why}); the playbook says "
                                      "unreachable: fail, so nothing was changed", server=name)
                why = why[len(name) + 2:] if why.startswith(f"{name}: ") else why
                planner.skip(i, name, f"update {hosts[name].service}", f"unreachable, not updated: {why}")
                # its files are still the playbook's to verify: unchecked is never passed (verify.py)
                for fname in spec.files:
                    entry = planner.pb.manifest.manifest.entry(fname, hosts[name].platform)
                    if entry is not None:
                        planner.checks.append(Check(name, fname, planner.pb.manifest.manifest.files.index(entry)))
                continue
            self._plan_host(planner, i, planner.conn.endpoint(name), hosts[name], spec)

    def _plan_host(self, planner, i, ep, host, spec):
        manifest = planner.pb.manifest.manifest
        mark = len(planner.actions)
        for j, name in enumerate(spec.files):
            entry = manifest.entry(name, ep.platform)
            if entry is None:
                raise planner.error(("steps", i, "update_pcm_hosts", "files", j),
                                    f"the manifest has no {name} for {ep.platform.key}, the platform of PCM "
                                    f"service host {ep.name}")
            Replace()._plan_file(planner, i, j, ep, "", name, entry)
        replaces = planner.actions[mark:]
        if not replaces:
            return  # every file current: the service is not touched either
        del planner.actions[mark:]
        state = planner.state(ep, host.service, i)  # it holds its executable: stopped around the replace
        if state == RUNNING:
            planner.add(StopService(planner.number(), i, ep.name, host.service, state))
        for a in replaces:
            planner.add(dataclasses.replace(a, number=planner.number()))
        if state == RUNNING:  # a service the operator left stopped stays stopped
            planner.add(StartService(planner.number(), i, ep.name, host.service, STOPPED))

    # The actions planned are the stop, replace and start kinds' own: these are never called.

    def execute(self, run, a):
        raise AssertionError("update_pcm_hosts plans stop, replace and start actions only")

    def undo(self, undo, a):
        raise AssertionError("update_pcm_hosts plans stop, replace and start actions only")

    def describe(self, a):
        return "update PCM service hosts"

    def render(self, a, tz):
        return [(self.describe(a), None)]

    def summarize(self, actions):
        return None
