"""The DEMO site over a WAN: deployer's apply, second run, verify and rollback over SMB 2/3,
SMB1 and SFTP through a delay proxy on 127.0.0.1, against a plain copy of the same hotfix
files by Samba's `smbclient` (and OpenSSH's `sftp`) through the same proxy.

Each transport gets a fresh lab site (`deployer lab init`), served as the tests serve it
(tests/servers: a private smbd exporting each server's SMS root as its share, an NT1-only
smbd for SMB1, a private sshd for SFTP with the stand-in sc.exe), with every connection
going through tests/servers/delay_proxy.py (25 ms each way by default: a 50 ms round trip).
Services stay on the mock for SMB (as in tests/test_e2e_smb.py); over SSH they are sc.exe
over the same proxied connection.

Printed per transport and command: wall seconds, the proxy's turns (server answers after
client sends: the round trips the link charged, counted per connection: servers asked together
on one connection cost one turn, servers on separate connections a turn each however much
their waits overlap, which only the wall time shows), bytes each way, and deployer's own count
of round trips and payload bytes from its JSON report (`traffic`); then the ratios to the
plain copy.

    .venv/bin/python bench/wan.py [--delay-ms 25] [--only smb2,smb1,sftp]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from hotfix import vendor_payloads  # noqa: E402 - the vendor's files stand in place of lab stand-ins
from servers.delay_proxy import DelayProxy, LinkStats  # noqa: E402 - the tests' WAN on loopback

SERVERS = {"DEMOSRV": ("site_server", "x86", "C"), "DEMOLOG1": ("logon_server", "x86", "D"),
           "DEMOAXP1": ("logon_server", "alpha", "C")}
PASSWORD_ENV = "DEPLOYER_BENCH_SMB_PASSWORD"
PLAYBOOK = "playbooks/q241656.yaml"


def deployer(ws: Path, *args: str, env: dict | None = None) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "deployer", *args], cwd=ws, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=1800)
    return proc.returncode, proc.stdout, proc.stderr


def workspace(base: Path) -> Path:
    ws = base / "ws"
    ws.mkdir(parents=True)
    for d in ("playbooks", "manifests"):
        shutil.copytree(ROOT / d, ws / d)
    shutil.copy(ROOT / "sites.yaml", ws / "sites.yaml")
    code, out, err = deployer(ws, "lab", "init", "--all", "--inventory", "sites.yaml")
    if code:
        raise SystemExit(f"lab init failed: {out}{err}")
    vendor_payloads(ws / "payloads")  # deployer never uploads lab stand-ins to a real server
    return ws


def payload(ws: Path, inventory: Path, env: dict) -> list[tuple[str, str]]:
    """(local source, path on the site server) of each file the plan replaces there."""
    code, out, err = deployer(ws, "plan", PLAYBOOK, "--site", site_of(inventory), "-f", "json", "-i", str(inventory),
                              env=env)
    if code:
        raise SystemExit(f"plan failed: {out}{err}")
    plan = json.loads(out)
    return [(a["source"], a["path"]) for a in plan["actions"] if a["kind"] == "replace" and a["server"] == "DEMOSRV"]


def site_of(inventory: Path) -> str:
    return "SSHDEMO" if "ssh" in inventory.name else "DEMO"


class Row:
    def __init__(self, what: str, seconds: float, link: LinkStats, traffic: dict | None):
        self.what, self.seconds, self.link, self.traffic = what, seconds, link, traffic

    def line(self) -> str:
        t = (self.traffic or {}).get("total") or {}
        own = (f"  deployer: {t.get('round_trips', '?'):>5} rt {t.get('requests', '?'):>5} req "
               f"{t.get('bytes_written', 0) / 1e6:6.2f} MB w {t.get('bytes_read', 0) / 1e6:6.2f} MB r") if t else ""
        return (f"  {self.what:<22} {self.seconds:7.2f} s {self.link.turns:>6} turns "
                f"{self.link.to_server / 1e6:6.2f} MB up {self.link.to_client / 1e6:6.2f} MB down{own}")


def measured(what: str, proxies: list[DelayProxy], run) -> Row:
    before = sum((p.stats() for p in proxies), LinkStats())
    start = time.perf_counter()
    traffic = run()
    seconds = time.perf_counter() - start
    after = sum((p.stats() for p in proxies), LinkStats())
    return Row(what, seconds, after - before, traffic)


def run_commands(ws: Path, inventory: Path, env: dict, proxies: list[DelayProxy]) -> list[Row]:
    site = site_of(inventory)
    inv = ["-i", str(inventory)]

    def cmd(*args: str, ok=(0,)):
        def go():
            code, out, err = deployer(ws, *args, *inv, env=env)
            if code not in ok:
                raise SystemExit(f"deployer {' '.join(args)} failed ({code}):\n{out[-3000:]}{err[-3000:]}")
            try:
                return json.loads(out).get("traffic")
            except (ValueError, AttributeError):
                return None
        return go

    return [measured("apply", proxies, cmd("apply", PLAYBOOK, "--site", site, "--yes", "-f", "json")),
            measured("apply (second run)", proxies, cmd("apply", PLAYBOOK, "--site", site, "--yes", "-f", "json")),
            measured("verify", proxies, cmd("verify", PLAYBOOK, "--site", site, "-f", "json")),
            measured("rollback", proxies, cmd("rollback", "--site", site, "--yes"))]


# --- SMB 2/3 and SMB1 ---------------------------------------------------------------------------


def smb_site(base: Path, delay: float, smb1: bool) -> tuple[list[Row], Row]:
    from servers.samba import NT1_EXTRA, Samba

    ws = workspace(base)
    site = ws / "lab" / "DEMO"
    shares = {f"{name}_SMS_SHR{drive}": site / name / drive / "SMS" for name, (_, _, drive) in SERVERS.items()}
    samba = Samba(base / "smbd", shares, **({"protocol": "NT1", "extra": NT1_EXTRA} if smb1 else {})).start()
    proxy = DelayProxy(samba.port, delay=delay).start()
    try:
        env = {PASSWORD_ENV: samba.password}
        lines = ["sites:", "  DEMO:", "    code: DMO", "    timezone: America/Los_Angeles", "    platforms: [x86, alpha]",
                 f"    mock: {{path: '{site}'}}", "    servers:"]
        dialect = "dialect: smb1, " if smb1 else ""
        for name, (role, platform, drive) in SERVERS.items():
            lines += [f"      {name}:", f"        role: {role}", f"        platform: {platform}",
                      f"        sms_root: '{drive}:\\SMS'",
                      (f"        files: {{transport: smb, {dialect}host: 127.0.0.1, port: {proxy.port}, "
                       f"username: {samba.user}, password: {{env: {PASSWORD_ENV}}}, share: {name}_SMS_SHR{drive}}}"),
                      "        services: mock"]
        inventory = ws / ("sites-smb1.yaml" if smb1 else "sites-smb.yaml")
        inventory.write_text("\n".join(lines) + "\n")
        files = payload(ws, inventory, env)
        rows = run_commands(ws, inventory, env, [proxy])

        # the plain copy: one smbclient session puts the same files into a scratch folder of the same share
        def plain() -> None:
            puts = "; ".join(f'put "{src}" "WANCOPY\\{i}-{Path(src).name}"' for i, (src, _) in enumerate(files))
            samba.port, real = proxy.port, samba.port
            try:
                samba.smbclient("DEMOSRV_SMS_SHRC", f"mkdir WANCOPY; {puts}")
            finally:
                samba.port = real
        copy = measured(f"smbclient put ({len(files)} files)", [proxy], plain)
        copy.payload = sum(Path(src).stat().st_size for src, _ in files)
        return rows, copy
    finally:
        proxy.stop()
        samba.stop()


# --- SFTP -----------------------------------------------------------------------------------------


def sftp_site(base: Path, delay: float) -> tuple[list[Row], Row]:
    import yaml
    from servers import sshd as sshmod

    ws = workspace(base)
    d = base / "sshd"
    d.mkdir()
    proc, ports, host_key, _log = sshmod._start(d)
    proxies: list[DelayProxy] = []
    try:
        sshmod._keygen(d / "client_key")
        (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
        by_server = dict(zip(sshmod.SERVERS, ports[1:]))
        proxied = {name: DelayProxy(by_server[name], delay=delay).start() for name in SERVERS}
        proxies = list(proxied.values())
        known = d / "known_hosts"
        known.write_text("".join(f"[127.0.0.1]:{p.port} {host_key.get_name()} {host_key.get_base64()}\n"
                                 for p in proxies))
        os.symlink((ws / "lab" / "DEMO").resolve(), d / "site")
        roots = {"DEMOSRV": "C/SMS", "DEMOLOG1": "D/SMS", "DEMOAXP1": "C/SMS"}
        servers = {}
        for name, (role, platform, drive) in SERVERS.items():
            conn = {"host": "127.0.0.1", "port": proxied[name].port, "username": sshmod._user(),
                    "key_file": str(d / "client_key"), "known_hosts": str(known), "timeout": 30.0}
            servers[name] = {"role": role, "platform": platform, "sms_root": f"{drive}:\\SMS",
                             "files": {"transport": "ssh", "root": str(ws / "lab" / "DEMO" / name / roots[name]), **conn},
                             "services": {"transport": "ssh", **conn}}
        inventory = ws / "ssh-sites.yaml"
        inventory.write_text(yaml.safe_dump({"sites": {"SSHDEMO": {
            "code": "DMO", "timezone": "America/Los_Angeles", "platforms": ["x86", "alpha"], "servers": servers}}},
            sort_keys=False))
        files = payload(ws, inventory, {})
        rows = run_commands(ws, inventory, {}, proxies)
        scratch = base / "sftpcopy"
        scratch.mkdir()
        batch = base / "sftp.batch"
        batch.write_text("".join(f'put "{src}" "{scratch}/{i}-{Path(src).name}"\n' for i, (src, _) in enumerate(files)))

        def plain() -> None:
            subprocess.run(["sftp", "-b", str(batch), "-P", str(proxied["DEMOSRV"].port), "-i", str(d / "client_key"),
                            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
                            f"{sshmod._user()}@127.0.0.1"], check=True, capture_output=True, timeout=300)
        copy = measured(f"sftp put ({len(files)} files)", [proxied["DEMOSRV"]], plain)
        copy.payload = sum(Path(src).stat().st_size for src, _ in files)
        return rows, copy
    finally:
        for p in proxies:
            p.stop()
        sshmod._stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay (a round trip is twice this)")
    ap.add_argument("--only", default="smb2,smb1,sftp")
    args = ap.parse_args()
    delay = args.delay_ms / 1000
    kinds = args.only.split(",")
    print(f"DEMO site (Q241656) through a delay proxy on 127.0.0.1, {args.delay_ms:g} ms each way "
          f"({2 * args.delay_ms:g} ms round trip)")
    for kind in kinds:
        base = Path(tempfile.mkdtemp(prefix=f"deployer-wan-{kind}-"))
        try:
            if kind == "sftp":
                rows, copy = sftp_site(base, delay)
            else:
                rows, copy = smb_site(base, delay, smb1=kind == "smb1")
        finally:
            shutil.rmtree(base, ignore_errors=True)
        name = {"smb2": "SMB 2/3", "smb1": "SMB1", "sftp": "SFTP"}[kind]
        print(f"\n{name}:")
        for r in rows:
            print(r.line())
            servers = (r.traffic or {}).get("servers") or {}
            if servers:
                print("      " + ", ".join(f"{n} {c['round_trips']} rt {c['bytes_read'] / 1e6:.2f} MB r"
                                          for n, c in servers.items()))
        print(copy.line())
        apply = rows[0]
        t = (apply.traffic or {}).get("total") or {}
        read = t.get("bytes_read")
        print(f"  apply / plain copy: {apply.seconds / copy.seconds:.1f}x wall, "
              f"{apply.link.turns / max(1, copy.link.turns):.1f}x turns; payload {copy.payload / 1e6:.2f} MB"
              + (f", read back {read / copy.payload:.2f}x the payload" if read is not None else ""))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
