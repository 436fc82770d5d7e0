"""``flows.yaml`` → :class:`~planner.manifest.model.Manifest`, reporting every problem at once.

The order matters: parse (positions, duplicate keys, alias bombs) → check the
structure against the JSON Schema → resolve vars → render templates → build
the model and check meaning (references, names, cron, time zones, step
graphs, ``after:`` cycles). Problems from all stages are collected and raised
together as one :class:`~planner.errors.ManifestError`, so a person fixes a
manifest in one round trip, not five.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from planner import heap
from planner import schedule as cronlib
from planner.errors import FlowplanError, Location, ManifestError, Problem
from planner.manifest import model as m
from planner.manifest import schema as sch
from planner.manifest.stepgraph import find_cycle, find_graph_problems
from planner.manifest.templating import TemplateError, may_render, needs_render, referenced_vars, render
from planner.manifest.units import UnitError, cpu_millis, duration_seconds, memory_bytes
from planner.manifest.yamlsource import Source, dotted, parse_yaml, read_limited

PathT = tuple[str | int, ...]

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
POINTER = re.compile(r"^(?P<kind>\*|[A-Za-z][A-Za-z0-9]*):(?P<pointer>(/[^/]*)+)$")

DEFAULT_BACKEND = "local"
MAX_PROJECT = 40
MAX_BRANCH = 40


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(str(word), sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def branch_problem(branch: str) -> str | None:
    """Why a branch name cannot be used, or None; a suggestion is included."""
    if DNS_LABEL.match(branch) and len(branch) <= MAX_BRANCH:
        return None
    suggestion = re.sub(r"[^a-z0-9-]+", "-", branch.lower()).strip("-")[:MAX_BRANCH].strip("-") or "dev"
    return (
        f"branch {branch!r} is not usable in resource names: use lowercase letters, digits and '-', "
        f"at most {MAX_BRANCH} characters (for example --branch {suggestion})"
    )


class _Ctx:
    """Collects problems with positions while the model is built."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []
        #: Strings whose template could not render; checks of their value would only repeat that.
        self.unrendered: set[PathT] = set()

    def error(self, path: PathT, message: str, hint: str | None = None, *, key: bool = False) -> None:
        if path in self.unrendered:
            return
        loc = self.source.locate_key(path) if key else self.source.locate(path)
        self.problems.append(Problem(loc, dotted(path), message, hint))

    def loc(self, path: PathT) -> Location:
        return self.source.locate_key(path)


# --------------------------------------------------------------------------- public entry point


def load_manifest(
    path: str | os.PathLike[str],
    *,
    cli_vars: Mapping[str, str] | None = None,
    var_files: Sequence[str | os.PathLike[str]] = (),
    branch: str = "prod",
    enable_schedules: bool = False,
    raw: bytes | None = None,
) -> m.Manifest:
    """Load, validate and render a manifest for one branch.

    Raises :class:`~planner.errors.ManifestError` listing every problem found
    (and nothing else: any other exception escaping is a bug).
    """
    with heap.paused():
        return _load(path, cli_vars, var_files, branch, enable_schedules, raw)


def _load(
    path: str | os.PathLike[str],
    cli_vars: Mapping[str, str] | None,
    var_files: Sequence[str | os.PathLike[str]],
    branch: str,
    enable_schedules: bool,
    raw: bytes | None,
) -> m.Manifest:
    display = _display(path)
    if raw is None:
        try:
            raw = read_limited(path)
        except FileNotFoundError:
            raise ManifestError(
                Problem(Location(display), "", "no such file"),
                hint="run flowplan where flows.yaml is, or pass --file PATH",
            ) from None
        except IsADirectoryError:
            raise ManifestError(Problem(Location(display), "", "this is a directory, not a manifest file")) from None
        except OSError as exc:
            raise ManifestError(Problem(Location(display), "", f"cannot read it: {exc.strerror}")) from None
    source = parse_yaml(raw, display)
    try:
        return _load_source(source, raw, display, cli_vars, var_files, branch, enable_schedules)
    finally:
        # The node graph (about 4 million objects at 10,000 flows) is only needed for positions while
        # loading; the loader's closures keep it in a reference cycle, so without this it waits for a
        # full collection instead of being freed by reference counting here.
        source.release()


def _load_source(
    source: Source,
    raw: bytes,
    display: str,
    cli_vars: Mapping[str, str] | None,
    var_files: Sequence[str | os.PathLike[str]],
    branch: str,
    enable_schedules: bool,
) -> m.Manifest:
    ctx = _Ctx(source)
    data = source.data
    if not isinstance(data, dict):
        what = "empty" if data is None else f"{_kind_of(data)}, not a mapping"
        ctx.error(
            (),
            f"the manifest is {what}",
            "a manifest is a mapping with at least version: 1, project: NAME and flows:; see docs/manifest.md",
        )
        raise ManifestError(ctx.problems)
    _schema_problems(ctx, data)
    problem = branch_problem(branch)
    if problem:
        ctx.problems.append(Problem(Location("--branch"), "", problem))
    variables, sensitive_vars, var_models = _resolve_vars(ctx, data, cli_vars or {}, var_files)
    rendered, sensitive_values = _render_all(ctx, data, variables, sensitive_vars, templated=may_render(raw))
    for flow in _dict(rendered.get("flows")).values():
        for step in _dict(_dict(flow).get("steps")).values():
            for env in _dict(_dict(step).get("env")).values():
                if isinstance(env, dict) and env.get("sensitive") is True and env.get("value") not in (None, ""):
                    sensitive_values.add(_scalar_text(env.get("value")))
    manifest = _Builder(ctx, rendered, branch, enable_schedules).build(
        path=display,
        digest=hashlib.sha256(raw).hexdigest(),
        vars_digest=_vars_digest(variables),
        var_models=var_models,
        sensitive_values=frozenset(sensitive_values),
    )
    if ctx.problems:
        raise ManifestError(_redacted(_unique(ctx.problems), sensitive_values))
    assert manifest is not None
    return manifest


def _redacted(problems: list[Problem], secrets: Iterable[str]) -> list[Problem]:
    """Problems with every sensitive value replaced by ``(sensitive)`` (a message may quote the bad value)."""
    ordered = sorted((s for s in secrets if s), key=len, reverse=True)
    if not ordered:
        return problems

    def clean(text: str | None) -> str | None:
        if text is None:
            return None
        for secret in ordered:
            text = text.replace(secret, "(sensitive)")
        return text

    return [
        dataclasses.replace(p, path=clean(p.path) or "", message=clean(p.message) or "", hint=clean(p.hint))
        for p in problems
    ]


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Location, str, str]] = set()
    result = []
    for p in problems:
        key = (p.location, p.path, p.message)
        if key not in seen:
            seen.add(key)
            result.append(p)
    return result


def _display(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    try:
        rel = os.path.relpath(text)
    except ValueError:  # pragma: no cover - other drive on Windows
        return text
    return rel if not rel.startswith("..") else text


def _vars_digest(variables: Mapping[str, Any]) -> str:
    text = json.dumps({k: variables[k] for k in sorted(variables)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- structure (JSON Schema)

_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def _kind_of(value: Any) -> str:
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


def _schema_problems(ctx: _Ctx, data: Any) -> None:
    for path, err in _schema_errors(data):
        validator = err.validator
        schema = err.schema if isinstance(err.schema, dict) else {}
        if validator in ("additionalProperties", "unevaluatedProperties") and isinstance(err.instance, dict):
            allowed = list(schema.get("properties", {}))
            for key in err.instance:
                if key in allowed:
                    continue
                hint = did_you_mean(key, allowed) or ("allowed: " + ", ".join(sorted(allowed)) if allowed else None)
                ctx.error((*path, key), f"unknown key {key!r}", hint, key=True)
        elif validator == "required" and isinstance(err.instance, dict):
            for key in list(err.validator_value):  # type: ignore[arg-type]
                if key not in err.instance:
                    loc = ctx.source.locate_key(path) if path else ctx.source.locate(())
                    ctx.problems.append(
                        Problem(loc, dotted((*path, key)), f"missing required key {key!r}", _REQUIRED_HINTS.get(key))
                    )
        elif validator == "pattern" and isinstance(err.instance, str) and "x-message" in schema:
            # propertyNames errors arrive with the mapping's path and the key as instance.
            ctx.error(
                (*path, err.instance),
                f"{err.instance!r}: {schema['x-message']}",
                _suggest_name(err.instance, schema),
                key=True,
            )
        elif "x-message" in schema:
            ctx.error(path, schema["x-message"])
        elif validator == "type":
            expected = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in expected if t != "null")
            hint = None
            if isinstance(err.instance, str) and needs_render(err.instance):
                hint = "templates render to strings and are allowed only where a string is expected"
            elif isinstance(err.instance, bool | int | float) and expected == ["string"]:
                hint = (
                    f'quote it: "{_scalar_text(err.instance)}"'
                    if not isinstance(err.instance, bool)
                    else ("YAML reads yes/no/on/off/true/false as a boolean; quote it")
                )
            ctx.error(path, f"expected {words}, got {_kind_of(err.instance)}", hint)
        elif validator == "enum":
            options = [str(o) for o in list(err.validator_value)]  # type: ignore[arg-type]
            hint = did_you_mean(str(err.instance), options) if isinstance(err.instance, str) else None
            hint = hint or schema.get("x-hint")
            ctx.error(path, f"must be one of {', '.join(options)} (got {err.instance!r})", hint)
        elif validator == "uniqueItems":
            ctx.error(path, "lists the same item twice")
        elif validator in ("minItems", "minLength", "minProperties"):
            ctx.error(path, "must not be empty")
        elif validator in ("minimum", "maximum"):
            bound = "at least" if validator == "minimum" else "at most"
            ctx.error(path, f"must be {bound} {err.validator_value} (got {err.instance})")
        else:
            ctx.error(path, err.message)


# --------------------------------------------------------------------------- vars and templates


def _resolve_vars(
    ctx: _Ctx, data: dict[str, Any], cli_vars: Mapping[str, str], var_files: Sequence[str | os.PathLike[str]]
) -> tuple[dict[str, Any], set[str], dict[str, m.Var]]:
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
    for file in var_files:
        display = _display(file)
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
            continue
        except ManifestError as exc:
            ctx.problems.extend(exc.problems)
            continue
        except OSError as exc:
            ctx.problems.append(Problem(Location(display), "", f"cannot read the var file: {exc.strerror or exc}"))
            continue
        file_vars = var_source.data
        if file_vars is None:
            continue
        if not isinstance(file_vars, dict):
            ctx.problems.append(Problem(var_source.locate(()), "", "a var file is a mapping of NAME: value"))
            continue
        for name, value in file_vars.items():
            where = var_source.locate_key((name,))
            if name not in declared:
                hint = did_you_mean(name, declared) or "declare it under vars: in the manifest"
                ctx.problems.append(Problem(where, str(name), f"unknown var {name!r}", hint))
            elif not isinstance(value, str | int | float | bool):
                ctx.problems.append(Problem(where, str(name), "a var's value is a string, number or boolean"))
            else:
                values[name] = value
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
            f"pass --var {name}=VALUE or a --var-file",
        )
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


def _render_all(
    ctx: _Ctx, data: dict[str, Any], variables: Mapping[str, Any], sensitive_vars: set[str], *, templated: bool = True
) -> tuple[dict[str, Any], set[str]]:
    """``data`` with every template rendered; ``templated=False`` (the file has no template syntax) skips the walk."""
    sensitive_values: set[str] = {str(variables[n]) for n in sensitive_vars if n in variables and variables[n] != ""}
    if not templated:
        return dict(data), sensitive_values

    unset = {name for name in _dict(data.get("vars")) if name not in variables}

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


# --------------------------------------------------------------------------- meaning


def _str(value: Any, default: str | None = None) -> str | None:
    return value if isinstance(value, str) else default


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


_NO_RESOURCES = m.Resources()


class _Builder:
    def __init__(self, ctx: _Ctx, data: dict[str, Any], branch: str, enable_schedules: bool) -> None:
        self.ctx = ctx
        self.data = data
        self.branch = branch
        self.enable_schedules = enable_schedules
        self.error = ctx.error

    def build(self, **extra: Any) -> m.Manifest | None:
        project = self._project()
        backends = self._backends()
        schedules = {
            name: s
            for name, spec in _dict(self.data.get("schedules")).items()
            if (s := self._schedule(_dict(spec), ("schedules", name), name)) is not None
        }
        events = {name: self._event(name, _dict(spec)) for name, spec in _dict(self.data.get("events")).items()}
        sinks = {name: self._sink(name, _dict(spec), project) for name, spec in _dict(self.data.get("sinks")).items()}
        flows: dict[str, m.Flow] = {}
        for name, spec in _dict(self.data.get("flows")).items():
            flow = self._flow(name, _dict(spec), backends, schedules, events, sinks)
            if flow is not None:
                flows[name] = flow
        self._check_flow_names(flows)
        self._check_triggers(flows, events)
        moved = self._moved(flows)
        var_models = extra.pop("var_models")
        return m.Manifest(
            project=project,
            branch=self.branch,
            backends=backends,
            flows=flows,
            schedules=schedules,
            events=events,
            sinks=sinks,
            vars=var_models,
            moved=moved,
            enable_schedules=self.enable_schedules,
            description=_str(self.data.get("description")),
            **extra,
        )

    # -- project, backends -------------------------------------------------------------

    def _project(self) -> str:
        project = _str(self.data.get("project"), "")
        assert project is not None
        if project and (not DNS_LABEL.match(project) or len(project) > MAX_PROJECT):
            self.error(
                ("project",),
                f"project {project!r} must be lowercase letters, digits and '-', at most {MAX_PROJECT} characters",
                "it becomes part of every resource name",
            )
        return project

    def _backends(self) -> dict[str, m.Backend]:
        raw = self.data.get("backends")
        if raw is None:
            return {
                DEFAULT_BACKEND: m.Backend(
                    DEFAULT_BACKEND,
                    "files",
                    {"path": "deploy"},
                    argo=m.ArgoSettings(namespace="argo", sensor_namespace="argo"),
                )
            }
        result: dict[str, m.Backend] = {}
        for name, spec in _dict(raw).items():
            spec = _dict(spec)
            kind = spec.get("type")
            if kind not in ("files", "argo", "stepfunctions"):
                continue
            path: PathT = ("backends", name)
            argo = self._argo(_dict(spec.get("argo")), (*path, "argo")) if kind in ("files", "argo") else None
            sfn = None
            if kind == "stepfunctions" or (kind == "files" and spec.get("render") == "stepfunctions"):
                if "stepfunctions" not in spec and kind == "files":
                    self.error(path, "render: stepfunctions needs a stepfunctions: settings block", key=True)
                sfn = self._stepfunctions(_dict(spec.get("stepfunctions")), (*path, "stepfunctions"))
            if kind == "files":
                target = _str(spec.get("path"), "deploy") or "deploy"
                if any(ord(c) < 32 or ord(c) == 127 for c in target):
                    self.error(
                        (*path, "path"),
                        f"the path {target!r} contains a control character",
                        "use a relative directory name of printable characters",
                    )
                elif target.startswith("~"):
                    self.error(
                        (*path, "path"),
                        f"the path {target!r} starts with '~', which flowplan does not expand (it would be a folder "
                        "named '~' in the manifest's directory)",
                        "use a path relative to the manifest's directory, for example deploy",
                    )
                elif Path(target).is_absolute() or ".." in Path(target).parts:
                    self.error(
                        (*path, "path"),
                        "the files backend writes below the manifest's directory",
                        "use a relative path without '..'",
                    )
            settings = {k: v for k, v in spec.items() if k not in ("argo", "stepfunctions", "ignore_changes")}
            result[name] = m.Backend(
                name,
                kind,
                settings,
                argo=argo,
                stepfunctions=sfn,
                ignore_changes=self._ignores(spec.get("ignore_changes"), (*path, "ignore_changes")),
                loc=self.ctx.loc(path),
            )
        if not result and isinstance(raw, dict) and not raw:
            self.error(("backends",), "no backends declared; remove the key to use the default files backend")
        return result

    def _argo(self, spec: dict[str, Any], path: PathT) -> m.ArgoSettings:
        namespace = _str(spec.get("namespace"), "argo") or "argo"
        for key in ("namespace", "sensor_namespace"):
            value = spec.get(key)
            if isinstance(value, str) and (not DNS_LABEL.match(value) or len(value) > 63):
                self.error((*path, key), f"{value!r} is not a valid Kubernetes namespace name")
        for key in ("service_account", "event_bus", "event_source", "event_name"):
            value = spec.get(key)
            if isinstance(value, str) and not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", value):
                self.error((*path, key), f"{value!r} is not a valid Kubernetes name")
        labels = {str(k): str(v) for k, v in _dict(spec.get("labels")).items()}
        self._check_labels(labels, (*path, "labels"))
        return m.ArgoSettings(
            namespace=namespace,
            sensor_namespace=_str(spec.get("sensor_namespace"), namespace) or namespace,
            service_account=_str(spec.get("service_account")),
            event_bus=_str(spec.get("event_bus"), "default") or "default",
            event_source=_str(spec.get("event_source"), "flowplan-events") or "flowplan-events",
            event_name=_str(spec.get("event_name"), "flowplan") or "flowplan",
            schedule_field="schedule" if spec.get("schedule_field") == "schedule" else "schedules",
            image_pull_secrets=tuple(s for s in _list(spec.get("image_pull_secrets")) if isinstance(s, str)),
            node_selector={str(k): str(v) for k, v in _dict(spec.get("node_selector")).items()},
            labels=labels,
            naming="metaflow" if spec.get("naming") == "metaflow" else "flowplan",
        )

    def _stepfunctions(self, spec: dict[str, Any], path: PathT) -> m.StepFunctionsSettings:
        region = _str(spec.get("region"), "") or ""
        if not region:
            self.error(path, "missing required key 'region'", key=True)
        elif not REGION.match(region):
            self.error((*path, "region"), f"{region!r} is not an AWS region name", "for example eu-west-1")
        for key in ("execution_role_arn", "events_role_arn", "job_execution_role_arn"):
            value = spec.get(key)
            if isinstance(value, str) and not ARN.match(value):
                self.error((*path, key), f"{value!r} is not an IAM role ARN", "arn:aws:iam::123456789012:role/NAME")
        if not isinstance(spec.get("execution_role_arn"), str):
            self.error(path, "missing required key 'execution_role_arn'", key=True)
        if not isinstance(spec.get("job_queue"), str):
            self.error(path, "missing required key 'job_queue'", "the AWS Batch job queue the steps run on", key=True)
        account = _str(spec.get("account_id"))
        if account is None:
            match = re.match(r"^arn:aws[a-z-]*:iam::(\d{12}):", _str(spec.get("execution_role_arn"), "") or "")
            account = match.group(1) if match else "000000000000"
        elif not re.match(r"^\d{12}$", account):
            self.error((*path, "account_id"), f"{account!r} is not a 12-digit AWS account id")
        prefix = _str(spec.get("name_prefix"), "") or ""
        if prefix and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$", prefix):
            self.error((*path, "name_prefix"), "name_prefix is at most 20 letters, digits, '-' or '_'")
        if spec.get("naming") == "metaflow":
            self.error(
                (*path, "naming"),
                "naming: metaflow is not supported on Step Functions yet",
                "Metaflow schedules state machines with EventBridge rules where flowplan uses Scheduler, so adopting "
                "in place would leave two schedules; deploy Metaflow flows as `metaflow:` sources, or import the "
                "state machine with `flowplan import --from`",
            )
        return m.StepFunctionsSettings(
            region=region,
            account_id=account,
            execution_role_arn=_str(spec.get("execution_role_arn")),
            events_role_arn=_str(spec.get("events_role_arn")),
            job_execution_role_arn=_str(spec.get("job_execution_role_arn")),
            job_queue=_str(spec.get("job_queue")),
            name_prefix=prefix,
            event_bus=_str(spec.get("event_bus"), "default") or "default",
            inventory_table=_str(spec.get("inventory_table"), "flowplan-state") or "flowplan-state",
            naming="metaflow" if spec.get("naming") == "metaflow" else "flowplan",
        )

    def _ignores(self, raw: Any, path: PathT) -> tuple[m.IgnoreRule, ...]:
        rules = []
        for i, item in enumerate(_list(raw)):
            if not isinstance(item, str):
                continue
            match = POINTER.match(item)
            if not match:
                self.error(
                    (*path, i),
                    f"{item!r} is not KIND:/json/pointer",
                    "for example CronWorkflow:/spec/suspend",
                )
                continue
            rules.append(m.IgnoreRule(match.group("kind"), match.group("pointer"), self.ctx.loc((*path, i))))
        return tuple(rules)

    def _check_labels(self, labels: Mapping[str, str], path: PathT) -> None:
        for key, value in labels.items():
            if not LABEL_KEY.match(key) or len(key.split("/")[-1]) > 63:
                self.error((*path, key), f"{key!r} is not a valid label key", key=True)
            if not LABEL_VALUE.match(value) or len(value) > 63:
                self.error(
                    (*path, key),
                    f"{value!r} is not a valid label value",
                    "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
                )

    # -- schedules, events, sinks ------------------------------------------------------

    def _schedule(self, spec: dict[str, Any], path: PathT, name: str | None) -> m.Schedule | None:
        cron = spec.get("cron")
        every = spec.get("every")
        if cron is not None and every is not None:
            self.error(path, "give either cron or every, not both")
            return None
        if cron is None and every is None:
            self.error(path, "a schedule needs cron (for example '0 2 * * *') or every (hourly, daily, weekly)")
            return None
        ok = True
        if isinstance(every, str):
            try:
                cron = cronlib.every_to_cron(every)
            except FlowplanError:
                return None  # the schema reported the bad value
        if not isinstance(cron, str):
            return None
        try:
            cronlib.parse_cron(cron)
        except FlowplanError as exc:
            self.error((*path, "cron"), exc.message, exc.hint)
            ok = False
        timezone = _str(spec.get("timezone"), "UTC") or "UTC"
        if spec.get("timezone") == "":
            # most often a var that rendered empty: silently meaning UTC would move the schedule
            self.error(
                (*path, "timezone"),
                "the time zone is empty",
                "leave timezone out for UTC, or check the var that fills it",
            )
            ok = False
        try:
            cronlib.validate_timezone(timezone)
        except FlowplanError as exc:
            self.error((*path, "timezone"), exc.message, exc.hint)
            ok = False
        deadline = self._duration(spec.get("starting_deadline"), (*path, "starting_deadline"))
        if not ok:
            return None
        return m.Schedule(
            name=name,
            cron=cron,
            timezone=timezone,
            concurrency=spec.get("concurrency", "allow")
            if spec.get("concurrency") in ("allow", "forbid", "replace")
            else "allow",
            suspend=spec.get("suspend") is True,
            starting_deadline=deadline,
            every=every if isinstance(every, str) else None,
            description=_str(spec.get("description")),
            loc=self.ctx.loc(path),
        )

    def _duration(self, value: Any, path: PathT) -> int | None:
        if value is None or isinstance(value, bool) or not isinstance(value, str | int):
            return None
        try:
            return duration_seconds(value)
        except UnitError as exc:
            self.error(path, str(exc))
            return None

    def _event(self, name: str, spec: dict[str, Any]) -> m.Event:
        path: PathT = ("events", name)
        filters = []
        for i, item in enumerate(_list(spec.get("filters"))):
            item = _dict(item)
            op = item.get("op", "eq")
            fpath = _str(item.get("path"), "") or ""
            if fpath and not re.match(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", fpath):
                self.error(
                    (*path, "filters", i, "path"),
                    f"{fpath!r} is not a dotted payload path",
                    "for example bucket.name",
                )
            if op != "exists" and "value" not in item:
                self.error((*path, "filters", i), f"filter op {op!r} needs a value")
            if op == "in" and not isinstance(item.get("value"), list):
                self.error((*path, "filters", i, "value"), "op 'in' needs a list of values")
            if op in ("gt", "gte", "lt", "lte") and not isinstance(item.get("value"), int | float):
                self.error((*path, "filters", i, "value"), f"op {op!r} compares numbers; give a number")
            filters.append(m.EventFilter(fpath, str(op), item.get("value"), self.ctx.loc((*path, "filters", i))))
        params = {str(k): str(v) for k, v in _dict(spec.get("parameters")).items()}
        return m.Event(
            name,
            _str(spec.get("source"), "") or "",
            _str(spec.get("type"), "") or "",
            tuple(filters),
            params,
            _str(spec.get("description")),
            self.ctx.loc(path),
        )

    def _sink(self, name: str, spec: dict[str, Any], project: str) -> m.Sink:
        path: PathT = ("sinks", name)
        kind = spec.get("type") if spec.get("type") in ("warehouse", "cache", "model") else "warehouse"
        prod = self.branch == "prod"
        settings: dict[str, Any] = {}
        uri = _str(spec.get("uri"))
        if uri is not None:
            if re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", uri):
                self.error(
                    (*path, "uri"),
                    "the uri holds a password; secrets are never literal values",
                    "move it to credentials: {secret: NAME, key: KEY} or {arn: ...}",
                )
            settings["uri"] = uri
        if kind == "warehouse" and isinstance(spec.get("table"), str):
            # '-' is not allowed in unquoted SQL identifiers: feature-x → orders__feature_x.
            settings["table"] = spec["table"] if prod else f"{spec['table']}__{self.branch.replace('-', '_')}"
        if kind == "cache" and isinstance(spec.get("key_prefix"), str):
            settings["key_prefix"] = f"{spec['key_prefix']}{project}/{self.branch}/"
            ttl = self._duration(spec.get("ttl"), (*path, "ttl"))
            if ttl is not None:
                settings["ttl"] = ttl
        if kind == "model":
            if isinstance(spec.get("platform"), str):
                settings["platform"] = spec["platform"]
            if isinstance(spec.get("endpoint"), str):
                settings["endpoint"] = spec["endpoint"] if prod else f"{spec['endpoint']}-{self.branch}"
        credentials = None
        creds = spec.get("credentials")
        if isinstance(creds, dict):
            if ("secret" in creds) != ("key" in creds):
                self.error((*path, "credentials"), "a Kubernetes secret reference needs both secret and key")
            arn = _str(creds.get("arn"))
            if (arn is not None and not arn.startswith("arn:aws")) or (arn and ":secretsmanager:" not in arn):
                self.error((*path, "credentials", "arn"), f"{arn!r} is not a Secrets Manager secret ARN")
            secret = _str(creds.get("secret"))
            if secret is not None and not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", secret):
                self.error((*path, "credentials", "secret"), f"{secret!r} is not a valid Kubernetes Secret name")
            credentials = m.SecretRef(secret, _str(creds.get("key")), arn)
        return m.Sink(
            name,
            kind,  # type: ignore[arg-type]
            settings,
            credentials,
            _str(spec.get("description")),
            self.ctx.loc(path),
        )

    # -- flows -------------------------------------------------------------------------

    def _flow(
        self,
        name: str,
        spec: dict[str, Any],
        backends: Mapping[str, m.Backend],
        schedules: Mapping[str, m.Schedule],
        events: Mapping[str, m.Event],
        sinks: Mapping[str, m.Sink],
    ) -> m.Flow | None:
        path: PathT = ("flows", name)
        backend = self._flow_backend(spec, path, backends)
        parameters = self._parameters(_dict(spec.get("parameters")), (*path, "parameters"))
        image = _str(spec.get("image"))
        metaflow = self._metaflow(spec, path, backend, backends)
        steps = {} if metaflow else self._steps(_dict(spec.get("steps")), (*path, "steps"), image, parameters)
        schedule = None
        raw_schedule = spec.get("schedule")
        if isinstance(raw_schedule, str):
            schedule = schedules.get(raw_schedule)
            if schedule is None and raw_schedule not in _dict(self.data.get("schedules")):
                self.error(
                    (*path, "schedule"),
                    f"unknown schedule {raw_schedule!r}",
                    did_you_mean(raw_schedule, _dict(self.data.get("schedules"))) or "declare it under schedules:",
                )
        elif isinstance(raw_schedule, dict):
            schedule = self._schedule(raw_schedule, (*path, "schedule"), None)
        triggers = []
        for i, item in enumerate(_list(spec.get("triggers"))):
            item = _dict(item)
            tpath: PathT = (*path, "triggers", i)
            if isinstance(item.get("event"), str):
                event = item["event"]
                if event not in events:
                    self.error(
                        (*tpath, "event"),
                        f"unknown event {event!r}",
                        did_you_mean(event, events) or "declare it under events:",
                    )
                else:
                    for param in events[event].parameters:
                        if param not in parameters and "metaflow" not in spec:  # a FlowSpec's: checked at compile
                            self.error(
                                (*tpath, "event"),
                                f"event {event!r} maps a value to parameter {param!r}, which this flow lacks",
                                f"declare {param!r} under parameters",
                            )
                triggers.append(m.Trigger(event=event, loc=self.ctx.loc(tpath)))
            elif isinstance(item.get("after"), str):
                declared_flows = _dict(self.data.get("flows"))
                if item["after"] not in declared_flows:
                    self.error(
                        (*tpath, "after"),
                        f"unknown flow {item['after']!r}",
                        did_you_mean(item["after"], declared_flows) or "flows: " + ", ".join(declared_flows),
                    )
                triggers.append(m.Trigger(after=item["after"], loc=self.ctx.loc(tpath)))
        keys = [t.key for t in triggers]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                self.error((*path, "triggers", i), f"trigger {key} is listed twice")
        flow_sinks = []
        for i, sink in enumerate(_list(spec.get("sinks"))):
            if not isinstance(sink, str):
                continue
            if sink not in sinks:
                self.error(
                    (*path, "sinks", i),
                    f"unknown sink {sink!r}",
                    did_you_mean(sink, sinks) or "declare it under sinks:",
                )
            flow_sinks.append(sink)
        tags = {str(k): v for k, v in _dict(spec.get("tags")).items() if isinstance(v, str)}
        self._check_labels(tags, (*path, "tags"))
        if backend is None or steps is None:
            return None
        return m.Flow(
            name=name,
            backend=backend,
            image=image,
            steps=steps,
            parameters=parameters,
            schedule=schedule,
            triggers=tuple(triggers),
            sinks=tuple(flow_sinks),
            tags=tags,
            protect=spec.get("protect") is True,
            ignore_changes=self._ignores(spec.get("ignore_changes"), (*path, "ignore_changes")),
            description=_str(spec.get("description")),
            source="metaflow" if metaflow else "inline",
            metaflow=metaflow,
            loc=self.ctx.loc(path),
        )

    def _metaflow(
        self, spec: dict[str, Any], path: PathT, backend: str | None, backends: Mapping[str, m.Backend]
    ) -> m.MetaflowSource | None:
        """``flows.NAME.metaflow``: a FlowSpec file instead of steps (the file is read at compile)."""
        raw = spec.get("metaflow")
        if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
            return None
        for key in ("steps", "parameters", "image"):
            if key in spec:
                self.error(
                    (*path, key),
                    f"a Metaflow flow has no {key}: they come from its FlowSpec"
                    + (" and the backend's metaflow: settings" if key == "image" else ""),
                    "remove the key"
                    if key != "image"
                    else "set metaflow.env: {METAFLOW_KUBERNETES_CONTAINER_IMAGE: IMAGE}",
                    key=True,
                )
        if backend is not None and backend in backends and "metaflow" not in backends[backend].settings:
            self.error(
                (*path, "metaflow"),
                f"backend {backend!r} has no metaflow: settings block",
                "add metaflow: {datastore_root: s3://BUCKET/PREFIX, image: IMAGE} to the backend (docs/metaflow.md)",
                key=True,
            )
        return m.MetaflowSource(
            file=raw["file"],
            flow_class=_str(raw.get("flow_class")),
            package_suffixes=tuple(x for x in _list(raw.get("package_suffixes")) if isinstance(x, str)),
            env={str(k): _scalar_text(v) for k, v in _dict(raw.get("env")).items()},
            loc=self.ctx.loc((*path, "metaflow")),
        )

    def _flow_backend(self, spec: dict[str, Any], path: PathT, backends: Mapping[str, m.Backend]) -> str | None:
        name = spec.get("backend")
        if isinstance(name, str):
            if name not in backends:
                declared = _dict(self.data.get("backends"))
                if name not in declared:
                    self.error(
                        (*path, "backend"),
                        f"unknown backend {name!r}",
                        did_you_mean(name, declared) or "declare it under backends:",
                    )
                return None
            return name
        if name is not None:
            return None
        if len(backends) == 1:
            return next(iter(backends))
        if backends:
            self.error(
                path,
                "no backend: given, and the manifest declares several backends",
                "add backend: with one of " + ", ".join(sorted(backends)),
                key=True,
            )
        return None

    def _parameters(self, raw: dict[str, Any], path: PathT) -> dict[str, m.Parameter]:
        result = {}
        kinds = {str: "string", bool: "bool", int: "int", float: "float", list: "list"}
        env_names: dict[str, str] = {}
        for name in raw:
            env = f"FLOWPLAN_PARAM_{str(name).upper()}"
            if env in env_names:
                self.error(
                    (*path, name),
                    f"parameters {env_names[env]!r} and {name!r} both reach steps as ${env}",
                    "rename one of them",
                    key=True,
                )
            env_names[env] = str(name)
        for name, spec in raw.items():
            if isinstance(spec, dict):
                if "default" not in spec:
                    continue  # the schema reported it
                default = spec["default"]
                declared = spec.get("type")
            else:
                default, declared = spec, None
            inferred = kinds.get(type(default))
            if inferred is None:
                self.error((*path, name), "a parameter's default is a string, number, boolean or list")
                continue
            if declared not in (None, "string", "int", "float", "bool", "list"):
                declared = None  # the schema reported the unknown type
            kind = declared or inferred
            if declared is not None and not _fits(default, kind):
                self.error((*path, name, "default"), f"default {default!r} is not of type {kind}")
                continue
            if kind == "list" and not all(isinstance(v, str | int | float | bool) for v in default):
                self.error((*path, name, "default"), "a list parameter holds strings, numbers or booleans")
            result[name] = m.Parameter(
                name,
                default,
                kind,  # type: ignore[arg-type]
                _str(_dict(spec).get("description")),
                self.ctx.loc((*path, name)),
            )
        return result

    def _steps(
        self, raw: dict[str, Any], path: PathT, flow_image: str | None, parameters: Mapping[str, m.Parameter]
    ) -> dict[str, m.Step] | None:
        steps: dict[str, m.Step] = {}
        edges: dict[str, list[str]] = {}
        ok = True  # every step could be built
        edges_ok = True  # every next: names another step, so the graph rules can be checked
        for name, spec in raw.items():
            spec = _dict(spec)
            spath: PathT = (*path, name)
            nxt_raw = spec.get("next")
            nxt = [nxt_raw] if isinstance(nxt_raw, str) else [n for n in _list(nxt_raw) if isinstance(n, str)]
            for i, target in enumerate(nxt):
                where: PathT = (*spath, "next") if isinstance(nxt_raw, str) else (*spath, "next", i)
                if target not in raw:
                    self.error(
                        where,
                        f"unknown step {target!r}",
                        did_you_mean(target, raw) or "steps: " + ", ".join(raw),
                    )
                    edges_ok = False
                elif target == name:
                    self.error(where, f"step {name!r} leads to itself")
                    edges_ok = False
            if len(set(nxt)) != len(nxt):
                self.error((*spath, "next"), "lists the same step twice")
            edges[name] = [t for t in nxt if t in raw and t != name]
            image = _str(spec.get("image")) or flow_image
            if image is None:
                self.error(spath, "no image: set image on the step or on the flow", key=True)
                ok = False
            command = spec.get("command")
            if isinstance(command, str):
                cmd: tuple[str, ...] = (command,)
            elif isinstance(command, list) and command and all(isinstance(c, str) for c in command):
                cmd = tuple(command)
            else:
                ok = False
                continue
            raw_resources = spec.get("resources")
            resources = self._resources(raw_resources, (*spath, "resources")) if raw_resources else _NO_RESOURCES
            env = {}
            for key, value in _dict(spec.get("env")).items():
                if isinstance(value, dict):
                    env[key] = m.EnvValue(_scalar_text(value.get("value")), value.get("sensitive") is True)
                elif isinstance(value, str | int | float | bool):
                    env[key] = m.EnvValue(_scalar_text(value))
                if key.startswith("FLOWPLAN_"):
                    self.error(
                        (*spath, "env", key),
                        "FLOWPLAN_* variables are set by flowplan",
                        "parameters arrive as FLOWPLAN_PARAM_<NAME> by themselves; rename this variable",
                        key=True,
                    )
            foreach = self._foreach(spec.get("foreach"), (*spath, "foreach"), parameters)
            retries = spec.get("retries", 0)
            steps[name] = m.Step(
                name=name,
                command=cmd,
                image=image or "",
                resources=resources,
                retries=retries if isinstance(retries, int) and not isinstance(retries, bool) else 0,
                timeout=self._duration(spec.get("timeout"), (*spath, "timeout")),
                env=env,
                next=tuple(nxt),
                foreach=foreach,
                shell=isinstance(command, str),
                description=_str(spec.get("description")),
                loc=self.ctx.loc(spath),
            )
        if edges_ok:
            for problem in find_graph_problems(edges):
                if problem.step is None:
                    self.error(path, problem.message)
                elif problem.at_next:
                    self.error((*path, problem.step, "next"), problem.message)
                else:
                    self.error((*path, problem.step), problem.message, key=True)
                ok = False
        names: dict[str, str] = {}
        for name in raw:
            physical = name.lower().replace("_", "-")
            if physical in names:
                self.error(
                    (*path, name),
                    f"steps {names[physical]!r} and {name!r} get the same name once made Kubernetes-safe",
                    "rename one of them",
                    key=True,
                )
                ok = False
            names[physical] = name
        return steps if ok and edges_ok and steps else None

    def _resources(self, raw: Any, path: PathT) -> m.Resources:
        spec = _dict(raw)
        cpu = spec.get("cpu")
        memory = spec.get("memory")
        millis = mem = None
        if isinstance(cpu, str | int | float) and not isinstance(cpu, bool):
            try:
                millis = cpu_millis(cpu)
            except UnitError as exc:
                self.error((*path, "cpu"), str(exc))
        if isinstance(memory, str):
            try:
                mem = memory_bytes(memory)
            except UnitError as exc:
                self.error((*path, "memory"), str(exc))
        gpu = spec.get("gpu", 0)
        return m.Resources(
            cpu=str(cpu) if cpu is not None and millis is not None else None,
            memory=memory if mem is not None else None,
            gpu=gpu if isinstance(gpu, int) and not isinstance(gpu, bool) else 0,
            cpu_millis=millis,
            memory_bytes=mem,
        )

    def _foreach(self, raw: Any, path: PathT, parameters: Mapping[str, m.Parameter]) -> m.Foreach | None:
        if isinstance(raw, list):
            if not raw:
                self.error(path, "foreach over an empty list never runs the step")
                return None
            if not all(isinstance(v, str | int | float | bool) for v in raw):
                self.error(path, "foreach items are strings, numbers or booleans")
                return None
            return m.Foreach(items=tuple(raw))
        if isinstance(raw, dict) and isinstance(raw.get("parameter"), str):
            name = raw["parameter"]
            param = parameters.get(name)
            if param is None:
                self.error(
                    (*path, "parameter"),
                    f"unknown parameter {name!r}",
                    did_you_mean(name, parameters) or "declare it under the flow's parameters",
                )
                return None
            if param.type != "list":
                self.error((*path, "parameter"), f"parameter {name!r} is a {param.type}; foreach needs a list")
                return None
            return m.Foreach(parameter=name)
        return None

    # -- cross-flow checks -------------------------------------------------------------

    def _check_flow_names(self, flows: Mapping[str, m.Flow]) -> None:
        seen: dict[str, str] = {}
        for name in _dict(self.data.get("flows")):
            physical = name.lower().replace("_", "-")
            if physical in seen:
                self.error(
                    ("flows", name),
                    f"flows {seen[physical]!r} and {name!r} get the same name once made "
                    "Kubernetes-safe (lowercase, '_' as '-')",
                    "rename one of them",
                    key=True,
                )
            seen[physical] = name

    def _check_triggers(self, flows: Mapping[str, m.Flow], events: Mapping[str, m.Event]) -> None:
        declared = _dict(self.data.get("flows"))
        graph: dict[str, list[str]] = {}
        for flow in flows.values():
            for i, trigger in enumerate(flow.triggers):
                if trigger.after is None:
                    continue
                where: PathT = ("flows", flow.name, "triggers", i, "after")
                upstream = flows.get(trigger.after)
                if trigger.after == flow.name:
                    self.error(where, f"flow {flow.name!r} cannot run after itself")
                elif trigger.after not in declared:
                    continue  # reported with the flow
                elif upstream is not None and upstream.backend != flow.backend:
                    self.error(
                        where,
                        f"flow {trigger.after!r} runs on backend {upstream.backend!r}, this one on "
                        f"{flow.backend!r}; after: works within one backend",
                        "use an event trigger to cross backends",
                    )
                else:
                    graph.setdefault(trigger.after, []).append(flow.name)
        cycle = _find_cycle(graph)
        if cycle:
            first = cycle[0]
            idx = next(i for i, t in enumerate(flows[cycle[1]].triggers) if t.after == first)
            self.error(
                ("flows", cycle[1], "triggers", idx, "after"),
                "after: triggers form a cycle: " + " -> ".join([*cycle, cycle[0]]),
                "each flow would start the next forever",
            )

    def _moved(self, flows: Mapping[str, m.Flow]) -> tuple[m.Moved, ...]:
        result = []
        declared = _dict(self.data.get("flows"))
        for i, item in enumerate(_list(self.data.get("moved"))):
            item = _dict(item)
            source, target = item.get("from"), item.get("to")
            if not isinstance(source, str) or not isinstance(target, str):
                continue
            kind = item.get("kind", "flow")
            if kind in ("project", "branch"):
                if not DNS_LABEL.match(source) or len(source) > MAX_PROJECT:
                    self.error(("moved", i, "from"), f"{source!r} is not a valid {kind} name")
                if kind == "project" and target != self.data.get("project"):
                    self.error(
                        ("moved", i, "to"), f"a project move must end in this project ({self.data.get('project')!r})"
                    )
                result.append(m.Moved(source, target, self.ctx.loc(("moved", i)), kind))
                continue
            if target not in declared:
                self.error(("moved", i, "to"), f"unknown flow {target!r}", did_you_mean(target, declared))
            if source in declared:
                self.error(("moved", i, "from"), f"flow {source!r} is still declared; a move needs the old name gone")
            result.append(m.Moved(source, target, self.ctx.loc(("moved", i))))
        return tuple(result)


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str]:
    """A cycle in ``{upstream: [downstream]}`` as a list of names, or ``[]`` (deterministic: sorted).

    The step graph's finder rather than networkx: importing networkx took
    about a second of every first load.
    """
    return find_cycle({src: sorted(graph[src]) for src in sorted(graph)})


def _fits(value: Any, kind: str) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "list": lambda v: isinstance(v, list),
    }
    return checks[kind](value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
