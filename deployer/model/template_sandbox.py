"""Path templates through jinja2, in a sandbox, with every undefined name an error: the part of
templating.py that needs jinja2 (imported when a template is more than text and `{{ name }}`s).

A template must never reach Python internals, nor spend time or memory unmetered.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from .template_limits import MAX_INT_BITS, MAX_RENDERED, TemplateProblem

# A path template needs variables, a few string filters and at most an {% if %}. Everything
# else jinja2 offers is a way to spend time or memory that the sandbox does not meter: nested
# `{% for %}` over range() runs 10**10 iterations, `sms_root.ljust(10**9)` and
# `"%999999999d" % 1` build gigabyte strings before the length check can see them, a
# recursive macro recurses. So templates are checked against this allowlist when the
# playbook is loaded (check_syntax), before anything connects to a site.
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template, nodes.Output, nodes.If, nodes.TemplateData,
    nodes.Name, nodes.Const, nodes.Tuple, nodes.List, nodes.Dict, nodes.Pair, nodes.Keyword,
    nodes.Concat, nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not,
    nodes.Neg, nodes.Pos, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow,
    nodes.Getitem, nodes.Getattr, nodes.Slice, nodes.Filter, nodes.Test,
)
ALLOWED_FILTERS = ("capitalize", "d", "default", "lower", "string", "title", "trim", "upper")
_STATEMENT_NAMES = {"Assign": "set", "AssignBlock": "set", "FilterBlock": "filter", "CallBlock": "call",
                    "ExprStmt": "do", "FromImport": "from import", "EvalContextModifier": "autoescape",
                    "ScopedEvalContextModifier": "autoescape", "OverlayScope": "with"}
_ALLOWED_HELP = f"use {{{{ variables }}}}, filters ({', '.join(ALLOWED_FILTERS)}) and {{% if %}}"


class _Sandbox(ImmutableSandboxedEnvironment):
    """The stock sandbox blocks attribute escapes but not `'x' * 10**9` or `9**9**9`."""

    intercepted_binops = frozenset(["*", "**", "%"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%":
            # str % args is printf formatting: "%999999999d" % 1 is a gigabyte
            if isinstance(left, str):
                raise SecurityError("string formatting with % is not allowed in a template")
            return left % right
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                raise SecurityError("exponent larger than 64 is not allowed in a template")
            # ((9**64)**64)**64...: each step within 64, the result millions of digits
            if _is_int(left) and _is_int(right) and right > 0 and abs(left).bit_length() * right > MAX_INT_BITS:
                raise SecurityError(f"a power larger than {MAX_INT_BITS} bits is not allowed in a template")
            return left**right
        if _is_int(left) and _is_int(right) and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
            raise SecurityError(f"a product larger than {MAX_INT_BITS} bits is not allowed in a template")
        if isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple)):
            count = right if isinstance(left, (str, list, tuple)) else left
            seq = left if isinstance(left, (str, list, tuple)) else right
            if isinstance(count, int) and count * max(len(seq), 1) > MAX_RENDERED:
                raise SecurityError(f"repetition longer than {MAX_RENDERED} is not allowed in a template")
        return left * right


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_allowed(tree: nodes.Template) -> None:
    """Refuse what is outside the path-template allowlist (see _ALLOWED_NODES), naming it.

    When a template breaks several rules the most telling is reported: a reach for Python
    internals (`__class__`) before a statement ({% for %}), before a call, before a filter.
    """
    found: list[nodes.Node] = []
    stack: list[nodes.Node] = [tree]
    while stack:  # iterative: a template may nest deeper than it is wise to recurse
        node = stack.pop()
        found.append(node)
        stack.extend(node.iter_child_nodes())
    for node in found:
        attr = node.attr if isinstance(node, nodes.Getattr) else \
            node.arg.value if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) else None
        if isinstance(attr, str) and attr.startswith("_"):
            raise SecurityError(f"attribute {attr!r} is not allowed in a template (names starting with _ reach "
                                "Python internals)")
    for node in found:
        if not isinstance(node, _ALLOWED_NODES) and not isinstance(node, nodes.Call):
            kind = _STATEMENT_NAMES.get(type(node).__name__, type(node).__name__.lower())
            what = f"{{% {kind} %}}" if isinstance(node, nodes.Stmt) else kind
            raise SecurityError(f"{what} is not allowed in a path template; {_ALLOWED_HELP}")
    for node in found:
        if isinstance(node, nodes.Call):
            raise SecurityError(f"calls such as range(...) or .format(...) are not allowed in a path "
                                f"template; {_ALLOWED_HELP}")
    for node in found:
        if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            raise SecurityError(f"filter {node.name!r} is not allowed in a path template; allowed filters: "
                                f"{', '.join(ALLOWED_FILTERS)}")


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    return _Sandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


@lru_cache(maxsize=512)
def _compile(source: str) -> jinja2.Template:
    env = _env()
    try:
        tree = env.parse(source)
        try:
            _check_allowed(tree)
        except SecurityError as exc:
            raise TemplateProblem(f"template refused by the sandbox: {exc}") from None
        return env.from_string(tree)
    except jinja2.TemplateSyntaxError:
        raise
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        # jinja2 folds constant expressions while compiling: `{{ 1 ~ none.x }}` or
        # `{{ (0[] ~ 0) }}` fail right here, before any site variable is involved
        raise TemplateProblem(f"template cannot be evaluated: {type(exc).__name__}: {exc}") from None
    except (RecursionError, SyntaxError, MemoryError):
        # "((((...))))", "------1", "x.a.a.a...": jinja2's parser and code generator recurse per
        # level, and Python refuses to compile the generated code ("too many nested parentheses")
        raise TemplateProblem("template nests too deeply; a path template is a few variables") from None


def render(source: str, variables: Mapping[str, Any]) -> str:
    """templating.render's jinja2 path (the caller checks the lengths)."""
    try:
        return _compile(source).render(**variables)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        names = ", ".join(sorted(variables))
        raise TemplateProblem(f"{exc.message}; variables available here: {names}") from None
    except SecurityError as exc:
        raise TemplateProblem(f"template refused by the sandbox: {exc}") from None
    except TemplateProblem:  # refused by _compile's checks: already says why
        raise
    except (TypeError, ValueError, ArithmeticError, OverflowError, MemoryError, RecursionError) as exc:
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None


def check_syntax(source: str) -> None:
    """templating.check_syntax's jinja2 path."""
    try:
        _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}") from None
