"""Rservice .ini files -> the inventory's PCM service hosts.

Operators who update the PCM service on Windows NT Workstations with Rservice [Q186404]
already keep, per group of machines, an .ini naming them and the service
(`../shared/kb-ref/Q190891.md` shows one):

    [domain name]            EC_SALES=NTWD (every NT workstation of the domain) or =LISTED
    [machine list]           machines to include (NAME, NAME=include) or exclude (NAME=exclude)
    [service name]           *=SMS_PACKAGE_COMMAND_MANAGER_NT      (* = every machine;
    [executable file]        *=PCMSVC32.EXE                         NAME=... overrides it for one)
    [installation directory] *=C:\\PCMSVC
    [service account] [startup parameters] [source directory] [other files]
    [access permissions] [automatic start] [registry settings] [logfile path]

deployer reads the machines and, per machine, the service, executable and installation
directory; the other sections are Rservice's business and are only checked for shape.
A domain given as NTWD cannot be enumerated from a file: its machines must be listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import InputError, InputErrors, Location
from ..model.inventory import PCM_SERVICE, PcmHost
from .platforms import lookup as platform_lookup
from ..model.winpath import PathRuleError, parse_root
from ..report.escape import visible
from ..model.textcodec import decode_bom
from ..model.yamlsrc import read_input

MAX_BYTES = 1024 * 1024
MAX_ERRORS = 20  # a file that is no .ini at all need not be listed line by line

# Sections whose keys are machine names (or * for every machine).
PER_MACHINE = ("service account", "service name", "executable file", "installation directory",
               "startup parameters", "source directory", "other files", "access permissions", "automatic start",
               "registry settings", "logfile path")
SECTIONS = ("domain name", "machine list", *PER_MACHINE)
# Sections holding free-form lines (registry paths, file lists), not NAME=value pairs.
FREE_FORM = ("registry settings", "other files", "startup parameters")

INCLUDE = {"", "include", "yes", "1", "+"}
EXCLUDE = {"exclude", "no", "0", "-"}
DEFAULT_EXECUTABLE = "PCMSVC32.EXE"


@dataclass
class Value:
    text: str
    line: int


@dataclass
class RserviceIni:
    path: Path
    sections: dict[str, dict[str, Value]] = field(default_factory=dict)  # section -> casefolded key -> value
    keys: dict[tuple[str, str], str] = field(default_factory=dict)  # (section, casefolded key) -> key as written
    section_lines: dict[str, int] = field(default_factory=dict)

    def at(self, line: int) -> Location:
        return Location(str(self.path), line)

    def value(self, section: str, machine: str) -> Value | None:
        entries = self.sections.get(section, {})
        return entries.get(machine.casefold()) or entries.get("*")


@dataclass
class HostsFromIni:
    hosts: dict[str, PcmHost]
    notes: list[str]  # what the operator should know (domains that could not be enumerated, exclusions)


def _decode(raw: bytes, path: Path) -> str:
    text = decode_bom(raw, str(path))  # Notepad's "Unicode" (UTF-16) is text, not binary
    if text is not None:
        return text
    if b"\x00" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise InputError("file contains a NUL byte; expected an Rservice .ini text file (a binary file?)",
                         Location(str(path), line))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")  # Rservice's era wrote ANSI files


def parse_ini(path: Path) -> RserviceIni:
    text = _decode(read_input(path, noun="Rservice .ini", expected="an Rservice .ini file", max_bytes=MAX_BYTES),
                   path)
    ini = RserviceIni(path)
    errors: list[InputError] = []
    section: str | None = None
    seen_header = False
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            seen_header = True
            name = " ".join(line.strip("[]").split()).casefold()
            if not line.endswith("]") or not name:
                errors.append(InputError(f"section header {line!r} must be written [name]", ini.at(n)))
                section = None
            elif name not in SECTIONS:
                errors.append(InputError(f"unknown section [{name}]; an Rservice .ini has "
                                         + ", ".join(f"[{s}]" for s in SECTIONS), ini.at(n)))
                section = None
            elif name in ini.sections:
                errors.append(InputError(f"section [{name}] appears twice (first on line "
                                         f"{ini.section_lines[name]}); merge them", ini.at(n)))
                section = None
            else:
                section = name
                ini.sections[name] = {}
                ini.section_lines[name] = n
            continue
        if section is None:
            if not seen_header:
                errors.append(InputError("expected a [section] header before any setting; an Rservice .ini "
                                         "starts with [domain name] or [machine list]", ini.at(n)))
                seen_header = True  # one such error is enough
            continue  # under a header already reported as wrong
        if section in FREE_FORM:
            continue  # Rservice's own syntax (registry keys span lines); deployer does not use it
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if section == "machine list" and not eq:
            key, value = line, ""
        elif not eq or not key:
            errors.append(InputError(f"expected NAME=value in [{section}] (NAME is a machine, or * for every "
                                     "machine)", ini.at(n)))
            continue
        folded = key.casefold()
        if folded in ini.sections[section]:
            first = ini.sections[section][folded].line
            errors.append(InputError(f"{key} is set twice in [{section}] (first on line {first})", ini.at(n)))
            continue
        ini.sections[section][folded] = Value(value, n)
        ini.keys[(section, folded)] = key
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors[:MAX_ERRORS])
    return ini


def _check_machine(ini: RserviceIni, name: str, line: int) -> InputError | None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,14}", name):
        return InputError(f"machine name {name!r} must be a NetBIOS name: 1-15 letters, digits, - or _", ini.at(line))
    return None


def hosts_from_ini(path: Path, *, platform: str = "x86") -> HostsFromIni:
    """The PCM service hosts an Rservice .ini names, as inventory entries."""
    try:
        plat = platform_lookup(platform)
    except ValueError as exc:
        raise InputError(f"--platform: {exc}") from None
    ini = parse_ini(path)
    errors: list[InputError] = []
    notes: list[str] = []

    included: dict[str, int] = {}
    excluded: dict[str, int] = {}
    for folded, v in ini.sections.get("machine list", {}).items():
        name = ini.keys[("machine list", folded)]
        err = _check_machine(ini, name, v.line)
        if err:
            errors.append(err)
        elif v.text.casefold() in INCLUDE:
            included[name] = v.line
        elif v.text.casefold() in EXCLUDE:
            excluded[name] = v.line
        else:
            errors.append(InputError(f"{name}={v.text}: a machine is listed as NAME, NAME=include or NAME=exclude",
                                     ini.at(v.line)))
    for folded, v in ini.sections.get("domain name", {}).items():
        domain = ini.keys[("domain name", folded)]
        scope = v.text.casefold()
        if scope in ("ntwd", "ntsd", "ntwsd", "ntall", "all"):
            notes.append(f"{path}:{v.line}: domain {domain}={v.text} means every such machine of the domain; "
                         "deployer cannot list a domain's machines from a file, so only [machine list] and "
                         "machine-named settings are taken: add the others to [machine list]")
        elif scope != "listed":
            errors.append(InputError(f"{domain}={v.text}: a domain is NTWD (its NT workstations), NTSD (its "
                                     "servers) or LISTED (the machines of [machine list])", ini.at(v.line)))
    # machines named only by a per-machine setting (PCWS07=D:\PCMSVC) are hosts too
    for section in PER_MACHINE:
        for folded, v in ini.sections.get(section, {}).items():
            name = ini.keys[(section, folded)]
            if name == "*" or any(name.casefold() == m.casefold() for m in [*included, *excluded]):
                continue
            err = _check_machine(ini, name, v.line)
            if err:
                errors.append(err)
            else:
                included.setdefault(name, v.line)
    for name in excluded:
        notes.append(f"{path}:{excluded[name]}: {name} is excluded by [machine list]")
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)

    default_service = ini.sections.get("service name", {}).get("*")
    if default_service is not None and default_service.text.casefold() != PCM_SERVICE.casefold():
        raise InputError(f"this .ini installs the service {default_service.text!r}, not the PCM service "
                         f"({PCM_SERVICE}); deployer's pcm_hosts are machines running the PCM service",
                         ini.at(default_service.line))
    hosts: dict[str, PcmHost] = {}
    for name, line in included.items():
        host_errors = len(errors)
        service = ini.value("service name", name)
        if service is not None and service.text.casefold() != PCM_SERVICE.casefold():
            errors.append(InputError(
                f"{name}: the service is {service.text!r}; deployer's pcm_hosts run the PCM service "
                f"({PCM_SERVICE}), so this .ini is for another service", ini.at(service.line)))
        folder = ini.value("installation directory", name)
        if folder is None:
            errors.append(InputError(f"{name}: no installation directory; add *=C:\\PCMSVC (or {name}=...) under "
                                     "[installation directory]", ini.at(ini.section_lines.get("installation directory",
                                                                                               line))))
        else:
            try:
                parse_root(folder.text)
            except PathRuleError as exc:
                errors.append(InputError(f"{name}: installation directory: {exc}", ini.at(folder.line)))
        exe = ini.value("executable file", name)
        if exe is not None and not re.fullmatch(r"[^\\/:*?\"<>|]{1,255}", exe.text):
            errors.append(InputError(f"{name}: executable file {exe.text!r} must be a file name (its folder is the "
                                     "installation directory)", ini.at(exe.line)))
        if len(errors) > host_errors or folder is None:
            continue
        hosts[name] = PcmHost(platform=plat.key, install_dir=folder.text,
                              executable=exe.text if exe is not None else DEFAULT_EXECUTABLE)
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    if not hosts:
        where = ini.section_lines.get("machine list") or ini.section_lines.get("domain name") or 1
        raise InputError("the .ini names no machine deployer can use: list them under [machine list] (one NAME per "
                         "line)", ini.at(where))
    return HostsFromIni(hosts, notes)


class _Quoted(str):
    """A Windows path: single-quoted in the YAML, so backslashes stay as they are."""


def _quoted(dumper: yaml.SafeDumper, value: _Quoted) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="'")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Quoted, _quoted)


def to_yaml(result: HostsFromIni, source: Path) -> str:
    entries = {}
    for name, h in result.hosts.items():
        entry: dict[str, object] = {"platform": h.platform.key, "install_dir": _Quoted(h.install_dir)}
        if h.executable.casefold() != DEFAULT_EXECUTABLE.casefold():
            entry["executable"] = h.executable
        entries[name] = entry
    body = yaml.dump({"pcm_hosts": entries}, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=120)
    return (f"# PCM service hosts from {visible(source.name)}: put pcm_hosts under a site in sites.yaml\n"
            f"# (sites: <SITE>: pcm_hosts:), and give each host files: and services: to reach it.\n{body}")
