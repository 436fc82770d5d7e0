"""``{{ vars.NAME }}`` in manifest strings, and nothing else.

Templates render in jinja2's sandbox with strict undefined, so a typo is an
error rather than an empty string. Only the name ``vars`` exists: an
Argo-style ``{{workflow.parameters.x}}`` is answered with the way parameters
really reach a step (environment variables). Sizes are capped, because a
sandbox still lets ``{{ 'x' * 10**9 }}`` allocate a gigabyte.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

#: Longest string or list an expression may build.
MAX_RENDERED = 100_000

_HINTS = {
    "workflow": "parameters reach commands as environment variables: use $FLOWPLAN_PARAM_<NAME>",
    "inputs": "parameters reach commands as environment variables: use $FLOWPLAN_PARAM_<NAME>",
    "steps": "step outputs are not templated by flowplan; pass data through a sink",
    "item": "the foreach item reaches the step as $FLOWPLAN_FOREACH_ITEM",
    "tasks": "step outputs are not templated by flowplan; pass data through a sink",
    "var": "did you mean vars.NAME?",
    "env": "environment variables are read by the command at run time: write $NAME, not {{ env.NAME }}",
}


class TemplateError(Exception):
    """A template could not render; ``message`` is for a person."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with multiplication and power bounded."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise TemplateError("exponent too large in template")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int) and len(seq) * count > MAX_RENDERED:
                    raise TemplateError(f"template builds a value longer than {MAX_RENDERED:,} characters")
            return operator.mul(left, right)
        return super().call_binop(context, operator_name, left, right)


_ENV = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


def needs_render(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@dataclass(frozen=True)
class _Parsed:
    template: jinja2.Template
    var_names: frozenset[str]


@lru_cache(maxsize=4096)
def _parse(text: str) -> _Parsed:
    try:
        ast = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}") from None
    unknown = sorted(meta.find_undeclared_variables(ast) - {"vars"})
    if unknown:
        name = unknown[0]
        hint = _HINTS.get(name, "only {{ vars.NAME }} can be used in templates")
        raise TemplateError(f"unknown template name {name!r}", hint)
    names: set[str] = set()
    dynamic = False
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "vars":
            if isinstance(node, nodes.Getattr):
                names.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                names.add(node.arg.value)
            else:
                dynamic = True
    for node in ast.find_all(nodes.Name):
        if node.name == "vars" and not names and not dynamic:
            dynamic = True
    if dynamic:
        names.add("*")
    return _Parsed(_ENV.from_string(ast), frozenset(names))


def referenced_vars(text: str) -> frozenset[str]:
    """Names of vars a template reads (``*`` when it reads ``vars`` as a whole)."""
    return _parse(text).var_names


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Render one string; raises :class:`TemplateError` with a person-sized message."""
    parsed = _parse(text)
    for name in parsed.var_names - {"*"}:
        if name not in variables:
            close = difflib.get_close_matches(name, list(variables), n=1)
            hint = f"did you mean vars.{close[0]}?" if close else "declare it under vars:"
            raise TemplateError(f"unknown var {name!r}", hint)
    try:
        result = parsed.template.render(vars=dict(variables))
    except TemplateError:
        raise
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"template not allowed: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template refers to something undefined: {exc.message}") from None
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, OverflowError) as exc:
        raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from None
    if len(result) > MAX_RENDERED:
        raise TemplateError(f"template renders more than {MAX_RENDERED:,} characters")
    return result
