"""Path templates: jinja2 in a sandbox, with every undefined name an error.

A typo in `{{ sms_rot }}` must stop the run, never render an empty string and send a
file to the wrong folder; and a template must never reach Python internals.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_TEMPLATE = 1024
MAX_RENDERED = 4096


class TemplateProblem(ValueError):
    pass


class _Sandbox(ImmutableSandboxedEnvironment):
    """The stock sandbox blocks attribute escapes but not `'x' * 10**9` or `9**9**9`."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                raise SecurityError("exponent larger than 64 is not allowed in a template")
            return left**right
        if isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple)):
            count = right if isinstance(left, (str, list, tuple)) else left
            seq = left if isinstance(left, (str, list, tuple)) else right
            if isinstance(count, int) and count * max(len(seq), 1) > MAX_RENDERED:
                raise SecurityError(f"repetition longer than {MAX_RENDERED} is not allowed in a template")
        return left * right


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    return _Sandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


@lru_cache(maxsize=512)
def _compile(source: str) -> jinja2.Template:
    return _env().from_string(source)


def render(source: str, variables: Mapping[str, Any]) -> str:
    if len(source) > MAX_TEMPLATE:
        raise TemplateProblem(f"template is {len(source)} characters; at most {MAX_TEMPLATE} are allowed")
    try:
        out = _compile(source).render(**variables)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        names = ", ".join(sorted(variables))
        raise TemplateProblem(f"{exc.message}; variables available here: {names}") from None
    except SecurityError as exc:
        raise TemplateProblem(f"template refused by the sandbox: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, OverflowError, MemoryError, RecursionError) as exc:
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None
    if len(out) > MAX_RENDERED:
        raise TemplateProblem(f"template renders to {len(out)} characters; at most {MAX_RENDERED} are allowed")
    return out


def check_syntax(source: str) -> None:
    """Compile-only check, so a broken template is reported at load time with its line."""
    if len(source) > MAX_TEMPLATE:
        raise TemplateProblem(f"template is {len(source)} characters; at most {MAX_TEMPLATE} are allowed")
    try:
        _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}") from None
