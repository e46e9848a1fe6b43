"""Checks of PCM instruction records against Q123499 (what the fields mean) and Q166765
(what a package run by the PCM service needs). Each finding names the record, the field
(as PCMDUMP labels it), the rule and the article."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .dumptext import LABEL_OF, date_to_text
from .record import KNOWN_OS_MASK, PcmFile, PcmRecord, date_value, is_calendar_date

DATE_FIELDS = ("install_by_date", "display_date", "expiration_date")

# rule -> (article, what the article requires)
RULES: dict[str, tuple[str, str]] = {
    "impossible-date": ("Q123499", "a date must exist on the calendar"),
    "expired": ("Q123499", "Expiration Full 1: the package expires after the expiration date"),
    "display-after-expiration": ("Q123499", "a package is displayed from its display date until it expires"),
    "mandatory-after-expiration": ("Q123499", "a package becomes mandatory after its install-by date, before it "
                                              "expires"),
    "unknown-operating-system": ("Q123499", "the operating system bit mask holds only WIN16, WIN32_X86, "
                                            "WIN32_MIPS, WIN32_ALPHA, DOS5, DOS6, MACINTOSH"),
    "needs-user-input": ("Q166765", "requirement 1: the package must be run silently with no user input required"),
    "not-automated": ("Q166765", "requirement 2: the command line must be an Automated Command Line"),
    "not-background": ("Q166765", "requirement 2: the command line must be a System (Background) Task"),
    "not-mandatory": ("Q166765", "requirement 3: the job must be sent as mandatory, and runs at the Mandatory "
                                 "After time"),
}
PCM_SERVICE_RULES = frozenset(r for r, (a, _) in RULES.items() if a == "Q166765")


@dataclass(frozen=True)
class Finding:
    record: int  # 1-based position in the file
    request_id: str
    field: str  # PCMDUMP's label
    rule: str
    article: str
    requirement: str
    detail: str

    def __str__(self) -> str:
        return (f"record {self.record} ({self.request_id}): {self.field}: {self.detail} "
                f"[{self.rule}; {self.article}: {self.requirement}]")


def _finding(n: int, rec: PcmRecord, field: str, rule: str, detail: str) -> Finding:
    article, requirement = RULES[rule]
    return Finding(n, rec.request_id, LABEL_OF.get(field, field), rule, article, requirement, detail)


def lint_record(n: int, rec: PcmRecord, now: datetime, pcm_service: bool = True) -> list[Finding]:
    out: list[Finding] = []
    for field in DATE_FIELDS:
        text = getattr(rec, field)
        if text is not None and not is_calendar_date(text):
            out.append(_finding(n, rec, field, "impossible-date", f"{date_to_text(text)} is not a date "
                                f"({text[:10]} does not exist)"))
    expires = date_value(rec.expiration_date) if rec.expiration_full and is_calendar_date(rec.expiration_date) else None
    if expires is not None and expires < now:
        out.append(_finding(n, rec, "expiration_date", "expired",
                            f"expired on {date_to_text(rec.expiration_date)}, before {now:%m/%d/%y %H:%M:%S}"))
    display = date_value(rec.display_date) if is_calendar_date(rec.display_date) else None
    if expires is not None and display is not None and display > expires:
        out.append(_finding(n, rec, "display_date", "display-after-expiration",
                            f"displayed from {date_to_text(rec.display_date)}, after it expires on "
                            f"{date_to_text(rec.expiration_date)}: PCM never offers it"))
    install_by = date_value(rec.install_by_date) if is_calendar_date(rec.install_by_date) else None
    if rec.install_by_full and expires is not None and install_by is not None and install_by > expires:
        out.append(_finding(n, rec, "install_by_date", "mandatory-after-expiration",
                            f"mandatory after {date_to_text(rec.install_by_date)}, after it expires on "
                            f"{date_to_text(rec.expiration_date)}: the mandatory run never comes"))
    if rec.operating_system & ~KNOWN_OS_MASK:
        out.append(_finding(n, rec, "operating_system", "unknown-operating-system",
                            f"{rec.operating_system} has bits 0x{rec.operating_system & ~KNOWN_OS_MASK:08X} that "
                            "name no operating system"))
    if pcm_service:
        if rec.user_input_flags:
            out.append(_finding(n, rec, "user_input_flags", "needs-user-input",
                                f"{rec.user_input_flags}: requires user input"))
        if rec.automated_command_line is False:
            out.append(_finding(n, rec, "automated_command_line", "not-automated",
                                "the command line is not an Automated Command Line"))
        if rec.background_task is False:
            out.append(_finding(n, rec, "background_task", "not-background",
                                "the command line is not a System (Background) Task"))
        if not rec.install_by_full:
            out.append(_finding(n, rec, "install_by_full", "not-mandatory", "0: optional install"))
        elif rec.install_by_date is None:
            out.append(_finding(n, rec, "install_by_date", "not-mandatory",
                                "mandatory, but no Mandatory After time is set (00/00/00 00:00:00)"))
    return out


def lint(f: PcmFile, now: datetime, pcm_service: bool = True) -> list[Finding]:
    return [x for n, rec in enumerate(f.records, 1) for x in lint_record(n, rec, now, pcm_service)]
