"""``{{ vars.NAME }}`` in manifest strings, and nothing else.

Templates render in jinja2's sandbox with strict undefined, so a typo is an
error rather than an empty string. Only the name ``vars`` exists: an
Argo-style ``{{workflow.parameters.x}}`` is answered with the way parameters
really reach a step (environment variables).

The sandbox stops attribute escapes but not resource bombs: ``{{ 'x' * 10**9 }}``,
``{{ 'x'|center(10**9) }}``, ``'%09999999d' % 1``, a ``{% for %}`` inside a
``{% for %}``, or ``str.ljust`` all allocate or loop without bound. So before a
template is rendered its syntax tree is checked against a small allowlist:
output expressions only (no ``{% %}`` statements), ``vars.NAME`` /
``vars['NAME']`` with literal names, literals, ``~`` and arithmetic (sizes
capped at render time), comparisons, ``a if c else b``, and a few filters whose
output is no bigger than their input. Method calls, dynamic lookups and
everything else are refused with a message saying what is allowed.

Most templates are simply ``text {{ vars.NAME }} text``; those are rendered
by substitution without compiling a jinja template (compiling one per
distinct string was most of the load time of a 10,000-flow manifest). Both
paths give the same text.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

#: Longest string or list an expression may build.
MAX_RENDERED = 100_000
#: Largest integer (in bits) arithmetic may produce.
MAX_INT_BITS = 256

_PARAM_HINT = (
    "templates only see vars; parameters reach every step's command as environment variables: "
    "write $FLOWPLAN_PARAM_<NAME>"
)
_HINTS = {
    "workflow": _PARAM_HINT,
    "inputs": _PARAM_HINT,
    "params": _PARAM_HINT,
    "parameters": _PARAM_HINT,
    "steps": "step outputs are not templated by flowplan; pass data through a sink",
    "tasks": "step outputs are not templated by flowplan; pass data through a sink",
    "item": "the foreach item reaches the step as $FLOWPLAN_FOREACH_ITEM",
    "input": "the foreach item reaches the step as $FLOWPLAN_FOREACH_ITEM",
    "var": "did you mean vars.NAME?",
    "variables": "did you mean vars.NAME?",
    "env": "environment variables are read by the command at run time: write $NAME, not {{ env.NAME }}",
}

#: Filters whose output is bounded by their input (``replace`` is checked when called).
ALLOWED_FILTERS = frozenset(
    {
        "abs",
        "capitalize",
        "d",
        "default",
        "first",
        "float",
        "int",
        "join",
        "last",
        "length",
        "lower",
        "replace",
        "round",
        "string",
        "title",
        "trim",
        "truncate",
        "upper",
        "urlencode",
    }
)
ALLOWED_TESTS = frozenset({"defined", "undefined", "none", "number", "string", "eq", "ne", "in", "true", "false"})

_ALLOWED_EXPRESSIONS = (
    nodes.Const,
    nodes.TemplateData,
    nodes.Concat,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Pow,
    nodes.List,
    nodes.Tuple,
    nodes.Slice,
)


class TemplateError(Exception):
    """A template could not render; ``message`` is for a person."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _replace(value: Any, old: Any, new: Any, count: Any = None) -> str:
    text, old_s, new_s = str(value), str(old), str(new)
    occurrences = text.count(old_s) if old_s else len(text) + 1
    if len(text) + occurrences * len(new_s) > MAX_RENDERED:
        raise TemplateError(f"template builds a value longer than {MAX_RENDERED:,} characters")
    return text.replace(old_s, new_s) if count is None else text.replace(old_s, new_s, int(count))


def _finalize(value: Any) -> Any:
    """Booleans render as YAML writes them (``true``), nothing as an empty string."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return value


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with the binary operators that can build big values bounded."""

    intercepted_binops = frozenset(["*", "**", "%", "+"])

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)):
                raise TemplateError("'**' works on numbers only")
            if abs(right) > 64 or (isinstance(left, int) and abs(left).bit_length() * abs(right) > MAX_INT_BITS):
                raise TemplateError("number too large in template")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int) and len(seq) * count > MAX_RENDERED:
                    raise TemplateError(f"template builds a value longer than {MAX_RENDERED:,} characters")
            both_ints = isinstance(left, int) and isinstance(right, int)
            if both_ints and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
                raise TemplateError("number too large in template")
            return operator.mul(left, right)
        if operator_name == "%":
            if isinstance(left, str):
                raise TemplateError("'%' formatting is not supported in templates; join strings with ~")
            return operator.mod(left, right)
        if operator_name == "+":
            sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
            if sequences and len(left) + len(right) > MAX_RENDERED:
                raise TemplateError(f"template builds a value longer than {MAX_RENDERED:,} characters")
            return operator.add(left, right)
        return super().call_binop(context, operator_name, left, right)  # pragma: no cover - all intercepted


_ENV = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_finalize)
_ENV.filters = {name: f for name, f in _ENV.filters.items() if name in ALLOWED_FILTERS}
_ENV.filters["replace"] = _replace
_ENV.tests = {name: t for name, t in _ENV.tests.items() if name in ALLOWED_TESTS}
_ENV.globals = {}

_MARKERS = ("{{", "{%", "{#")
_SIMPLE = re.compile(r"\{\{\s*vars\.([A-Za-z][A-Za-z0-9_]*)\s*\}\}")


def needs_render(text: str) -> bool:
    """Whether a string holds template syntax at all (most strings do not)."""
    return "{" in text and ("{{" in text or "{%" in text or "{#" in text)


# What in a YAML file's bytes could become "{{", "{%" or "{#" in a parsed string: the markers
# themselves, a "{" written as an escape (\x7b, \u007b, \U0000007b) in a double-quoted scalar,
# or a "{" before an escaped line break there, which joins the next line's "{" without a space.
# (Plain, single-quoted and block scalars fold line breaks into spaces or keep them.)
_YAML_MARKERS = re.compile(rb"\{[{%#]|\\(x|u00|U000000)7[bB]|\{\\\r?\n")


def may_render(raw: bytes) -> bool:
    """Whether any string parsed from this YAML text can hold template syntax.

    False lets the loader skip looking at a large template-free manifest's million scalars.
    """
    return _YAML_MARKERS.search(raw) is not None


class _Vars:
    """What ``vars`` is inside a template: ``vars.NAME`` and ``vars['NAME']``, nothing else.

    A plain dict would answer ``vars.items`` or ``vars.values`` with its own
    methods instead of the vars of those names.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]


@dataclass(frozen=True)
class _Parsed:
    #: None when the text is plain ``{{ vars.NAME }}`` substitutions (rendered without jinja).
    template: jinja2.Template | None
    var_names: frozenset[str]


def _simple(text: str) -> _Parsed | None:
    """The substitution-only form, or None when jinja must handle the text."""
    pieces = _SIMPLE.split(text)
    literals = pieces[0::2]
    if any(marker in piece for piece in literals for marker in _MARKERS):
        return None
    if any(piece.endswith("{") for piece in literals[:-1]):
        return None  # "{{{ vars.x }}" is not a substitution to jinja
    if any(piece.startswith(("-", "}")) for piece in literals[1:]) or "-}}" in text or "{{-" in text:
        return None  # whitespace control and "}}}" are left to jinja to get exactly right
    return _Parsed(None, frozenset(pieces[1::2]))


@lru_cache(maxsize=4096)
def _parse(text: str) -> _Parsed:
    simple = _simple(text)
    if simple is not None:
        return simple
    try:
        ast = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error: {exc.message}",
            "write {{ vars.NAME }}; for a literal '{{' write {{ '{{' }}",
        ) from None
    names: set[str] = set()
    for stmt in ast.body:
        if not isinstance(stmt, nodes.Output):
            raise TemplateError(
                f"{{% {type(stmt).__name__.lower()} %}} statements are not allowed in manifest templates",
                "only {{ expressions }} with vars.NAME are supported",
            )
        for expr in stmt.nodes:
            _check(expr, names)
    return _Parsed(_ENV.from_string(ast), frozenset(names))


def _check(node: nodes.Node, names: set[str]) -> None:
    """Refuse anything outside the allowlist; collect the var names read."""
    if isinstance(node, nodes.Name):
        if node.name != "vars":
            hint = _HINTS.get(node.name, "only {{ vars.NAME }} can be used in templates")
            raise TemplateError(f"unknown template name {node.name!r}", hint)
        raise TemplateError("'vars' must be followed by a name", "write {{ vars.NAME }}")
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        root: nodes.Node = node
        while isinstance(root, nodes.Getattr | nodes.Getitem):
            root = root.node
        if isinstance(root, nodes.Name) and root.name != "vars":
            _check(root, names)  # names the unknown root (workflow, inputs, ...) with its hint
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "vars":
            if isinstance(node, nodes.Getattr):
                name: Any = node.attr
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                name = node.arg.value
            else:
                raise TemplateError("vars[...] needs a literal name", "write {{ vars.NAME }}")
            if name.startswith("_"):
                raise TemplateError(
                    f"{name!r} is not a var name; the sandbox refuses names starting with '_'",
                    "templates can only read {{ vars.NAME }}",
                )
            names.add(name)
            return
        _check(target, names)  # the innermost problem first: vars.__class__ before .__mro__
        if isinstance(root, nodes.Name) and isinstance(node, nodes.Getattr):
            raise TemplateError(
                f"vars hold plain values; .{node.attr} cannot be read from one",
                "write {{ vars.NAME }}",
            )
        if isinstance(node, nodes.Getattr):
            raise TemplateError(
                f"attribute and method access (.{node.attr}) is not allowed in templates",
                "use a filter such as | upper, | replace('a', 'b')",
            )
        if not isinstance(node.arg, nodes.Slice | nodes.Const):
            raise TemplateError("only literal indexes and slices are allowed in templates")
        _check(node.arg, names)
        return
    if isinstance(node, nodes.Filter):
        if node.name not in ALLOWED_FILTERS:
            raise TemplateError(
                f"filter {node.name!r} is not allowed in templates",
                "allowed: " + ", ".join(sorted(ALLOWED_FILTERS)),
            )
    elif isinstance(node, nodes.Test):
        if node.name not in ALLOWED_TESTS:
            raise TemplateError(f"test {node.name!r} is not allowed in templates")
    elif isinstance(node, nodes.Call):
        raise TemplateError("calls are not allowed in templates", "use a filter such as | upper")
    elif not isinstance(node, _ALLOWED_EXPRESSIONS):
        raise TemplateError(f"{type(node).__name__} expressions are not allowed in templates")
    for child in node.iter_child_nodes():
        _check(child, names)


def referenced_vars(text: str) -> frozenset[str]:
    """Names of the vars a template reads (exact: dynamic lookups are refused)."""
    return _parse(text).var_names


def _text(value: Any) -> str:
    return str(_finalize(value))


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Render one string; raises :class:`TemplateError` with a person-sized message."""
    parsed = _parse(text)
    for name in sorted(parsed.var_names):
        if name not in variables:
            close = difflib.get_close_matches(name, list(variables), n=1)
            hint = f"did you mean vars.{close[0]}?" if close else "declare it under vars:"
            raise TemplateError(f"unknown var {name!r}", hint)
    if parsed.template is None:
        result = _SIMPLE.sub(lambda match: _text(variables[match.group(1)]), text)
    else:
        try:
            result = parsed.template.render(vars=_Vars(variables))
        except TemplateError:
            raise
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(f"template not allowed: {exc}") from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template refers to something undefined: {exc.message}") from None
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from None
    if len(result) > MAX_RENDERED:
        raise TemplateError(f"template renders more than {MAX_RENDERED:,} characters")
    return result
