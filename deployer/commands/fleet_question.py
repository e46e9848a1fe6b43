"""The question a fleet apply asks on a terminal, with each site's planned action count.

"Apply Q241656 to 30 sites: SITE001..." gave no idea of the size of the change; the sites are
planned first (read only, `forks` at a time, the payloads hashed once) so that the question
says how many actions each site has, which have nothing to do and which could not be planned.
Only made when the question is asked: with --yes or without a terminal nothing is planned twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import DeployerError


def planned(pb: Any, sites: list[Any], forks: int) -> list[tuple[str, int | None, str]]:
    """(site, action count or None, why it could not be planned) per site, in the order given."""
    from ..fleet import workflow
    from ..plan.planner import PayloadCache

    cache = PayloadCache()

    def one(site: Any) -> tuple[str, int | None, str]:
        try:
            return site.name, len(workflow.make_plan(pb, site, None, payloads=cache).actions), ""
        except DeployerError as exc:
            return site.name, None, (str(exc).splitlines() or [type(exc).__name__])[0]

    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(sites)))) as pool:
        return list(pool.map(one, sites))


def describe(counts: list[tuple[str, int | None, str]], shown: int = 8) -> str:
    """`SITE001: 19 actions, SITE002: nothing to do, SITE003: cannot be planned (...)...; 38 actions in all`."""
    def word(n: int | None, why: str) -> str:
        if n is None:
            return f"cannot be planned ({why[:80]})"
        return "nothing to do" if n == 0 else f"{n} action{'s' if n != 1 else ''}"

    parts = [f"{name}: {word(n, why)}" for name, n, why in counts[:shown]]
    more = f" and {len(counts) - shown} more" if len(counts) > shown else ""
    total = sum(n for _, n, _ in counts if n)
    idle = sum(1 for _, n, _ in counts if n == 0)
    failed = sum(1 for _, n, _ in counts if n is None)
    tail = f"{total} actions in all" + (f"; {idle} with nothing to do" if idle else "") + (
        f"; {failed} cannot be planned (they will fail and be reported)" if failed else "")
    return ", ".join(parts) + more + f" ({tail})"
