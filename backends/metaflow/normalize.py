"""What flowplan changes in the objects Metaflow emits, and how two compiles are compared.

:func:`normalize` is applied to every object Metaflow compiles (WorkflowTemplate,
Sensor, state machine definition, job definition) before flowplan deploys it,
so that the same code always gives the same bytes:

1. ``metaflow/deployment_timestamp`` annotations are removed (on the object,
   in ``workflowMetadata``, ``podMetadata`` and the Sensor's template): they
   change on every compile, and flowplan's inventory records when each apply
   happened;
2. ``null`` values are removed: the Kubernetes client's ``to_dict()`` writes
   every unset field of a container as ``null``, and the API server does not
   keep them, so a live object never has them;
3. the random 10-letter names of the files Metaflow's start step writes its
   parameters to (``set_parameters NAME … . `pwd`/NAME`` on Argo,
   ``set_batch_environment parameters|parent_tasks NAME`` on Step Functions)
   become names derived from the workflow's name.

The driver already pins the rest (see :mod:`backends.metaflow._driver`): the
user, the code package's bytes and content address, the production token,
job-definition ARNs without revisions.

:func:`comparable` is the documented comparison with what ``python flow.py
argo-workflows create --only-json`` prints for the same flow and settings: on
top of :func:`normalize` it replaces the production token (Metaflow prints a
placeholder with ``--only-json``), the code package's address and the pinned
keys of ``METAFLOW_VERSION`` (git state, platform, Python version), and drops
flowplan's ownership markers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "PINNED_INFO_KEYS",
    "TIMESTAMP_KEY",
    "comparable",
    "drop_nulls",
    "normalize",
    "stable_file_name",
]

TIMESTAMP_KEY = "metaflow/deployment_timestamp"
#: Keys of Metaflow's INFO / METAFLOW_VERSION that the driver pins or drops.
PINNED_INFO_KEYS = (
    "platform",
    "python_version",
    "python_version_code",
    "username",
    "repo_url",
    "branch_name",
    "commit_sha",
    "has_uncommitted_changes",
)
_PARAM_FILE = re.compile(
    r"(metaflow\.plugins\.argo\.set_parameters |metaflow\.plugins\.aws\.step_functions\.set_batch_environment "
    r"(?:parameters|parent_tasks) )([a-z]{10})\b"
)


def drop_nulls(value: Any) -> Any:
    """A copy without ``None`` values in mappings (list items are kept)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def stable_file_name(seed: str, index: int) -> str:
    """Ten lowercase letters derived from ``seed`` and ``index`` (the shape of Metaflow's random names)."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return "".join(chr(ord("a") + b % 26) for b in digest[:10])


def _strip_timestamps(value: Any) -> None:
    if isinstance(value, dict):
        annotations = value.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(TIMESTAMP_KEY, None)
        for item in value.values():
            _strip_timestamps(item)
    elif isinstance(value, list):
        for item in value:
            _strip_timestamps(item)


def _file_names(value: Any, found: list[str]) -> None:
    if isinstance(value, str):
        for match in _PARAM_FILE.finditer(value):
            if match.group(2) not in found:
                found.append(match.group(2))
    elif isinstance(value, dict):
        for item in value.values():
            _file_names(item, found)
    elif isinstance(value, list):
        for item in value:
            _file_names(item, found)


def _replace_strings(value: Any, replacements: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: _replace_strings(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_strings(v, replacements) for v in value]
    return value


def normalize(obj: Mapping[str, Any], seed: str) -> dict[str, Any]:
    """Items 1–3 of the module docstring; ``seed`` (the workflow's name) picks the file names."""
    body: dict[str, Any] = drop_nulls(copy.deepcopy(dict(obj)))
    _strip_timestamps(body)
    names: list[str] = []
    _file_names(body, names)
    replacements: dict[str, str] = {}
    for index, name in enumerate(names):
        stable = stable_file_name(seed, index)
        replacements[f" {name} "] = f" {stable} "
        replacements[f"`pwd`/{name}"] = f"`pwd`/{stable}"
    if replacements:
        body = _replace_strings(body, replacements)
    return body


def _drop_markers(body: dict[str, Any], marker_keys: Iterable[str]) -> None:
    keys = set(marker_keys)
    meta = body.get("metadata")
    if isinstance(meta, dict):
        for field in ("labels", "annotations"):
            values = meta.get(field)
            if isinstance(values, dict):
                for key in [k for k in values if k in keys or k.startswith("flowplan.dev/")]:
                    del values[key]


def _pin_version_env(value: Any) -> Any:
    """``METAFLOW_VERSION`` variables with the pinned keys removed (they are JSON in a string)."""
    if isinstance(value, dict):
        if value.get("name") == "METAFLOW_VERSION" and isinstance(value.get("value"), str):
            try:
                info = json.loads(value["value"])
            except ValueError:
                return value
            for key in PINNED_INFO_KEYS:
                info.pop(key, None)
            return {**value, "value": json.dumps(info, sort_keys=True)}
        return {k: _pin_version_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pin_version_env(v) for v in value]
    return value


def comparable(
    obj: Mapping[str, Any], *, seed: str, tokens: Iterable[str], shas: Iterable[str], markers: Iterable[str] = ()
) -> dict[str, Any]:
    """The form in which flowplan's and Metaflow's own output must be equal (see the module docstring).

    ``tokens`` and ``shas`` are the production tokens and the code packages'
    SHA-1s of both sides; each becomes a fixed placeholder (in a package's
    address ``data/ab/abcd…`` becomes ``data/<xx>/<code-package-sha>``).
    """
    body = normalize(obj, seed)
    _drop_markers(body, markers)
    replacements = {t: "<production-token>" for t in tokens if t}
    for sha in shas:
        if sha:
            replacements[f"{sha[:2]}/{sha}"] = "<xx>/<code-package-sha>"
    body = _replace_strings(body, replacements)
    body = _replace_strings(body, {sha: "<code-package-sha>" for sha in shas if sha})
    result: dict[str, Any] = _pin_version_env(body)
    return result
