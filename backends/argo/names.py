"""Kubernetes names for the objects the Argo compiler writes, and where the files backend puts them.

Names are *physical* (what Kubernetes stores) and *logical* (what flowplan means:
``<project>-<branch>-<flow>``). Both are the same until a limit bites; then the
physical name is the logical one cut short plus 8 hex digits of its SHA-256, so
the same input always gives the same name, two long names that differ only at
the end still get different names, and the full logical name is kept in the
``flowplan.dev/logical-name`` annotation. Only a collision *after* shortening is
an error (:func:`check_unique`).

Limits per kind, and why they are lower than Kubernetes' 253:

==================  ====  ===============================================================
kind                max   reason
==================  ====  ===============================================================
WorkflowTemplate    63    Argo rejects longer names (``maxCharsInObjectName``: label value)
ConfigMap           63    kept a DNS label, like everything flowplan names
CronWorkflow        52    Argo appends ``-<unix time>`` to a 63-character label (Metaflow #1818)
Sensor              52    its Deployment and pods get suffixes; Argo Events' own advice
EventSource         47    Argo Events creates a Service ``<name>-eventsource-svc`` (≤ 63)
==================  ====  ===============================================================
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from planner.errors import Location, ManifestError, Problem
from planner.resources import Address

__all__ = [
    "HASH_CHARS",
    "LABEL_VALUE_MAX",
    "LIMITS",
    "Claim",
    "Name",
    "check_unique",
    "fit",
    "k8s_name",
    "label_value",
    "relative_path",
]

HASH_CHARS = 8
LABEL_VALUE_MAX = 63

LIMITS: Mapping[str, int] = {
    "WorkflowTemplate": 63,
    "ConfigMap": 63,
    "CronWorkflow": 52,
    "Sensor": 52,
    "EventSource": 47,
}


@functools.lru_cache(maxsize=65536)  # a few names per step, asked for again and again per compile
def k8s_name(*parts: str) -> str:
    """``recsys``, ``prod``, ``Train_Model`` → ``recsys-prod-train-model`` (the manifest rule for flow names)."""
    return "-".join(parts).lower().replace("_", "-")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


@dataclass(frozen=True)
class Name:
    """A physical name and the logical name it stands for."""

    physical: str
    logical: str

    @property
    def shortened(self) -> bool:
        return self.physical != self.logical


def _cut(text: str, limit: int, strip: str) -> str:
    """``text`` if it fits, else its head and a hash of all of it, ``limit`` characters at most."""
    if len(text) <= limit:
        return text
    head = text[: limit - HASH_CHARS - 1].rstrip(strip)
    return f"{head}-{_digest(text)}"


def fit(logical: str, limit: int) -> Name:
    """The physical name for ``logical`` under ``limit`` characters (deterministic, hash-suffixed when cut)."""
    return Name(_cut(logical, limit, "-"), logical)


#: Metaflow's name rule for Argo objects (metaflow/plugins/argo/argo_workflows_cli.py, 2.19).
_METAFLOW_VALID = re.compile(r"^[a-z]([a-z0-9\.\-]*[a-z0-9])?$")
_METAFLOW_LIMIT = 45


def _sanitize_for_argo(text: str) -> str:
    return re.sub(r"^[^A-Za-z0-9]+", "", text).replace("_", "").replace("@", "").replace("+", "").lower()


def metaflow_branch(branch: str) -> str:
    """flowplan's ``--branch`` as Metaflow's branch name: ``prod`` is ``--production``, others ``test.<b>``."""
    return "prod" if branch == "prod" else f"test.{branch.replace('-', '_')}"


def metaflow_name(project: str, branch: str, flow: str) -> Name:
    """The name ``argo-workflows create`` gives a ``@project`` flow (its v2 rule, reproduced exactly).

    ``naming: metaflow`` uses it so flows Metaflow deployed are adopted in place
    instead of redeployed under new names. ``flow`` is Metaflow's flow name
    (the FlowSpec class name; for inline flows the manifest's key).
    """
    branch_name = metaflow_branch(branch)
    logical = f"{project}.{branch_name}.{flow}"
    name = logical
    if len(name) > _METAFLOW_LIMIT:
        digest = base64.b32encode(hashlib.sha1(logical.encode()).digest()).decode()[:5].lower()
        parts = [project, branch_name, flow]
        room = _METAFLOW_LIMIT - 6
        minimum = 7
        total = sum(len(p) for p in parts)
        remaining = room - 3 * minimum
        extras = [int(remaining * len(p) / total) for p in parts]
        while sum(extras) < remaining:
            extras[extras.index(min(extras))] += 1
        budgets = [minimum + e for e in extras]

        def squeeze(text: str, budget: int) -> str:
            if len(text) <= budget:
                return text
            head = budget // 2
            return text[:head] + text[-(budget - head) :]

        short = f"{squeeze(project, budgets[0])}.{branch_name[: budgets[1]]}.{squeeze(flow, budgets[2])}"
        name = f"{_sanitize_for_argo(short)}-{digest}"
    if not _METAFLOW_VALID.fullmatch(name):
        name = _sanitize_for_argo(name)
    return Name(name, logical)


def label_value(text: str) -> str:
    """A label value for ``text`` (a flow name can be longer than a label value may be)."""
    return _cut(text, LABEL_VALUE_MAX, "-_.")


@dataclass(frozen=True)
class Claim:
    """One object's wish for a name, with who wants it and where that is written, for error messages."""

    kind: str
    namespace: str
    name: Name
    owner: str
    loc: Location
    path: str


def check_unique(claims: Iterable[Claim]) -> None:
    """Raise :class:`ManifestError` when two objects of one kind and namespace end up with one name.

    Every party to a collision gets its own Problem at its own location, so the
    message points at both flows (or sinks) and a person can rename either.
    """
    groups: dict[tuple[str, str, str], list[Claim]] = defaultdict(list)
    for claim in claims:
        groups[(claim.kind, claim.namespace, claim.name.physical)].append(claim)
    problems: list[Problem] = []
    for kind, namespace, physical in sorted(key for key, group in groups.items() if len(group) > 1):
        group = groups[(kind, namespace, physical)]
        for claim in group:
            others = ", ".join(c.owner for c in group if c is not claim)
            problems.append(
                Problem(
                    claim.loc,
                    claim.path,
                    f"its {kind} name {physical!r} in namespace {namespace!r} is also the name of {others} "
                    f"(names are cut to {LIMITS.get(kind, 63)} characters plus a hash)",
                    "rename one of them",
                )
            )
    if problems:
        raise ManifestError(problems)


class _Addressed(Protocol):
    @property
    def address(self) -> Address: ...


def relative_path(resource: _Addressed) -> str:
    """Where the files backend writes an object: ``<namespace>/<kind-lowercase>/<name>.yaml``.

    Works for desired and live resources alike (both carry an address); names are
    DNS labels, so the path needs no escaping.
    """
    address = resource.address
    return f"{address.namespace}/{address.kind.lower()}/{address.name}.yaml"
