"""SMS 1.2 services, the files they hold open, and the control codes each accepts.

Control codes follow Q168682 (Sendcode.exe): 128-255 are user-defined codes;
128-130 go to SMS_EXECUTIVE, SMS_HIERARCHY_MANAGER and SMS_SITE_CONFIG_MANAGER; 132 to
every SMS site service; 192-196 to SMS_SITE_CONFIG_MANAGER only. Windows answers a code
the service does not accept with ERROR_INVALID_SERVICE_CONTROL (1052), and any code sent
to a stopped service with ERROR_SERVICE_NOT_ACTIVE (1062).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model.suggest import did_you_mean

USER_CODES = range(128, 256)
EXECUTIVE = "SMS_EXECUTIVE"  # runs Maintenance Manager's cycles: restarting it starts one (Q181630)

CODE_MEANINGS: dict[int, str] = {
    128: "start memory allocation tracking",
    129: "stop memory allocation tracking",
    130: "dump memory allocation data (*.mem files in the root directory)",
    132: "toggle net pause support",
    192: "normal watchdog cycle",
    193: "watchdog cycle, write a status (.ct2) file",
    194: "watchdog cycle treated as an upgrade",
    195: "watchdog cycle, write a user group MIF",
    196: "watchdog cycle, modify logon scripts if so configured",
}

# Q168682's own words for each code, as Sendcode.exe's documentation gives them.
CODE_ARTICLE_TEXT: dict[int, str] = {
    128: "Starts memory allocation tracking.",
    129: "Stops memory allocation tracking.",
    130: "Dumps all the memory allocation data to the Alerter.mem, Appmgr.mem, Hman.mem, Scmanmem.log, Sched.mem, "
         "and Smsexec.mem files in the root directory.",
    132: "Toggles the net pause support on and off.",
    192: "Initiates a normal watchdog cycle (verifies the current installation, checks for new Systems Management "
         "Server logon servers, restarts any stopped components, and so on).",
    193: "Initiates a watchdog cycle and writes a status (.ct2) file.",
    194: "Initiates a watchdog cycle but treats it as an upgrade. To be most effective, shut down and restart the "
         "computer before issuing this command.",
    195: "Initiates a watchdog cycle and writes a user group MIF file.",
    196: "Initiates a watchdog cycle and modifies logon scripts only if the Automatically Configure Workstation Logon "
         "Scripts and Use All Detected Servers options are enabled.",
}

_MEMORY_CODES = frozenset({128, 129, 130})
_ALL_SITE = frozenset({132})
_WATCHDOG = frozenset({192, 193, 194, 195, 196})

# The rows of Q168682's table "which Systems Management Server services support which codes".
CODE_RULES: tuple[tuple[str, frozenset[int], str], ...] = (
    ("128-130", _MEMORY_CODES, "SMS_EXECUTIVE, SMS_HIERARCHY_MANAGER, SMS_SITE_CONFIG_MANAGER"),
    ("132", _ALL_SITE, "all Systems Management Server site services"),
    ("192-196", _WATCHDOG, "SMS_SITE_CONFIG_MANAGER"),
)

SITE_RESET_CODE = 194


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    display_name: str
    image: str  # executable file name
    modules: tuple[str, ...]  # DLLs it keeps loaded (and therefore locked)
    accepts: frozenset[int]  # user-defined control codes (Q168682)
    on_helpers: bool  # also installed on logon/helper servers, run from Helper.srv


SMS_SERVICES: dict[str, ServiceInfo] = {
    s.name: s
    for s in (
        ServiceInfo("SMS_SITE_CONFIG_MANAGER", "SMS Site Configuration Manager", "Siteins.exe", (),
                    _MEMORY_CODES | _ALL_SITE | _WATCHDOG, False),
        ServiceInfo("SMS_EXECUTIVE", "SMS Executive", "Smsexec.exe",
                    ("Base.dll", "Base3.dll", "Base4.dll", "Smsinst.dll"),
                    _MEMORY_CODES | _ALL_SITE, False),
        ServiceInfo("SMS_HIERARCHY_MANAGER", "SMS Hierarchy Manager", "Preinst.exe", (),
                    _MEMORY_CODES | _ALL_SITE, False),
        ServiceInfo("SMS_INVENTORY_AGENT_NT", "SMS Inventory Agent", "Invwin32.exe", (),
                    _ALL_SITE, True),
        ServiceInfo("SMS_PACKAGE_COMMAND_MANAGER_NT", "SMS Package Command Manager", "Pcmsvc32.exe",
                    ("Base.dll",), _ALL_SITE, True),
        ServiceInfo("SMS_CLIENT_CONFIG_MANAGER", "SMS Client Configuration Manager", "Clicfg.exe", (),
                    _ALL_SITE, True),
    )
}

# Service files Site Configuration Manager installs into each managed server's
# Helper.srv\<Platform>.bin on a site reset (code 194): what the helper services run.
HELPER_FILES: tuple[str, ...] = tuple(
    dict.fromkeys(f for s in SMS_SERVICES.values() if s.on_helpers for f in (s.image, *s.modules))
)
HELPER_SERVICES: tuple[str, ...] = tuple(s.name for s in SMS_SERVICES.values() if s.on_helpers)


class ControlCodeError(ValueError):
    pass


def describe_code(code: int) -> str:
    return CODE_MEANINGS.get(code, "no SMS meaning")


def code_rule(code: int) -> str | None:
    """Q168682's table row for a code, quoted: `192-196: SMS_SITE_CONFIG_MANAGER`."""
    for codes, members, who in CODE_RULES:
        if code in members:
            return f"{codes}: {who}"
    return None


@dataclass(frozen=True)
class ControlCode:
    """One row of `deployer sendcode --list`: a code, what it does, who takes it."""

    code: int
    meaning: str
    article_text: str
    rule: str
    services: tuple[str, ...]


def control_codes() -> list[ControlCode]:
    return [ControlCode(c, CODE_MEANINGS[c], CODE_ARTICLE_TEXT[c], code_rule(c) or "", tuple(accepting_services(c)))
            for c in sorted(CODE_MEANINGS)]


def accepting_services(code: int) -> list[str]:
    return [s.name for s in SMS_SERVICES.values() if code in s.accepts]


def check_control(service: str, code: int, accepts: frozenset[int] | None = None) -> None:
    """Refuse a control code the service would answer with 1052, before anything runs.

    `accepts` overrides the SMS table for services declared in the inventory.
    """
    if code not in USER_CODES:
        raise ControlCodeError(f"control code {code} is outside 128-255, the range for user-defined service codes")
    if accepts is None:
        info = SMS_SERVICES.get(service.upper())
        if info is None:
            raise ControlCodeError(f"service {service!r} is not an SMS service{did_you_mean(service, SMS_SERVICES)}; "
                                   f"allowed: {', '.join(SMS_SERVICES)}")
        accepts = info.accepts
    if code not in accepts:
        takers = accepting_services(code)
        who = ", ".join(takers) if takers else "no SMS service"
        rule = code_rule(code)
        quoted = f" (Q168682's table: {rule})" if rule else " (Q168682 gives it no meaning)"
        raise ControlCodeError(
            f"{service} does not accept control code {code} ({describe_code(code)}); Windows would answer "
            f"ERROR_INVALID_SERVICE_CONTROL (1052). Per Q168682, code {code} is accepted by: {who}{quoted}"
        )


def lookup(name: str) -> ServiceInfo:
    info = SMS_SERVICES.get(str(name).upper())
    if info is None:
        raise ValueError(f"unknown service {name!r}{did_you_mean(str(name), SMS_SERVICES)}; "
                         f"allowed: {', '.join(SMS_SERVICES)}")
    return info


def canonical(name: str, declared: dict[str, Any]) -> str:
    """The service's name as deployer spells it: a playbook's declared service, or an SMS one."""
    for d in declared:
        if d.casefold() == name.casefold():
            return d
    return lookup(name).name


def with_declared(msg: str, declared: dict[str, Any]) -> str:
    """`msg` (an unknown service) with where else the service could come from: the playbook's services:."""
    if declared:
        return msg + f"; or a service this playbook declares under services: ({', '.join(declared)})"
    return msg + "; other services must be declared under the playbook's services: key"
