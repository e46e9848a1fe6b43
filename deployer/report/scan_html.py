"""A scan as one self-contained HTML page: the hotfix x site matrix (partial and missing in
red, first), then per site each status with the files that decide it and the order to apply,
then the catalogue's supersedence chains. jinja2 autoescapes every value; the page fetches
nothing (inline CSS, no scripts)."""

from __future__ import annotations

from datetime import datetime, timezone

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .. import __version__
from ..run.store import whoami
from ..scan.model import FAILING, MEANING, NOT_APPLICABLE, SHORT, STATUSES, ScanResult
from .escape import visible

CELL = {"partial": "bad", "missing": "bad", "cannot tell": "warn", "superseded": "soft", "installed": "good",
        "not applicable": "none"}


def render(result: ScanResult, chains: list[str], *, when: datetime | None = None, who: str | None = None) -> str:
    when = when or datetime.now(timezone.utc)
    if who is None:
        me = whoami()
        who = f"{me['user']}@{me['host']}"
    sites = result.sites
    shown = [kb for kb in result.kbs if any((s.status_of(kb) or NOT_APPLICABLE) != NOT_APPLICABLE for s in sites)]
    # partial and missing rows first, as in the text report
    shown.sort(key=lambda kb: min(STATUSES.index(s.status_of(kb) or NOT_APPLICABLE) for s in sites))
    titles = {h.kb: h.title for s in sites for h in s.hotfixes}
    env = Environment(loader=PackageLoader("deployer.report", "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    overall = "MISSING HOTFIXES" if result.failing else ("NOT SCANNED" if result.unreachable else "PASSED")
    # autoescape handles markup; control characters (a bidi override in an article's title) are made
    # visible on the whole page, as the run's page does (html.py)
    return visible(env.get_template("scan.html.j2").render(
        r=result, sites=sites, shown=shown,
        bad_rows={kb for kb in shown if any(s.status_of(kb) in FAILING for s in sites)}, titles=titles,
        hidden=len(result.kbs) - len(shown), chains=chains,
        when=when.strftime("%Y-%m-%d %H:%M:%S UTC"), who=who, overall=overall, good=overall == "PASSED",
        statuses=STATUSES, meaning=MEANING, short=SHORT, cell=CELL, failing=FAILING, version=__version__))
