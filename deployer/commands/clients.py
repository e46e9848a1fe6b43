"""Commands for what lies beyond the site server: `deployer inventory from-rservice` (PCM
service hosts from an Rservice .ini) and `deployer clients` (the CopyListVersion clients
compare against, per logon server). The registry (commands/__init__.py) names them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import EXIT_CODES_HELP, ExitCode
from ..report import out as outmod
from ..report.owned import ForceOpt
from .common import emit

if TYPE_CHECKING:  # imported when the command runs: `deployer --help` stays light
    from ..sms.clients import ClientsReport

inventory_app = typer.Typer(help="Inventory entries from the lists operators already keep.", no_args_is_help=True,
                            epilog=EXIT_CODES_HELP)


@inventory_app.command("from-rservice", epilog=EXIT_CODES_HELP)
def from_rservice(
    ini: Annotated[Path, typer.Argument(help="An Rservice .ini ([machine list], [installation directory], ...).")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the entries to FILE.")] = None,
    force: ForceOpt = False,
    platform: Annotated[str, typer.Option("--platform", help="The machines' processor (the .ini does not say): "
                                          "x86 or alpha.")] = "x86",
) -> None:
    """Print the pcm_hosts inventory entries of the machines an Rservice .ini names."""
    from ..sms import rservice

    result = rservice.hosts_from_ini(ini, platform=platform)
    text = rservice.to_yaml(result, ini)
    err = outmod.stderr()
    for note in result.notes:
        err.line(f"note: {note}", "warn")
    if output:
        hosts = f"{len(result.hosts)} PCM service host{'s' if len(result.hosts) != 1 else ''}"
        emit(text, output, f"Wrote {output}: {hosts} from {ini}.", what="the entries", force=force)
    else:
        sys.stdout.write(text)


def clients(
    site: Annotated[str, typer.Option("--site", "-s", help="Site name from the inventory.")],
    inventory: Annotated[Optional[Path], typer.Option("--inventory", "-i",
                                                      help="Site inventory (default: ./sites.yaml).")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """List, per logon server, the CopyListVersion clients will compare against (Q166771)."""
    if format not in ("text", "json"):
        raise typer.BadParameter(f"{format!r} is not one of text, json", param_hint="--format")
    from ..sms import clients as clientsmod
    from ..fleet import workflow

    site_ref = workflow.inventory(inventory).site(site)
    with workflow.session(site_ref) as conn:
        rep = clientsmod.report(site_ref, conn)
    if format == "json":
        sys.stdout.write(json.dumps(rep.to_json(), indent=1, sort_keys=True) + "\n")
    else:
        render(rep, outmod.stdout())
    if rep.errors:  # some logon servers could not be read (the others are reported): exit 1
        raise typer.Exit(int(ExitCode.FAILED_RESTORED))


def render(rep: "ClientsReport", out: outmod.Out) -> None:
    source = ", ".join(f"{k} {v if v is not None else '(none)'}" for k, v in rep.source.items())
    out.line(f"Copy lists of site {rep.site}: CopyListVersion on the site server {rep.site_server} "
             f"(Client.src): {source}")
    rows, styles = [], []
    for c in rep.copy_lists:
        rows.append([c.server, c.path, "-" if c.version is None else str(c.version), c.status, c.detail])
        styles.append({"current": "ok", "behind": "older", "missing": "missing"}.get(c.status, "warn"))
    if rows:
        out.table(["logon server", "copy list", "CopyListVersion", "status", "detail"], rows, styles)
    for server, why in rep.errors.items():
        out.line(f"{server}: could not read its copy lists: {why}", "bad")
    servers = sorted({c.server for c in rep.copy_lists} | set(rep.errors))
    if not servers:
        out.line("The site has no logon servers.")
    elif rep.current:
        versions = sorted({str(c.version) for c in rep.copy_lists})
        out.line(f"Clients on all {len(servers)} logon servers compare against CopyListVersion "
                 f"{', '.join(versions)}, the site server's.", "good")
    else:
        behind = sorted({c.server for c in rep.copy_lists if c.status != "current"} | set(rep.errors))
        out.line(f"Not current on {', '.join(behind)}: clients there compare against another CopyListVersion "
                 "than the site server's.", "warn")


from .inventory_show import EPILOG as _SHOW_EPILOG, show as _show  # noqa: E402  (its own module)

inventory_app.command("show", epilog=_SHOW_EPILOG)(_show)
