"""Drafting a playbook from an article's procedure.

SMS hotfix articles give their procedure as numbered steps ("1. Stop the Package Command
Manager and Systems Management Server Executive services.", "2. Replace the Pcmsvc32.exe
file in the <SMS_root>\\Site.srv\\<Platform>.bin folder", "Reset the site", "Restart the
... services"), sometimes once per platform ("Alpha-Based ... Site Server", "Intel-Based
..."). What can be recognised becomes a step; every step keeps the article's words as a
comment; what cannot is listed as a FINISH comment for a person, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..model.manifest import UNKNOWN, Manifest
from ..sms import services as sms
from . import values
from ..report.escape import visible
from .importer import ImportResult
from .writer import quoted

# How articles name the SMS services
_SERVICE_NAMES = [
    (r"package\s+command\s+manager|\bpcm\b", "SMS_PACKAGE_COMMAND_MANAGER_NT"),
    (r"(?:sms|systems\s+management\s+server)\s+executive|\bsmsexec\b", "SMS_EXECUTIVE"),
    (r"site\s+configuration\s+manager", "SMS_SITE_CONFIG_MANAGER"),
    (r"hierarchy\s+manager", "SMS_HIERARCHY_MANAGER"),
    (r"inventory\s+agent", "SMS_INVENTORY_AGENT_NT"),
    (r"client\s+configuration\s+manager", "SMS_CLIENT_CONFIG_MANAGER"),
]
_ALL_SERVICES = re.compile(r"\ball\s+(?:the\s+)?(?:sms|systems\s+management\s+server)\s+services|"
                           r"\bthe\s+(?:sms|systems\s+management\s+server)\s+services\b", re.IGNORECASE)
_STEP = re.compile(r"\s*([0-9]{1,2})\.\s+(\S.*)")
_REPLACE = re.compile(r"\b(?:replace|copy)\b(?P<what>.*?)\b(?:in|into|to)\s+(?:the\s+)?(?P<folder>\S*\\\S*)",
                      re.IGNORECASE | re.DOTALL)
_ROOT = re.compile(r"^(?:<\s*sms[_ ]?root(?:[_ ]?(?:folder|directory|dir))?\s*>|%sms_root%|\\?sms)(?=\\)", re.IGNORECASE)


@dataclass
class Step:
    kind: str  # stop, start, replace, reset_site
    services: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    into: str = ""
    platforms: list[str] = field(default_factory=list)
    said: str = ""  # the article's words
    line: int = 0
    notes: list[str] = field(default_factory=list)

    def key(self) -> tuple:
        return (self.kind, tuple(self.services), tuple(f.casefold() for f in self.files), self.into.casefold(),
                tuple(self.platforms))


@dataclass
class _ArticleStep:
    number: int
    text: str
    line: int
    section: str | None


def draft_playbook(result: ImportResult, manifest_path: str, payloads: str) -> str:
    lines = result.article.lines
    manifest = result.manifest
    found = _article_steps(lines)
    steps: list[Step] = []
    finish: list[str] = []
    for st in found:
        recognised = _recognise(st)
        if not recognised:
            if re.search(r"\b(stop|start|replace|copy|reset|run|install)\b", st.text, re.IGNORECASE):
                finish.append(f"article step {st.number} (line {st.line}): {_short(st.text)}")
            continue
        for s in recognised:
            if manifest is not None and s.kind == "replace":
                steps.extend(_split_by_platform(s, manifest))
            else:
                steps.append(s)
    steps = _dedupe(steps)
    if manifest is not None:
        every = sorted({f.platform.key for f in manifest.files if f.platform is not UNKNOWN})
        for s in steps:
            if s.kind == "replace" and sorted(s.platforms) == every:
                s.platforms = []  # every platform the table lists: no limit needed
    steps = _stop_holders(steps)
    resets = [s for s in steps if s.kind == "reset_site"]
    if resets:
        # The reset copies Site.srv\<Platform>.bin to every Helper.srv: after every file is in
        # place and the services run again, whichever step of the article mentions it.
        steps = [s for s in steps if s.kind != "reset_site"] + [resets[0]]
        resets[0].notes.append("the site reset runs last: after every replacement and restart")
    return _render(result, manifest_path, payloads, steps, finish)


def _article_steps(lines: list[str]) -> list[_ArticleStep]:
    out: list[_ArticleStep] = []
    section = None
    k = 0
    while k < len(lines):
        line = lines[k]
        if k + 1 < len(lines) and re.fullmatch(r"\s*-{5,}\s*", lines[k + 1]) and line.strip():
            section = " ".join(line.split())
        m = _STEP.match(line)
        if m:
            text = [m.group(2)]
            j = k + 1
            while j < len(lines) and lines[j].strip() and not _STEP.match(lines[j]):
                text.append(lines[j].strip())
                j += 1
            out.append(_ArticleStep(int(m.group(1)), " ".join(" ".join(text).split()), k + 1, section))
            k = j
            continue
        k += 1
    return out


def _services(text: str) -> list[str]:
    if _ALL_SERVICES.search(text):
        return list(sms.SMS_SERVICES)
    found = []
    for pattern, name in _SERVICE_NAMES:
        m = re.search(pattern, text, re.IGNORECASE)
        if m:
            found.append((m.start(), name))
    return [name for _, name in sorted(found)]


def _recognise(st: _ArticleStep) -> list[Step]:
    text = st.text
    out: list[Step] = []
    section_platform = values.platform_in(st.section) if st.section else None
    plats = [section_platform.key] if section_platform else []
    if re.match(r"(?:stop|quit)\b", text, re.IGNORECASE) and _services(text):
        out.append(Step("stop", services=_services(text), said=text, line=st.line))
    elif re.match(r"(?:re)?start\b", text, re.IGNORECASE) and _services(text):
        out.append(Step("start", services=_services(text), said=text, line=st.line))
    m = _REPLACE.search(text)
    if m and re.match(r"(?:replace|copy)\b", text, re.IGNORECASE):
        files = [t.strip(",.;") for t in m.group("what").split() if values.is_name(t.strip(",.;"))]
        into, fixed = _template(m.group("folder"))
        if files and into:
            s = Step("replace", files=files, into=into, said=text, line=st.line,
                     platforms=[fixed] if fixed else plats)
            out.append(s)
    if re.search(r"\breset\s+the\s+site\b", text, re.IGNORECASE):
        out.append(Step("reset_site", said=text, line=st.line))
    return out


def _template(folder: str) -> tuple[str | None, str | None]:
    """`<SMS_root>\\Site.srv\\<Platform>.bin` -> a path template, and the platform a fixed
    folder names (`Client.src\\X86.bin` -> x86)."""
    path = folder.rstrip(".,;:")
    path = _ROOT.sub("", path)
    if not path.startswith("\\"):
        path = "\\" + path
    fixed = None
    m = re.search(r"\\([A-Za-z0-9]+)\.bin$", path, re.IGNORECASE)
    if m and m.group(1).casefold() != "<platform>".strip("<>").casefold():
        plat = values.platform_in(m.group(1))
        if plat is None:
            return None, None
        fixed = plat.key
        path = path[:m.start()] + "\\<Platform>.bin"
    if "<" in path.replace("<Platform>", "").replace("<platform>", ""):
        return None, None
    path = re.sub(r"<platform>", "{{ platform }}", path, flags=re.IGNORECASE)
    return "{{ sms_root }}" + path, fixed


def _split_by_platform(step: Step, manifest: Manifest) -> list[Step]:
    """One replace step per set of platforms the manifest lists its files for, so that a
    site with Alpha is not asked for an Intel-only client file."""
    known = [f for f in manifest.files if f.platform is not UNKNOWN]
    by_file = {}
    for name in step.files:
        by_file[name] = sorted({f.platform.key for f in known if f.name.casefold() == name.casefold()})
    all_plats = sorted({f.platform.key for f in known})
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, plats in by_file.items():
        if step.platforms:
            plats = [p for p in plats if p in step.platforms]
        if not plats:
            step.notes.append(f"FINISH: the manifest lists no {name} for "
                              f"{', '.join(step.platforms) or 'a known platform'}: check the table")
            continue
        groups.setdefault(tuple(plats), []).append(name)
    out = []
    for plats, names in groups.items():
        limit = list(plats) if list(plats) != all_plats or step.platforms else []
        out.append(Step("replace", files=names, into=step.into, platforms=limit, said=step.said, line=step.line,
                        notes=list(step.notes)))
    return out or [step]


def _dedupe(steps: list[Step]) -> list[Step]:
    """Per-platform sections repeat the same steps: keep each once, and merge the platforms
    of replace steps that differ only by them."""
    out: list[Step] = []
    for s in steps:
        same = next((o for o in out if o.key() == s.key()), None)
        if same:
            continue
        if s.kind == "replace":
            twin = next((o for o in out if o.kind == "replace" and o.into.casefold() == s.into.casefold()
                         and [f.casefold() for f in o.files] == [f.casefold() for f in s.files]
                         and o.platforms and s.platforms), None)
            if twin:
                twin.platforms = sorted(set(twin.platforms) | set(s.platforms))
                continue
        if s.kind in ("stop", "start"):
            prev = next((o for o in reversed(out) if o.kind == s.kind), None)
            if prev and set(s.services) <= set(prev.services) and not any(o.kind != s.kind for o in
                                                                        out[out.index(prev) + 1:]
                                                                        if o.kind in ("stop", "start")):
                continue
        out.append(s)
    return out


def _stop_holders(steps: list[Step]) -> list[Step]:
    """A replaced Site.srv file that a running SMS service holds cannot be replaced (Windows
    refuses, and so does the mock): stop that service first and start it after, if the
    article forgot to say so."""
    stopped: set[str] = set()
    holders: list[str] = []
    for s in steps:
        if s.kind == "stop":
            stopped |= set(s.services)
        if s.kind == "replace" and "client.src" not in s.into.casefold():
            for f in s.files:
                for info in sms.SMS_SERVICES.values():
                    if f.casefold() in {info.image.casefold(), *(m.casefold() for m in info.modules)} \
                            and info.name not in stopped and info.name not in holders:
                        holders.append(info.name)
    if not holders:
        return steps
    note = (f"added by the importer: the article does not say to stop {', '.join(holders)}, but it holds a file "
            "this playbook replaces (a running service's files cannot be replaced)")
    first = next(i for i, s in enumerate(steps) if s.kind in ("replace", "stop"))
    out = list(steps)
    out.insert(first, Step("stop", services=holders, notes=[note]))
    last_replace = max(i for i, s in enumerate(out) if s.kind == "replace" and "client.src" not in s.into.casefold())
    out.insert(last_replace + 1, Step("start", services=holders, notes=["added by the importer: started again"]))
    return out


def _short(text: str, n: int = 150) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def _render(result: ImportResult, manifest_path: str, payloads: str, steps: list[Step], finish: list[str]) -> str:
    a = result.article
    out = [
        f"# DRAFT playbook for {a.kb}, drafted by `deployer kb import --playbook` from {a.file_name}.",
        "# A person must finish it before it is applied: read every step against the article,",
        "# and do what the FINISH lines below say. Then `deployer plan` it on a lab site.",
        f"# FINISH: put the hotfix files under {payloads}/<platform>/ (x86/, alpha/ ...), or run",
        "#         `deployer lab init` for stand-ins on a lab site.",
    ]
    if result.review:
        out.append(f"# FINISH: {result.review} rows of the manifest need review (marked REVIEW or review:).")
    for f in finish:
        out.append(f"# FINISH: {visible(f)}")
    if not steps:
        out.append("# FINISH: no step of the procedure was recognised; write the steps (see README, Playbooks).")
    out += [f"kb: {a.kb}"]
    if a.title:
        out.append(f"title: {quoted(a.title)}")
    out.append("draft: true   # apply refuses a draft: remove this line once every FINISH above is done")
    out += [f"manifest: {manifest_path}", f"payloads: {payloads}", "steps:" if steps else "steps: []"]
    for s in steps:
        if s.said:
            out.append(f"  # line {s.line}: {visible(_short(s.said))}")
        for n in s.notes:
            out.append(f"  # {visible(n)}")
        if s.kind in ("stop", "start"):
            out.append(f"  - {s.kind}: [{', '.join(s.services)}]")
        elif s.kind == "reset_site":
            out.append("  - reset_site: {}")
        else:
            out.append("  - replace:")
            out.append(f"      files: [{', '.join(s.files)}]")
            if s.platforms:
                out.append(f"      platforms: [{', '.join(s.platforms)}]")
            out.append(f"      into: '{s.into}'")
    return "\n".join(out) + "\n"
