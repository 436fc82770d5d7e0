"""``backends:`` → :class:`~planner.manifest.model.Backend`, and the ``ignore_changes`` rules backends and flows share.

Without a ``backends:`` block a manifest deploys to one files backend named
:data:`DEFAULT_BACKEND`, rendering Argo documents into ``deploy/``: a new
project plans and applies before it has a cluster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from planner.manifest import model as m
from planner.manifest.backend_settings import argo_settings, stepfunctions_settings
from planner.manifest.context import Context, as_dict, as_list, as_str
from planner.manifest.yamlsource import PathT

DEFAULT_BACKEND = "local"
#: Segments are printable ASCII: the keys of Kubernetes and AWS bodies are, and a stray space,
#: control character or lookalike letter would make a rule that silently matches nothing.
POINTER = re.compile(r"^(?P<kind>\*|[A-Za-z][A-Za-z0-9]*):(?P<pointer>(/[!-.0-~]*)+)$")


def build_backends(ctx: Context, raw: Any) -> dict[str, m.Backend]:
    """The declared backends, each with the settings blocks of what it renders (Argo, Step Functions or both)."""
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
    for name, spec in as_dict(raw).items():
        spec = as_dict(spec)
        kind = spec.get("type")
        if kind not in ("files", "argo", "stepfunctions"):
            continue  # the structural check reported it
        path: PathT = ("backends", name)
        argo = argo_settings(ctx, as_dict(spec.get("argo")), (*path, "argo")) if kind in ("files", "argo") else None
        sfn = None
        if kind == "stepfunctions" or (kind == "files" and spec.get("render") == "stepfunctions"):
            if "stepfunctions" not in spec and kind == "files":
                ctx.error(path, "render: stepfunctions needs a stepfunctions: settings block", key=True)
            sfn = stepfunctions_settings(ctx, as_dict(spec.get("stepfunctions")), (*path, "stepfunctions"))
        if kind == "files":
            _check_files_path(ctx, as_str(spec.get("path"), "deploy") or "deploy", (*path, "path"))
        settings = {k: v for k, v in spec.items() if k not in ("argo", "stepfunctions", "ignore_changes")}
        result[name] = m.Backend(
            name,
            kind,
            settings,
            argo=argo,
            stepfunctions=sfn,
            ignore_changes=ignore_rules(ctx, spec.get("ignore_changes"), (*path, "ignore_changes")),
            loc=ctx.loc(path),
        )
    if not result and isinstance(raw, dict) and not raw:
        ctx.error(("backends",), "no backends declared; remove the key to use the default files backend")
    return result


def _check_files_path(ctx: Context, target: str, path: PathT) -> None:
    """The files backend writes only below the manifest's directory, to a path a person can read."""
    if any(ord(c) < 32 or ord(c) == 127 for c in target):
        ctx.error(
            path,
            f"the path {target!r} contains a control character",
            "use a relative directory name of printable characters",
        )
    elif target.startswith("~"):
        ctx.error(
            path,
            f"the path {target!r} starts with '~', which flowplan does not expand (it would be a folder "
            "named '~' in the manifest's directory)",
            "use a path relative to the manifest's directory, for example deploy",
        )
    elif Path(target).is_absolute() or ".." in Path(target).parts:
        ctx.error(
            path,
            "the files backend writes below the manifest's directory",
            "use a relative path without '..'",
        )


def ignore_rules(ctx: Context, raw: Any, path: PathT) -> tuple[m.IgnoreRule, ...]:
    """``ignore_changes``: ``KIND:/json/pointer`` entries naming fields the plan leaves to others."""
    rules = []
    for i, item in enumerate(as_list(raw)):
        if not isinstance(item, str):
            continue
        match = POINTER.fullmatch(item)
        if not match:
            ctx.error(
                (*path, i),
                f"{item!r} is not KIND:/json/pointer",
                "for example CronWorkflow:/spec/suspend",
            )
            continue
        rules.append(m.IgnoreRule(match.group("kind"), match.group("pointer"), ctx.loc((*path, i))))
    return tuple(rules)
