"""Inventories at fleet size: `defaults:`, groups with variables, and name ranges.

Run on the YAML document before the inventory models see it, so that every later check
(and every error) works on the sites as if written out one by one:

- `sites: {S[001:030]: {...}}` is thirty sites, S001 to S030 (Ansible's range syntax:
  `[START:END]` or `[START:END:STEP]`, zero-padding as START is written; `[a:f]` letters;
  several ranges multiply). Inside such a site, text that holds ranges (a value, or a
  server's or PCM host's name) is expanded in step with the site's name: the i-th site takes
  the i-th item, so each range there must have as many items as the site name has.
- `defaults:` holds site fields every site starts from, and under `server:` (`pcm_host:`)
  fields every server (PCM host) starts from. A site's own value wins; mappings (`vars`,
  `preflight`, a server's `files:`) are merged key by key, unless they name another
  `transport:`, which replaces the default's.
- A group may be a mapping: `sites:` (its members, as the list form has them) and the same
  fields as `defaults:`, which its member sites take over the defaults. Two groups that give
  one site different values for the same field are refused (no silent order of precedence).

Each expanded value keeps the line it was written on: an error in site S017 points at the
line of the S[001:030] template, an error in a default at the `defaults:` line.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from pydantic import Field

from ..errors import InputError
from .yamlsrc import Document, KeyPath
from .common import Strict
from .ranges import expand, has_range

# the fields `defaults:` and a group mapping may give (a site's own fields, less what is
# the site's alone: its code, mock folder and servers)
SITE_FIELDS = ("description", "timezone", "platforms", "region", "vars", "preflight")
MEMBER_FIELDS = ("server", "pcm_host")


class SiteDefaults(Strict):
    """Fields every site starts from (its own value wins; mappings merge key by key)."""

    description: str | None = Field(default=None, description="free text for the reader")
    timezone: str | None = Field(default=None, description="the servers' local time (IANA name)")
    platforms: list[str] | None = Field(default=None, description="the Site.srv\\<Platform>.bin folders sites carry")
    region: str | None = Field(default=None, description="the region whose workers run the sites")
    vars: dict[str, str | int | bool] | None = Field(default=None, description="template variables, merged with "
                                                      "the site's own")
    preflight: dict[str, Any] | None = Field(default=None, description="Q166765 settings (backup_marker, "
                                             "backup_max_age_hours), merged with the site's own")
    server: dict[str, Any] | None = Field(default=None, description="fields every server starts from (role, "
                                          "platform, sms_root, files, services)")
    pcm_host: dict[str, Any] | None = Field(default=None, description="fields every PCM host starts from")


class GroupSpec(SiteDefaults):
    """A group with variables: its member sites, and fields they take over `defaults:`."""

    sites: list[str] = Field(min_length=1, description="site names or globs (EU*) or ranges (S[001:010])")


ALLOWED = (*SITE_FIELDS, *MEMBER_FIELDS)


class _Expander:
    def __init__(self, doc: Document):
        self.doc = doc
        self.marks: dict[KeyPath, tuple[int, int]] = {}

    def error(self, kp: KeyPath, message: str) -> InputError:
        return self.doc.error(kp, message)

    def mark(self, src: KeyPath, dst: KeyPath) -> None:
        if src in self.doc.marks and dst not in self.marks:
            self.marks[dst] = self.doc.marks[src]

    def copy(self, node: Any, src: KeyPath, dst: KeyPath, step: tuple[int, int] | None = None,
             name_keys: bool = False) -> Any:
        """A copy of `node` with its marks moved from src to dst; with `step` (i, n), ranged
        text is the i-th of its n items (in step with the site's name)."""
        self.mark(src, dst)
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                new_key = key
                if step is not None and name_keys and has_range(key):
                    new_key = self.in_step(key, src + (key,), step)
                if new_key in out:
                    raise self.error(src + (key,), f"{new_key!r} is written twice here (once through a range)")
                self.mark(src + (key,), dst + (new_key,))
                child_names = step is not None and key in ("servers", "pcm_hosts") and len(src) == 2
                out[new_key] = self.copy(value, src + (key,), dst + (new_key,), step, child_names)
            return out
        if isinstance(node, list):
            return [self.copy(v, src + (i,), dst + (i,), step) for i, v in enumerate(node)]
        if step is not None and has_range(node):
            return self.in_step(node, src, step)
        return node

    def in_step(self, text: str, kp: KeyPath, step: tuple[int, int]) -> str:
        i, n = step
        try:
            items = expand(text)
        except ValueError as exc:
            raise self.error(kp, str(exc)) from None
        if len(items) != n:
            raise self.error(kp, f"{text!r} stands for {len(items)} values, but its site's name stands for {n} "
                             "sites: a range inside a ranged site goes in step with the site's name, so give it "
                             f"{n} items")
        return items[i]

    def sites(self, raw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for key, site in raw.items():
            try:
                names = expand(key)
            except ValueError as exc:
                raise self.error(("sites", key), str(exc)) from None
            ranged = len(names) > 1 or names[0] != key
            for i, name in enumerate(names):
                if name.casefold() in origin:
                    first = origin[name.casefold()]
                    raise self.error(("sites", key), f"site {name} is written twice: by {first!r} and by {key!r}")
                origin[name.casefold()] = key
                step = (i, len(names)) if ranged else None
                self.mark(("sites", key), ("sites", name))
                out[name] = self.copy(site, ("sites", key), ("sites", name), step)
        return out


def _check_fields(ex: _Expander, spec: dict[str, Any], kp: KeyPath, what: str, extra: tuple[str, ...] = ()) -> None:
    for key in spec:
        if key not in ALLOWED and key not in extra:
            from .suggest import did_you_mean

            raise ex.error(kp + (key,), f"unknown key {key!r} in {what}{did_you_mean(key, [*extra, *ALLOWED])}; "
                           f"allowed: {', '.join((*extra, *ALLOWED))}")
        if key in ("vars", "preflight", "server", "pcm_host") and not isinstance(spec[key], dict):
            raise ex.error(kp + (key,), f"{key} is a mapping of fields")


def _merge(ex: _Expander, own: Any, base: Any, dst: KeyPath, src: KeyPath) -> Any:
    """`own` (already in the result at dst) over `base` (written at src)."""
    if own is None:
        return ex.copy(base, src, dst)
    if isinstance(own, dict) and isinstance(base, dict):
        if "transport" in own and own.get("transport") != base.get("transport"):
            return own  # another transport's settings do not mix
        out = dict(own)
        for key, value in base.items():
            ex.mark(src + (key,), dst + (key,))
            out[key] = _merge(ex, own.get(key), value, dst + (key,), src + (key,))
        return out
    return own


def _apply(ex: _Expander, site: dict[str, Any], name: str, spec: dict[str, Any], src: KeyPath) -> None:
    """Give the site (and its servers, PCM hosts) the fields `spec` (written at src) holds."""
    dst = ("sites", name)
    for key in SITE_FIELDS:
        if key in spec:
            site[key] = _merge(ex, site.get(key), spec[key], dst + (key,), src + (key,))
    for key, members in (("server", "servers"), ("pcm_host", "pcm_hosts")):
        if key in spec and isinstance(site.get(members), dict):
            for member, fields in site[members].items():
                if isinstance(fields, dict) or fields is None:
                    site[members][member] = _merge(ex, fields or None, spec[key], dst + (members, member),
                                                   src + (key,))


def _expand_at(ex: _Expander, text: str, kp: KeyPath) -> list[str]:
    try:
        return expand(text) if has_range(text) else [text]
    except ValueError as exc:
        raise ex.error(kp, str(exc)) from None


def _members(members: list[Any], sites: dict[str, Any]) -> list[str]:
    names = []
    for m in members:
        if not isinstance(m, str):
            continue
        for one in (expand(m) if has_range(m) else [m]):
            names += [s for s in sites if fnmatch.fnmatchcase(s.casefold(), one.casefold())]
    return list(dict.fromkeys(names))


def expand_inventory(doc: Document) -> Document:
    """The inventory with ranges, defaults and group fields written out (a new Document whose
    marks point at the lines the values came from); a document without them is returned as is."""
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("sites"), dict):
        return doc
    groups = data.get("groups")
    group_specs = {g: v for g, v in groups.items() if isinstance(v, dict)} if isinstance(groups, dict) else {}
    uses = "defaults" in data or group_specs or any(has_range(k) for k in data["sites"]) or (
        isinstance(groups, dict) and any(isinstance(v, list) and any(has_range(m) for m in v if isinstance(m, str))
                                         for v in groups.values()))
    if not uses:
        return doc
    ex = _Expander(doc)
    for kp in doc.marks:  # everything but sites and groups keeps its place
        if kp[:1] not in (("sites",), ("groups",), ("defaults",)) or kp in (("sites",), ("groups",)):
            ex.marks[kp] = doc.marks[kp]
    sites = ex.sites(data["sites"])
    defaults = data.get("defaults")
    if defaults is not None:
        if not isinstance(defaults, dict):
            raise ex.error(("defaults",), "defaults is a mapping of site fields (and server: fields)")
        _check_fields(ex, defaults, ("defaults",), "defaults")
    out_groups: dict[str, Any] = {}
    given: dict[tuple[str, str], tuple[str, Any]] = {}  # (site, field) -> the group that set it, and to what
    for g, spec in (groups or {}).items() if isinstance(groups, dict) else ():
        ex.mark(("groups", g), ("groups", g))
        if not isinstance(spec, dict):
            members = spec
            if isinstance(spec, list) and all(isinstance(m, str) for m in spec):
                members = [x for m in spec for x in _expand_at(ex, m, ("groups", g, spec.index(m)))]
            for i in range(len(spec) if isinstance(spec, list) else 0):
                ex.mark(("groups", g, i), ("groups", g, i))
            out_groups[g] = members
            continue
        _check_fields(ex, spec, ("groups", g), f"group {g}", extra=("sites",))
        listed = spec.get("sites")
        if not isinstance(listed, list) or not listed or not all(isinstance(m, str) for m in listed):
            raise ex.error(("groups", g, "sites"), f"group {g} needs sites: a list of site names, globs ('EU*') or "
                           "ranges (S[001:010])")
        out_groups[g] = [x for i, m in enumerate(listed) for x in _expand_at(ex, m, ("groups", g, "sites", i))]
        for i in range(len(listed)):
            ex.mark(("groups", g, "sites", i), ("groups", g, i))
        for name in _members(listed, sites):
            for key, value in spec.items():
                if key == "sites":
                    continue
                fields = value.items() if key in ("vars", "server", "pcm_host") and isinstance(value, dict) \
                    else [(None, value)]
                for field_key, field_value in fields:
                    slot = (name, f"{key}.{field_key}" if field_key else key)
                    other = given.get(slot)
                    if other is not None and other[0] != g and other[1] != field_value:
                        raise ex.error(("groups", g, key), f"groups {other[0]} and {g} both set {slot[1]} for site "
                                       f"{name}, to different values; set it on the site, or in one group")
                    given[slot] = (g, field_value)
    # the site's own fields, then its groups', then the defaults
    for name, site in sites.items():
        if not isinstance(site, dict):
            continue
        for g, spec in group_specs.items():
            if name in _members(spec.get("sites") or [], sites):
                _apply(ex, site, name, spec, ("groups", g))
        if isinstance(defaults, dict):
            _apply(ex, site, name, defaults, ("defaults",))
    new = {k: v for k, v in data.items() if k not in ("defaults", "sites", "groups")}
    new["sites"] = sites
    if groups is not None:
        new["groups"] = out_groups
    return Document(path=doc.path, data=new, marks=ex.marks, text=doc.text)
