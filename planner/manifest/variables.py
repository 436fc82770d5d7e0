"""Vars: their values from defaults, var files and ``--var``, and the manifest with its templates rendered.

A later source wins over an earlier one (default, then ``FLOWPLAN_VAR_<name>``
in the environment, then each var file in order, then the command line). Values of ``sensitive`` vars, and what
templates using them render to, are collected so that no message or plan
shows them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from planner.errors import Location, ManifestError, Problem
from planner.manifest import model as m
from planner.manifest.context import Context, as_dict, did_you_mean, display_path, scalar_text
from planner.manifest.templating import TemplateError, needs_render, referenced_vars, render
from planner.manifest.yamlsource import PathT, parse_yaml, read_limited
from planner.secrets import MIN_LENGTH, too_short

#: Environment variables named ``FLOWPLAN_VAR_<name>`` give var values.
ENV_PREFIX = "FLOWPLAN_VAR_"


def resolve_vars(
    ctx: Context, data: dict[str, Any], cli_vars: Mapping[str, str], var_files: Sequence[str | os.PathLike[str]]
) -> tuple[dict[str, Any], set[str], dict[str, m.Var]]:
    """(value of each var that has one, names of the sensitive vars, the vars as the model holds them)."""
    declared = data.get("vars") if isinstance(data.get("vars"), dict) else {}
    assert isinstance(declared, dict)
    values: dict[str, Any] = {}
    sensitive: set[str] = set()
    required: set[str] = set()
    for name, spec in declared.items():
        if isinstance(spec, dict):
            if spec.get("sensitive") is True:
                sensitive.add(name)
            if "default" in spec:
                values[name] = spec["default"]
            else:
                required.add(name)
        elif spec is None:
            required.add(name)
        else:
            values[name] = spec
    values.update(_environment_vars(declared))
    for file in var_files:
        values.update(_var_file(ctx, file, declared))
    for name, value in cli_vars.items():
        if name not in declared:
            hint = did_you_mean(name, declared) or "declare it under vars: in the manifest"
            ctx.problems.append(Problem(Location("--var"), name, f"unknown var {name!r}", hint))
        else:
            values[name] = value
    for name in sorted(required - set(values)):
        ctx.error(
            ("vars", name),
            f"var {name!r} has no default and no value",
            f"pass --var {name}=VALUE, a --var-file or {ENV_PREFIX}{name}",
        )
    _refuse_short_secrets(ctx, values, sensitive)
    models = {
        name: m.Var(
            name,
            values.get(name),
            name in sensitive,
            spec.get("description") if isinstance(spec, dict) else None,
            ctx.loc(("vars", name)),
        )
        for name, spec in declared.items()
    }
    return values, sensitive, models


def _environment_vars(declared: Mapping[str, Any]) -> dict[str, str]:
    """Declared vars set as ``FLOWPLAN_VAR_<name>`` in the environment (as Terraform's ``TF_VAR_<name>``).

    Above defaults and below var files and ``--var``: the CI operator's environment sets a baseline (a
    secret from the CI's secret store) that the invocation may still override. Undeclared names are
    ignored, so one environment can serve several manifests.
    """
    return {name: os.environ[ENV_PREFIX + name] for name in declared if ENV_PREFIX + name in os.environ}


def _refuse_short_secrets(ctx: Context, values: Mapping[str, Any], sensitive: set[str]) -> None:
    """A sensitive value too short to mask is refused: masking ``risk`` would cut up ``risk-scores``.

    The message names the var and the length needed, never the value.
    """
    for name in sorted(sensitive):
        value = values.get(name)
        if value is None or value == "":
            continue
        if too_short(scalar_text(value)):
            ctx.error(
                ("vars", name),
                f"the value of sensitive var {name!r} is too short to keep secret "
                f"(fewer than {MIN_LENGTH} characters): it could not be masked without masking parts of "
                "names and addresses",
                f"use a longer secret (at least {MIN_LENGTH} characters), or drop `sensitive: true` if the value "
                "is not a secret",
            )


def _var_file(ctx: Context, file: str | os.PathLike[str], declared: Mapping[str, Any]) -> dict[str, Any]:
    """The declared vars a var file sets; its problems (placed in that file) go to ``ctx``."""
    display = display_path(file)
    try:
        var_source = parse_yaml(read_limited(file), display)
    except FileNotFoundError:
        ctx.problems.append(
            Problem(
                Location(display),
                "",
                "var file not found",
                "--var-file paths are relative to the current directory",
            )
        )
        return {}
    except ManifestError as exc:
        ctx.problems.extend(exc.problems)
        return {}
    except OSError as exc:
        ctx.problems.append(Problem(Location(display), "", f"cannot read the var file: {exc.strerror or exc}"))
        return {}
    file_vars = var_source.data
    if file_vars is None:
        return {}
    if not isinstance(file_vars, dict):
        ctx.problems.append(Problem(var_source.locate(()), "", "a var file is a mapping of NAME: value"))
        return {}
    values = {}
    for name, value in file_vars.items():
        where = var_source.locate_key((name,))
        if name not in declared:
            hint = did_you_mean(name, declared) or "declare it under vars: in the manifest"
            ctx.problems.append(Problem(where, str(name), f"unknown var {name!r}", hint))
        elif not isinstance(value, str | int | float | bool):
            ctx.problems.append(Problem(where, str(name), "a var's value is a string, number or boolean"))
        else:
            values[name] = value
    return values


def vars_digest(variables: Mapping[str, Any]) -> str:
    """A digest of the var values, so a saved plan notices when it is applied with other values."""
    text = json.dumps({k: variables[k] for k in sorted(variables)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def render_all(
    ctx: Context,
    data: dict[str, Any],
    variables: Mapping[str, Any],
    sensitive_vars: set[str],
    *,
    templated: bool = True,
) -> tuple[dict[str, Any], set[str]]:
    """``data`` with every template rendered; ``templated=False`` (the file has no template syntax) skips the walk."""
    sensitive_values: set[str] = {str(variables[n]) for n in sensitive_vars if n in variables and variables[n] != ""}
    if not templated:
        return dict(data), sensitive_values

    unset = {name for name in as_dict(data.get("vars")) if name not in variables}

    def one(text: str, path: PathT) -> str:
        try:
            names = referenced_vars(text)
            if names & unset:
                ctx.unrendered.add(path)
                return text  # "has no default and no value" is reported at the var
            result = render(text, variables)
        except TemplateError as exc:
            ctx.error(path, exc.message, exc.hint)
            ctx.unrendered.add(path)
            return text
        if names & sensitive_vars:
            sensitive_values.add(result)
        return result

    rendered = {
        key: value
        if key == "vars"
        else one(value, (key,))
        if isinstance(value, str) and needs_render(value)
        else _render_walk(value, (key,), one)
        if type(value) in (dict, list)
        else value
        for key, value in data.items()
    }
    return rendered, sensitive_values


def _render_walk(value: Any, path: PathT, one: Callable[[str, PathT], str]) -> Any:
    """``value`` with every templated string rendered by ``one``; copy-on-write.

    Paths are built only for containers: a large manifest has a million scalars and a few thousand
    templates. (Module-level: a recursive closure would be a reference cycle through the loader's
    context and its node tree, freed only by the garbage collector.)
    """
    items = value.items() if type(value) is dict else enumerate(value)
    changed: dict[Any, Any] = {}
    for key, item in items:
        kind = type(item)
        if kind is str:
            if "{" in item and needs_render(item):
                changed[key] = one(item, (*path, key))
        elif kind is dict or kind is list:
            new = _render_walk(item, (*path, key), one)
            if new is not item:
                changed[key] = new
    if not changed:
        return value
    copy = dict(value) if type(value) is dict else list(value)
    for key, new in changed.items():
        copy[key] = new
    return copy


def sensitive_env_values(rendered: Mapping[str, Any]) -> set[str]:
    """Values of step env entries marked ``sensitive: true``: kept out of messages as sensitive vars are."""
    found = set()
    for flow in as_dict(rendered.get("flows")).values():
        for step in as_dict(as_dict(flow).get("steps")).values():
            for env in as_dict(as_dict(step).get("env")).values():
                if isinstance(env, dict) and env.get("sensitive") is True and env.get("value") not in (None, ""):
                    found.add(scalar_text(env.get("value")))
    return found
