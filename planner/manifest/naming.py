"""The naming rules names in a manifest must follow, because they end up in resource names and labels.

Project and branch become part of every resource name, so they are DNS labels
short enough to leave room for the flow's name; tags and label settings become
Kubernetes labels, with Kubernetes' rules for keys and values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from planner.manifest.context import Context, as_str
from planner.manifest.yamlsource import PathT

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
#: A Kubernetes object name (DNS subdomain): a namespace's service account, event bus, Secret, ...
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
K8S_NAME_MAX = 253
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

MAX_PROJECT = 40
MAX_BRANCH = 40


def branch_problem(branch: str) -> str | None:
    """Why a branch name cannot be used, or None; a suggestion is included."""
    if DNS_LABEL.fullmatch(branch) and len(branch) <= MAX_BRANCH:
        return None
    suggestion = re.sub(r"[^a-z0-9-]+", "-", branch.lower()).strip("-")[:MAX_BRANCH].strip("-") or "dev"
    return (
        f"branch {branch!r} is not usable in resource names: use lowercase letters, digits and '-', "
        f"at most {MAX_BRANCH} characters (for example --branch {suggestion})"
    )


def project_ok(name: str) -> bool:
    """Whether a project (or a branch named in ``moved:``) fits in resource names."""
    return bool(DNS_LABEL.fullmatch(name)) and len(name) <= MAX_PROJECT


def check_project(ctx: Context, raw: Any) -> str:
    """The project's name (empty when missing: the structural check reported that), its rules checked."""
    project = as_str(raw, "") or ""
    if project and not project_ok(project):
        ctx.error(
            ("project",),
            f"project {project!r} must be lowercase letters, digits and '-', at most {MAX_PROJECT} characters",
            "it becomes part of every resource name",
        )
    return project


def physical(name: str) -> str:
    """A flow's or step's name as it appears in Kubernetes names: two names with one physical name collide."""
    return name.lower().replace("_", "-")


def check_labels(ctx: Context, labels: Mapping[str, str], path: PathT) -> None:
    """Labels and tags must be valid Kubernetes labels: the cluster would refuse the whole object otherwise."""
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if not LABEL_KEY.fullmatch(key) or len(name) > 63 or len(prefix) > K8S_NAME_MAX:
            ctx.error((*path, key), f"{key!r} is not a valid label key", key=True)
        if not LABEL_VALUE.fullmatch(value) or len(value) > 63:
            ctx.error(
                (*path, key),
                f"{value!r} is not a valid label value",
                "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            )
