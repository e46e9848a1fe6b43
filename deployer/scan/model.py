"""A scan's result: per site and hotfix one status, the files that decide it, and what to apply."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

PARTIAL, MISSING, CANNOT_TELL, SUPERSEDED, INSTALLED, NOT_APPLICABLE = (
    "partial", "missing", "cannot tell", "superseded", "installed", "not applicable")
# The order a report shows them in: the dangerous case first.
STATUSES = (PARTIAL, MISSING, CANNOT_TELL, SUPERSEDED, INSTALLED, NOT_APPLICABLE)
FAILING = (PARTIAL, MISSING)
MEANING = {
    PARTIAL: "some files at the hotfix's level, some not: the site runs a mix",
    MISSING: "none of its files at its level",
    CANNOT_TELL: "the catalogue or the site cannot decide (see why)",
    SUPERSEDED: "a later hotfix of the catalogue that replaces it is installed",
    INSTALLED: "every file at or later than the manifest, as verify judges",
    NOT_APPLICABLE: "the site has none of its files or platforms",
}
SHORT = {PARTIAL: "PARTIAL", MISSING: "MISSING", CANNOT_TELL: "?", SUPERSEDED: "superseded",
         INSTALLED: "ok", NOT_APPLICABLE: "-"}


@dataclass
class Deciding:
    """One file that decides a status: where, what the manifest lists, what verify found."""

    server: str
    path: str
    listed: str  # date time size [version]
    found: str  # what is there, or "not found"
    verdict: str  # verify's status: ok, newer, older, missing, mismatch
    passed: bool
    flagged: bool = False  # the row is flagged for review


@dataclass
class HotfixStatus:
    kb: str
    title: str | None
    status: str
    why: str
    released: str  # the hotfix's newest listed date
    files: list[Deciding] = field(default_factory=list)
    superseded_by: list[str] = field(default_factory=list)  # installed ones, for `superseded`
    playbook: str | None = None
    manifest: str = ""


@dataclass
class ApplyStep:
    kb: str
    title: str | None
    status: str
    released: str
    playbook: str | None  # None: the catalogue has none


@dataclass
class Skipped:
    kb: str
    because: str


@dataclass
class SiteScan:
    site: str
    site_code: str
    hotfixes: list[HotfixStatus] = field(default_factory=list)
    apply: list[ApplyStep] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    error: str | None = None  # the site could not be read at all
    warnings: list[str] = field(default_factory=list)
    cost: dict[str, int] = field(default_factory=dict)  # operations sent to the site

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(1 for h in self.hotfixes if h.status == s) for s in STATUSES}

    @property
    def failing(self) -> bool:
        return any(h.status in FAILING for h in self.hotfixes)

    def status_of(self, kb: str) -> str | None:
        return next((h.status for h in self.hotfixes if h.kb == kb), None)


@dataclass
class ScanResult:
    catalog: str
    kbs: list[str]  # the catalogue's hotfixes, oldest first
    sites: list[SiteScan] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)  # unreadable manifests
    flagged: dict[str, list[str]] = field(default_factory=dict)  # KB -> rows flagged for review
    edges: list[dict[str, str]] = field(default_factory=list)

    @property
    def failing(self) -> bool:
        return any(s.failing for s in self.sites)

    @property
    def unreachable(self) -> bool:
        return any(s.error for s in self.sites)

    def to_json(self) -> dict:
        return {
            "catalog": self.catalog, "hotfixes": self.kbs, "passed": not self.failing and not self.unreachable,
            "statuses": list(STATUSES), "supersedes": self.edges, "problems": self.problems, "flagged": self.flagged,
            "sites": [{**asdict(s), "summary": s.counts} for s in self.sites],
        }
