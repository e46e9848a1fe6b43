"""SMS 1.2 services, the files they hold open, and the control codes each accepts.

Control codes follow Q168682 (Sendcode.exe): 128-255 are user-defined codes;
128-130 go to SMS_EXECUTIVE, SMS_HIERARCHY_MANAGER and SMS_SITE_CONFIG_MANAGER; 132 to
every SMS site service; 192-196 to SMS_SITE_CONFIG_MANAGER only. Windows answers a code
the service does not accept with ERROR_INVALID_SERVICE_CONTROL (1052), and any code sent
to a stopped service with ERROR_SERVICE_NOT_ACTIVE (1062).
"""

from __future__ import annotations

from dataclasses import dataclass

USER_CODES = range(128, 256)

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

_MEMORY_CODES = frozenset({128, 129, 130})
_ALL_SITE = frozenset({132})
_WATCHDOG = frozenset({192, 193, 194, 195, 196})

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
            raise ControlCodeError(f"service {service!r} is not an SMS service; allowed: {', '.join(SMS_SERVICES)}")
        accepts = info.accepts
    if code not in accepts:
        takers = accepting_services(code)
        who = ", ".join(takers) if takers else "no SMS service"
        raise ControlCodeError(
            f"{service} does not accept control code {code} ({describe_code(code)}); Windows would answer "
            f"ERROR_INVALID_SERVICE_CONTROL (1052). Per Q168682, code {code} is accepted by: {who}"
        )


def lookup(name: str) -> ServiceInfo:
    info = SMS_SERVICES.get(str(name).upper())
    if info is None:
        raise ValueError(f"unknown service {name!r}; allowed: {', '.join(SMS_SERVICES)}")
    return info
