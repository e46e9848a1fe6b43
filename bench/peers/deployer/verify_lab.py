#!/usr/bin/env python3
"""Check deployer's mock sites of a q241656 fleet: verify_fleet.py's checks, on the mock's layout.

usage: verify_lab.py DIR patched|pristine

DIR is what make_lab.py made (manifest.json, pristine.json, lab/SITE*/SERVER/...).
It reads files only, never deployer's code or journal: the verdict is independent of
the tool it judges.

patched:  in every site all 9 manifest files, at their `dest` under a server's C: drive
          (names matched case-insensitively, as Windows does), match the manifest (size,
          mtime, sha256); each replaced original survives in a file the site did not have
          before (the backup; any name, any place); every service of every server's mock
          SCM is running; and Site Configuration Manager got control code 194 (the
          sendcode) exactly once.
pristine: every file under lab/ is as pristine.json recorded it (size, mtime, sha256),
          none missing, none added: what a dry run must leave.
Prints one line and exits 0 if all is well, else lists the problems and exits 1.
"""
import functools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import peercheck  # noqa: E402
from peercheck import cli, verdict  # noqa: E402

SENDCODE = "SMS_SITE_CONFIG_MANAGER control 194"


# a site's candidate backups are compared with 9 originals
sha256 = functools.lru_cache(maxsize=None)(peercheck.sha256)


def resolve(root, rel):
    """root/rel with every component matched case-insensitively, or None."""
    path = root
    for part in rel.split("/"):
        try:
            names = os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        match = [n for n in names if n.casefold() == part.casefold()]
        if not match:
            return None
        path = os.path.join(path, match[0])
    return path


def site_files(site):
    return [os.path.join(d, n) for d, _, ns in os.walk(site) for n in ns]


def check_patched(lab, site, files, pristine):
    bad = []
    servers = sorted(e.path for e in os.scandir(site) if e.is_dir() and os.path.exists(os.path.join(e.path, "scm.json")))
    if not servers:
        return ["no server with a mock SCM (scm.json)"]
    sent = 0
    for srv in servers:
        with open(os.path.join(srv, "scm.json")) as f:
            stopped = [s for s, v in json.load(f)["services"].items() if v["state"] != "running"]
        if stopped:
            bad.append(f"{os.path.basename(srv)}: services not running: {', '.join(stopped)}")
        log = os.path.join(srv, "scm.log")
        if os.path.exists(log):
            sent += sum(SENDCODE in line for line in open(log))
    if sent != 1:
        bad.append(f"control code 194 sent to SMS_SITE_CONFIG_MANAGER {sent} times, want once")
    others = site_files(site)
    for f in files:
        found = [p for p in (resolve(os.path.join(srv, "C"), f["dest"]) for srv in servers) if p]
        if len(found) != 1:
            bad.append(f"{f['dest']}: found on {len(found)} servers, want 1")
            continue
        path = found[0]
        st = os.stat(path)
        got = (st.st_size, int(st.st_mtime), sha256(path))
        want = (f["size"], f["mtime"], f["sha256"])
        if got != want:
            bad.append(f"{f['dest']}: got {got}, want {want}")
        old_size, _, old_sha = pristine[os.path.relpath(path, lab)]
        # the backup: a file the site did not have before, holding the original's bytes
        if not any(p != path and os.path.relpath(p, lab) not in pristine
                   and os.path.getsize(p) == old_size and sha256(p) == old_sha for p in others):
            bad.append(f"no backup of {f['dest']}")
    return bad


def check_pristine(lab, site, pristine):
    bad = []
    prefix = os.path.basename(site) + os.sep
    want = {k: v for k, v in pristine.items() if k.startswith(prefix)}
    have = {os.path.relpath(p, lab) for p in site_files(site)}
    for rel in sorted(have - want.keys()):
        bad.append(f"added {rel}")
    for rel, (size, mtime_ns, digest) in sorted(want.items()):
        p = os.path.join(lab, rel)
        if rel not in have:
            bad.append(f"missing {rel}")
            continue
        st = os.stat(p)
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) or sha256(p) != digest:
            bad.append(f"changed {rel}")
    return bad


def main(root, expect):
    with open(os.path.join(root, "manifest.json")) as f:
        files = json.load(f)["files"]
    with open(os.path.join(root, "pristine.json")) as f:
        pristine = json.load(f)
    lab = os.path.join(root, "lab")
    sites = sorted((e for e in os.scandir(lab) if e.is_dir()), key=lambda e: e.name)
    problems = []
    for s in sites:
        bad = (check_patched(lab, s.path, files, pristine) if expect == "patched"
               else check_pristine(lab, s.path, pristine))
        problems += [(s.name, b) for b in bad]
    return verdict(problems, sites, expect)


if __name__ == "__main__":
    cli(main, __doc__)
