"""What a step kind is: everything deployer knows about one kind of playbook step.

A kind holds its playbook model, how it plans (actions, skips, problems), how each of its
actions is prepared, executed, undone, checked at the end state and described. The
planner, the run, the undo, recovery, saved plans and the renderers only ever call these
methods through the registry (steps/__init__.py); none of them knows the kinds.

The methods a kind must define are marked `required` below; `tests/test_steps_registry.py`
fails when a registered kind lacks one.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import BeforeValidator, Field

from ..model import winpath
from ..model.common import Strict, accepts, number_in
from ..model.runpaths import backup_path
from ..model.transport import HARD_LINK, SERVER_COPY
from ..model.state import FileState, Touched, file_state
from ..targets.base import RUNNING, STOPPED

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from ..errors import InputError
    from ..model.manifest import LoadedManifest
    from ..plan.planner import Planner
    from ..run.apply import Runner
    from ..run.undo import Undo
    from ..model.yamlsrc import Document

SELECTORS = ("site_server", "logon_servers", "helper_servers", "all")
KeyPath = tuple[Union[str, int], ...]


@accepts(lambda inner: {"anyOf": [{"enum": list(SELECTORS)}, {"type": "array", "items": {"type": "string"}}],
                        "description": "which servers: " + ", ".join(SELECTORS) + ", or a list of server names"})
def _selector(v: Any) -> Any:
    # One message naming every choice, instead of pydantic's two (one per branch of the union,
    # neither of which mentions the other).
    if (isinstance(v, str) and v in SELECTORS) or (isinstance(v, list) and all(isinstance(n, str) for n in v)):
        return v
    got = repr(v) if isinstance(v, str) else {dict: "a mapping", list: "a list with a non-name in it",
                                              type(None): "nothing"}.get(type(v), type(v).__name__)
    raise ValueError(f"must be one of {', '.join(SELECTORS)}, or a list of server names (got {got})")


Selector = Annotated[Union[Literal["site_server", "logon_servers", "helper_servers", "all"], list[str]],
                     BeforeValidator(_selector)]


class StepModel(Strict):
    """Fields every step has besides its action key."""

    name: str | None = Field(default=None, description="a label shown in plans")
    servers: Selector = "site_server"


def required(fn: Any) -> Any:
    fn.__required__ = True
    return fn


class StepKind:
    key: ClassVar[str]  # the playbook key: `stop:`, `replace:` ...
    model: ClassVar[type[Strict]]  # the step's pydantic model
    action: ClassVar[type]  # the action dataclass it plans (its `kind` field defaults to `key`)
    summary_group: ClassVar[str] = ""  # kinds summed up together in a plan's one-line summary
    summary_rank: ClassVar[int] = 50  # where that group stands in the summary
    changes_files: ClassVar[bool] = False  # its actions change files (a plan with none of them converges)
    needs_quiet: ClassVar[bool] = False  # its actions need the playbook's service stops (replacing files)
    outage_only: ClassVar[bool] = False  # its actions only serve others (stops and starts around replacements)
    reversible: ClassVar[bool] = True  # False: a done action cannot be taken back (a control code)
    undo_per_server: ClassVar[bool] = False  # its undo spans servers and restores each reachable one itself
    written_by_site: ClassVar[bool] = False  # its files are written by the site's programs, maybe before it begins

    # --- loading --------------------------------------------------------------------------------

    def normalise(self, doc: "Document", declared: dict[str, Any], index: int, step: Any) -> Any:
        """Checks and canonical spellings after validation (service names, codes); errors at doc."""
        return step

    def manifest_problems(self, doc: "Document", index: int, step: Any, manifest: "LoadedManifest"
                          ) -> list["InputError"]:
        return []

    def files_named(self, spec: Any) -> dict[str, str]:
        """The files a step of this kind names relative to the playbook, read on the controller
        ({field: path}, from the step's raw mapping): what a rollout through workers must send
        with the playbook, without knowing which kind names which file."""
        return {}

    def installs(self, step: Any) -> list[str]:
        """The manifest files a step of this kind puts on the site's servers (by name): how a check
        asks whether the playbook itself installs a file, without knowing which kind does."""
        return []

    # --- planning -------------------------------------------------------------------------------

    @required
    def plan(self, planner: "Planner", index: int, step: Any) -> None:
        """Append this step's actions (and skips, problems, checks) to the planner."""
        raise NotImplementedError

    # --- running --------------------------------------------------------------------------------

    def prepare(self, run: "Runner", action: Any) -> None:
        """Before any action runs: back up, stage. Nothing visible changes here."""

    @required
    def execute(self, run: "Runner", action: Any) -> None:
        raise NotImplementedError

    def quiesce(self, undo: "Undo", action: Any) -> None:
        """Before files are restored: make sure nothing holds them (stopped services stay stopped)."""

    @required
    def undo(self, undo: "Undo", action: Any) -> None:
        """Take the action back, doing nothing where the target is already as it was."""
        raise NotImplementedError

    # --- facts about an action ------------------------------------------------------------------

    def touched(self, action: Any) -> list[Touched]:
        """The files the action changes (checked byte for byte after an undo and at the end state)."""
        return []

    def rewritten(self, action: Any) -> list[tuple[str, str]]:
        """(server, path) of files the site's own programs rewrite because of the action, which
        its undo restores; their folders are watched for an interrupted write's temporary copy."""
        return []

    def service_effects(self, action: Any) -> list[tuple[str, str, str]]:
        """(server, service, state) the action leaves behind."""
        return []

    def uploads(self, action: Any) -> list[tuple[str, str, str | None]]:
        """(server, local file, sha256) of every file the action sends to a server: the run refuses a
        lab stand-in among them for a server that is not the mock (standin.py)."""
        return []

    def servers(self, action: Any) -> set[str]:
        return {action.server} | {t.server for t in self.touched(action)}

    def server_names(self, action: Any) -> list[tuple[KeyPath, str]]:
        """(key path inside the action, server name) for every server the action names: a saved
        plan is checked against the site's servers before anything connects."""
        return [(("server",), action.server)]

    def server_paths(self, action: Any) -> list[tuple[KeyPath, str]]:
        """(key path inside the action, path on a server) for every path a saved plan carries."""
        return []

    # --- words ----------------------------------------------------------------------------------

    @required
    def describe(self, action: Any) -> str:
        """One line for progress and journals."""
        raise NotImplementedError

    def label(self, action: Any) -> str:
        """A few words naming the action, for a skip ("stop SMS_EXECUTIVE")."""
        return self.describe(action)

    @required
    def render(self, action: Any, tz: "ZoneInfo") -> list[tuple[str, str | None]]:
        """The plan listing's lines (text, style) after the action's number."""
        raise NotImplementedError

    def summarize(self, actions: list[Any]) -> str | None:
        """This group's part of the plan's one-line summary (called for every group, even with no
        actions: None leaves it out)."""
        return None

    # --- saved plans ----------------------------------------------------------------------------

    def action_from_json(self, data: dict[str, Any]) -> Any:
        return from_json(self.action, data)


class SiteWrittenKind(StepKind):
    """A kind whose files the site's own programs write (Site Configuration Manager's Helper.srv
    copies, Maintenance Manager's Logon.srv copies and copy lists): deployer triggers the program,
    waits for its files, and restores them server by server. What such kinds share."""

    changes_files = True
    undo_per_server = True
    written_by_site = True

    def backup_each(self, run: "Runner", a: Any, copies: list[Any]) -> None:
        """Back up every file of `copies` (each with server, path, before) that exists."""
        for k, c in enumerate(copies):
            if c.before is not None:
                run.backup(c.server, c.path, c.before, backup_path(run.run, a.number, winpath.basename(c.path), k),
                           a.number)

    def restart(self, run: "Runner", server: str, service: str) -> None:
        """Stop the service if it runs, then start it: the documented trigger of the program's work."""
        if run.ep(server).services.query(service).state == RUNNING:
            run.service(server, service, STOPPED)
        run.service(server, service, RUNNING)

    def copies_touched(self, copies: list[Any]) -> list[Touched]:
        return [Touched(c.server, c.path, c.before, c.after) for c in copies]

    def named_in(self, field: str, action: Any, items: list[Any]) -> list[tuple[KeyPath, str]]:
        """The action's own server and each server of its list `field` (copies, copy lists)."""
        return [(("server",), action.server)] + [((field, k, "server"), c.server) for k, c in enumerate(items)]

    def copies_paths(self, copies: list[Any]) -> list[tuple[KeyPath, str]]:
        """The paths a saved plan carries for copies (each with path, and source on the site server)."""
        return [p for j, c in enumerate(copies)
                for p in ((("copies", j, "path"), c.path), (("copies", j, "source"), c.source))]


def by_identity(ep: Any, *, swapped: bool = False) -> bool:
    """Whether a plan may identify a file it is about to back up and may restore by its
    fingerprint (size and write time) instead of reading its sha256: the session trusts
    fingerprints (not --checksum) and the server copies files itself (SERVER_COPY), so the
    backup, the restore and their checks never move the bytes over the wire: each copy is
    checked against that identity (run/known.py vouched_sources, vouched_copies; FileState.matches), a
    source changed since the plan (another size or time) is refused as before. What it cannot
    see is what the quick check cannot: a rewrite that keeps the size and puts the time back.
    The journal's backup record then says `identity: size+time` (no sha256).

    `swapped`: the file is replaced by a rename, and its backup is a hard link where the target
    can make one (run/apply.py backup): that backup shares its bytes with the live file until
    the swap, so a program writing into the file in between (size and time kept) would change
    it unseen by any fingerprint; such a file keeps its sha256, which the restore checks."""
    return bool(getattr(ep.files, "quick_check", False)) and ep.can(SERVER_COPY) and not (swapped and ep.can(HARD_LINK))


class LogonWait(Strict):
    """A bounded wait for Maintenance Manager on every logon server."""

    timeout: Annotated[float, number_in(0, 86400, "timeout", integer=False, above=True)] = Field(
        default=900.0, description="seconds to wait for every logon server")
    restart_executive: bool = Field(default=False, description="restart SMS_EXECUTIVE first, to run a Maintenance "
                                    "Manager cycle at once")


class LogonStepModel(Strict):
    """Fields of a step that acts on the logon servers (by default)."""

    name: str | None = Field(default=None, description="a label shown in plans")
    servers: Selector = "logon_servers"


def from_json(cls: type, data: dict[str, Any]) -> Any:
    """A dataclass from its asdict() form, nested FileStates and dataclass lists included."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        out[f.name] = _value(hints[f.name], data[f.name])
    return cls(**out)


def _value(tp: Any, v: Any) -> Any:
    if v is None:
        return None
    args = typing.get_args(tp)
    if tp is FileState or (FileState in args):
        return file_state(v)
    if typing.get_origin(tp) is list and args and dataclasses.is_dataclass(args[0]):
        return [from_json(args[0], x) for x in v]
    return v


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"
