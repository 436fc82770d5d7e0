"""``sinks:`` → :class:`~planner.manifest.model.Sink`: where flows write, scoped to the branch.

Outside ``prod`` a sink's table, key prefix or endpoint gets the branch's name,
so a feature branch never writes into production data.
"""

from __future__ import annotations

import re
from typing import Any

from planner.manifest import model as m
from planner.manifest.build_schedules import duration
from planner.manifest.context import Context, as_str
from planner.manifest.naming import K8S_NAME, K8S_NAME_MAX
from planner.manifest.yamlsource import PathT

#: A Secrets Manager secret's ARN, in full (its name part is printable ASCII without spaces).
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[!-~]+$")
#: A key in a Kubernetes Secret's data, as the API server checks it.
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def build_sink(ctx: Context, name: str, spec: dict[str, Any], project: str, branch: str) -> m.Sink:
    """The sink as this branch writes to it; a password in its uri is refused (secrets are references)."""
    path: PathT = ("sinks", name)
    kind = spec.get("type") if spec.get("type") in ("warehouse", "cache", "model") else "warehouse"
    prod = branch == "prod"
    settings: dict[str, Any] = {}
    uri = as_str(spec.get("uri"))
    if uri is not None:
        if re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", uri):
            ctx.error(
                (*path, "uri"),
                "the uri holds a password; secrets are never literal values",
                "move it to credentials: {secret: NAME, key: KEY} or {arn: ...}",
            )
        settings["uri"] = uri
    if kind == "warehouse" and isinstance(spec.get("table"), str):
        # '-' is not allowed in unquoted SQL identifiers: feature-x → orders__feature_x.
        settings["table"] = spec["table"] if prod else f"{spec['table']}__{branch.replace('-', '_')}"
    if kind == "cache" and isinstance(spec.get("key_prefix"), str):
        settings["key_prefix"] = f"{spec['key_prefix']}{project}/{branch}/"
        ttl = duration(ctx, spec.get("ttl"), (*path, "ttl"))
        if ttl is not None:
            settings["ttl"] = ttl
    if kind == "model":
        if isinstance(spec.get("platform"), str):
            settings["platform"] = spec["platform"]
        if isinstance(spec.get("endpoint"), str):
            settings["endpoint"] = spec["endpoint"] if prod else f"{spec['endpoint']}-{branch}"
    credentials = _credentials(ctx, spec.get("credentials"), (*path, "credentials"))
    return m.Sink(
        name,
        kind,  # type: ignore[arg-type]
        settings,
        credentials,
        as_str(spec.get("description")),
        ctx.loc(path),
    )


def _credentials(ctx: Context, creds: Any, path: PathT) -> m.SecretRef | None:
    """A Kubernetes Secret key or a Secrets Manager ARN: a sink's secret is referenced, never written down."""
    if not isinstance(creds, dict):
        return None
    if ("secret" in creds) != ("key" in creds):
        ctx.error(path, "a Kubernetes secret reference needs both secret and key")
    arn = as_str(creds.get("arn"))
    if arn is not None and not SECRET_ARN.fullmatch(arn):
        ctx.error((*path, "arn"), f"{arn!r} is not a Secrets Manager secret ARN")
    secret = as_str(creds.get("secret"))
    if secret is not None and (not K8S_NAME.fullmatch(secret) or len(secret) > K8S_NAME_MAX):
        ctx.error((*path, "secret"), f"{secret!r} is not a valid Kubernetes Secret name")
    key = as_str(creds.get("key"))
    if key is not None and (not SECRET_KEY.fullmatch(key) or len(key) > K8S_NAME_MAX):
        ctx.error((*path, "key"), f"{key!r} is not a valid Secret key", "letters, digits, '-', '_' and '.'")
    return m.SecretRef(secret, as_str(creds.get("key")), arn)
