"""The manifest's shape against its JSON Schema, told the way a person fixes it.

jsonschema's own messages name schema keywords; these name the key that is
unknown (with the closest allowed spelling), the key that is missing (with what
it is for), or the type expected and the one found. A valid manifest never
reaches jsonschema: the schema module's compiled checks answer first, and an
invalid one sends only its outer shell and its failing flows through it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from planner.errors import Problem
from planner.manifest import schema as sch
from planner.manifest.context import Context, did_you_mean, scalar_text
from planner.manifest.templating import needs_render
from planner.manifest.yamlsource import PathT, dotted

_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def kind_of(value: Any) -> str:
    """A value described with its type, as messages name what was found instead of what was expected."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


@functools.cache
def _validators() -> tuple[Any, Any]:
    """jsonschema's validators of the shell and of one flow, made on the first invalid manifest.

    Importing jsonschema costs a valid manifest's every load a tenth of a second for nothing.
    """
    import jsonschema

    return jsonschema.Draft202012Validator(sch.MANIFEST_SHELL), jsonschema.Draft202012Validator(sch.FLOW)


def _schema_errors(data: Any) -> Iterable[tuple[PathT, Any]]:
    """jsonschema's errors with absolute paths, asking the fast check first.

    Valid manifests (the common case, and the large ones) never reach
    jsonschema; an invalid one sends only its outer shell and its failing
    flows through it.
    """
    if sch.check_manifest(data):
        return
    if not sch.check_shell(data):
        for err in _validators()[0].iter_errors(data):
            yield tuple(err.absolute_path), err
    flows = data.get("flows") if isinstance(data, dict) else None
    if isinstance(flows, dict):
        for name, flow in flows.items():
            if not sch.check_flow(flow):
                for err in _validators()[1].iter_errors(flow):
                    yield ("flows", name, *err.absolute_path), err


_REQUIRED_HINTS = {
    "version": "start the manifest with version: 1",
    "project": "project: NAME names the deployment; it becomes part of every resource name",
    "flows": "declare at least one flow under flows:",
    "command": "every step runs a command: a list like [python, -m, job] or a string run with sh -c",
    "steps": "a flow runs at least one step, or is a Metaflow FlowSpec file: metaflow: {file: PATH}",
    "type": "see docs/manifest.md for the types",
}


def _suggest_name(name: str, schema: Mapping[str, Any]) -> str | None:
    """A valid spelling for a name the pattern refused, when one is obvious."""
    pattern = schema.get("pattern", "")
    if pattern == sch.NAME:
        fixed = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        return f"for example {fixed!r}" if fixed and re.match(pattern, fixed) else None
    fixed = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")
    return f"for example {fixed!r}" if fixed and re.match(pattern, fixed) else None


def structure_problems(ctx: Context, data: Any) -> None:
    """Report every way ``data`` departs from the manifest's JSON Schema."""
    for path, err in _schema_errors(data):
        schema = err.schema if isinstance(err.schema, dict) else {}
        if err.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(err.instance, dict):
            _unknown_keys(ctx, path, err.instance, list(schema.get("properties", {})))
        elif err.validator == "required" and isinstance(err.instance, dict):
            _missing_keys(ctx, path, err.instance, list(err.validator_value))
        elif err.validator == "pattern" and isinstance(err.instance, str) and "x-message" in schema:
            # propertyNames errors arrive with the mapping's path and the key as instance.
            ctx.error(
                (*path, err.instance),
                f"{err.instance!r}: {schema['x-message']}",
                _suggest_name(err.instance, schema),
                key=True,
            )
        elif "x-message" in schema:
            ctx.error(path, schema["x-message"])
        else:
            message, hint = _described(err, schema)
            ctx.error(path, message, hint)


def _unknown_keys(ctx: Context, path: PathT, instance: Mapping[str, Any], allowed: list[str]) -> None:
    for key in instance:
        if key in allowed:
            continue
        hint = did_you_mean(key, allowed) or ("allowed: " + ", ".join(sorted(allowed)) if allowed else None)
        ctx.error((*path, key), f"unknown key {key!r}", hint, key=True)


def _missing_keys(ctx: Context, path: PathT, instance: Mapping[str, Any], required: list[str]) -> None:
    # Placed at the mapping's key (the manifest itself for a top-level key): the missing key has no position.
    for key in required:
        if key not in instance:
            loc = ctx.source.locate_key(path) if path else ctx.source.locate(())
            ctx.problems.append(
                Problem(loc, dotted((*path, key)), f"missing required key {key!r}", _REQUIRED_HINTS.get(key))
            )


def _described(err: Any, schema: Mapping[str, Any]) -> tuple[str, str | None]:
    """(message, hint) for a value the schema refused, in the manifest's words."""
    validator = err.validator
    if validator == "type":
        return _wrong_type(err.instance, err.validator_value)
    if validator == "enum":
        options = [str(o) for o in list(err.validator_value)]
        hint = did_you_mean(str(err.instance), options) if isinstance(err.instance, str) else None
        return f"must be one of {', '.join(options)} (got {err.instance!r})", hint or schema.get("x-hint")
    if validator == "uniqueItems":
        return "lists the same item twice", None
    if validator in ("minItems", "minLength", "minProperties"):
        return "must not be empty", None
    if validator in ("minimum", "maximum"):
        bound = "at least" if validator == "minimum" else "at most"
        return f"must be {bound} {err.validator_value} (got {err.instance})", None
    return err.message, None


def _wrong_type(instance: Any, expected_types: Any) -> tuple[str, str | None]:
    expected = expected_types if isinstance(expected_types, list) else [expected_types]
    words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in expected if t != "null")
    hint = None
    if isinstance(instance, str) and needs_render(instance):
        hint = "templates render to strings and are allowed only where a string is expected"
    elif isinstance(instance, bool):
        if expected == ["string"]:
            hint = "YAML reads yes/no/on/off/true/false as a boolean; quote it"
    elif isinstance(instance, int | float) and expected == ["string"]:
        hint = f'quote it: "{scalar_text(instance)}"'
    return f"expected {words}, got {kind_of(instance)}", hint
