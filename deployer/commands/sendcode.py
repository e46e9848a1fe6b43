"""`deployer sendcode`: Sendcode.exe (Q168682) on any target, with the article's table enforced first.

The code is checked against Q168682's table before anything is connected, so a refusal
touches nothing (exit 2). Then, holding the site lock (a run in progress or left unfinished
refuses it, exit 2), the code goes to the service through the server's
ServiceTransport: the mock's services carry it out and say what they did (mock_sms);
a real server's Service Control Manager answers, and that answer is what is reported.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import InputError
from ..model.numbers import whole
from ..report import out as outmod
from ..sms import services as sms  # plain tables: cheap to import

if TYPE_CHECKING:
    from ..model.inventory import SiteRef


@dataclass
class SendResult:
    site: str
    server: str
    service: str
    code: int
    meaning: str
    rule: str
    answer: str  # what the Service Control Manager said
    state: str | None  # the service's state afterwards, when it could be queried
    did: list[str] = field(default_factory=list)  # what the service did (the mock reports it)


def check(service: str, code: int) -> str:
    """The service's canonical name, or InputError quoting Q168682's rule (nothing is sent)."""
    try:
        sms.check_control(service, code)
    except sms.ControlCodeError as exc:
        raise InputError(f"refused, nothing was sent: {exc}") from None
    return sms.lookup(service).name


def send(site: "SiteRef", service: str, code: int, server: str | None = None, *,
         break_lock: bool = False) -> SendResult:
    # imported here: `deployer --help` and the other commands do not load them
    from ..fleet import workflow
    from ..run.context import WARN, RunContext
    from ..targets.base import TargetError

    name = check(service, code)
    with workflow.session(site) as conn:
        if server is None:
            ep = conn.site_server
        else:
            try:
                ep = conn.endpoint(server)
            except KeyError:
                from ..model.suggest import did_you_mean

                raise InputError(f"site {site.name} has no server {server!r}{did_you_mean(server, conn.endpoints)}; "
                                 f"servers: {', '.join(conn.endpoints)}") from None
        # A watchdog cycle restarts stopped services and 194 rewrites Helper.srv: never in the
        # middle of someone's run, nor over one left unfinished. The site lock says so.
        ctx = RunContext(site.name, lambda e: outmod.stderr().line(e.text, "warn") if e.kind == WARN else None)
        with workflow.locked(conn, "sendcode", break_lock, ctx):
            did = ep.services.control(name, code)
            try:
                state: str | None = ep.services.query(name).state
            except TargetError:
                state = None
    return SendResult(site.name, ep.name, name, code, sms.describe_code(code), sms.code_rule(code) or "",
                      "ERROR_SUCCESS (0)", state, list(did) if isinstance(did, list) else [])


LIST_WIDTH = 100


def render_list(fmt: str) -> None:
    codes = sms.control_codes()
    if fmt == "json":
        sys.stdout.write(json.dumps([asdict(c) for c in codes], indent=1) + "\n")
        return
    import textwrap

    # within LIST_WIDTH columns: a code's services go on lines of their own, wrapped (a
    # table row with all six services of code 132 was 217 columns)
    def wrapped(text: str, first: str, rest: str) -> list[str]:
        return textwrap.wrap(text, LIST_WIDTH, initial_indent=first, subsequent_indent=rest,
                             break_long_words=False, break_on_hyphens=False)

    out = outmod.stdout()
    out.line("Service control codes (Q168682, Sendcode.exe):")
    for c in codes:
        for line in [*wrapped(c.meaning, f"  {c.code}  ", " " * 7),
                     *wrapped(", ".join(c.services), "       to: ", " " * 11)]:
            out.line(line)
    out.line()
    out.line("Q168682's table:")
    for codes_text, _, who in sms.CODE_RULES:
        for line in wrapped(who, f"  {codes_text:<9} ", " " * 12):
            out.line(line)
    out.line()
    for c in codes:
        for line in wrapped(c.article_text, f"  {c.code}  ", " " * 7):
            out.line(line)


def render_result(r: SendResult, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(asdict(r), indent=1) + "\n")
        return
    out = outmod.stdout()
    out.line(f"{r.server}: {r.service} accepted control code {r.code} ({r.meaning}; Q168682 {r.rule}); "
             f"the Service Control Manager answered {r.answer}.", "good")
    if r.state:
        out.line(f"  {r.service} is {r.state}.")
    if r.did:
        out.line("  The service:")
        for d in r.did:
            out.line(f"    {d}")


def sendcode(
    service: Annotated[Optional[str], typer.Argument(help="The SMS service, e.g. SMS_SITE_CONFIG_MANAGER.")] = None,
    code: Annotated[Optional[int], typer.Argument(parser=whole, help="The control code (Q168682: 128-130, 132, 192-196).")] = None,
    site: Annotated[Optional[str], typer.Option("--site", "-s", help="Site name from the inventory.")] = None,
    server: Annotated[Optional[str], typer.Option("--server", help="The server (default: the site server).")] = None,
    list_codes: Annotated[bool, typer.Option("--list", help="Print Q168682's codes, meanings and services.")] = False,
    inventory: Annotated[Optional[Path], typer.Option("--inventory", "-i", help="Site inventory (default: ./sites.yaml).")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    break_lock: Annotated[bool, typer.Option("--break-lock", help="Break a site lock left by a run that is gone.")] = False,
) -> None:
    """Send a Sendcode.exe service control code (Q168682), refused before sending if the article's table forbids it."""
    if format not in ("text", "json"):
        raise InputError(f"--format {format!r}: allowed: text, json")
    if list_codes:
        if service is not None or code is not None:
            raise InputError("--list takes no SERVICE or CODE")
        render_list(format)
        return
    if service is None or code is None:
        raise InputError("name a SERVICE and a CODE (e.g. sendcode --site DEMO SMS_SITE_CONFIG_MANAGER 192), "
                         "or pass --list")
    check(service, code)  # before the inventory is even read: a refusal needs no site
    if site is None:
        raise InputError("--site is required to send a code")
    from ..fleet import workflow

    site_ref = workflow.inventory(inventory).site(site)
    render_result(send(site_ref, service, code, server, break_lock=break_lock), format)

