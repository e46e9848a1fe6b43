"""Which sites a command works on: `--site` (repeated, comma-separated, globs), `--group`, `--all`."""

from __future__ import annotations

from ..errors import InputError
from ..model.inventory import LoadedInventory, SiteRef

GLOB_CHARS = set("*?[")


def split_names(values: list[str] | None) -> list[str]:
    """`--site A,B --site C` -> [A, B, C]; empty items (`A,,B`, a trailing comma) are refused."""
    out: list[str] = []
    for v in values or []:
        parts = [p.strip() for p in v.split(",")]
        if any(not p for p in parts):
            raise InputError(f"--site {v!r}: an empty site name; separate names with single commas (--site A,B)")
        out += parts
    return out


def select_sites(inv: LoadedInventory, sites: list[str] | None, groups: list[str] | None = None,
                 all_sites: bool = False) -> list[SiteRef]:
    """The sites named, in the order given (each once); a name or glob that matches nothing is
    bad input, so a typo never shrinks a rollout silently."""
    names = split_names(sites)
    group_names = split_names(groups)
    if all_sites and (names or group_names):
        raise InputError("--all already selects every site of the inventory; drop --site/--group, or drop --all")
    if all_sites:
        return inv.all_sites()
    if not names and not group_names:
        raise InputError("name the sites to work on: --site NAME (repeat it, or NAME,NAME; globs such as 'EU*'), "
                         "--group NAME (groups: in the inventory) or --all")
    seen: set[str] = set()
    for name in names:
        # the same name twice is a slip (a copy-paste, a wrong variable), not a wish to patch twice
        if name.casefold() in seen:
            raise InputError(f"--site is given more than once for {name}; name each site once")
        seen.add(name.casefold())
    picked: dict[str, SiteRef] = {}
    for name in names:
        if GLOB_CHARS & set(name):
            found = inv.matching(name)
            if not found:
                raise InputError(f"--site {name!r} matches no site of the inventory; sites: "
                                 f"{', '.join(inv.inventory.sites)}", inv.doc.location(("sites",)))
        else:
            found = [inv.site(name)]
        for ref in found:
            picked.setdefault(ref.name, ref)
    for g in group_names:
        for ref in inv.group(g):
            picked.setdefault(ref.name, ref)
    return list(picked.values())
