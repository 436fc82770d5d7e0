"""A small, honest Kubernetes API server for tests and benchmarks.

flowplan's Argo backend talks to Kubernetes through the official `kubernetes` client, unchanged.
Mocking that client would test our idea of the API, not the API; there is no kube-apiserver on the
test machines. This module is the middle road: a real HTTP server on 127.0.0.1 that answers the
requests flowplan makes the way a kube-apiserver with the Argo Workflows and Argo Events CRDs
installed answers them, including the unhappy paths (conflicts, validation, RBAC, pagination).

What "honest" means here, rule by rule (each one mirrors kube-apiserver behaviour):

* Objects are stored per (group, plural) -> namespace -> name; a single global, monotonically
  increasing resourceVersion (string) is bumped on every persisted write, like etcd's revision.
* Custom resources (the Argo kinds) follow the CRD strategy: `metadata.generation` starts at 1 and
  is bumped when anything outside `metadata` (and `status`, if it is a subresource) changes; a PUT
  must carry `metadata.resourceVersion` (422 otherwise: CRDs disallow unconditional updates);
  strategic merge patch is 415; DELETE answers with the deleted object; `spec` is required and
  root fields the CRD schema does not name are pruned. The status subresource follows the
  published CRDs: Argo Workflows' WorkflowTemplate, CronWorkflow and Workflow declare
  `subresources: {}`, so their `status` is written through the main resource (that is how the
  workflow controller does it) and bumps the generation; Argo Events' Sensor and EventSource
  declare `subresources: {status: {}}`, so main-resource writes ignore `status` and
  `.../NAME/status` serves it. `start_server(status_subresource=True|False)` forces one behaviour
  on every Argo kind.
* Built-in kinds (ConfigMap, Secret, Lease, Namespace) follow their typed strategies: no
  `generation`, unconditional PUT allowed, strategic merge patch accepted (for these kinds it is
  a JSON merge patch, as none of their fields are merge-keyed lists), unknown fields dropped,
  ConfigMaps limited to 1 MiB, list items without apiVersion/kind, DELETE answers a `Status`.
* A write that changes nothing is not persisted and keeps the old resourceVersion.
* `managedFields` follow the Update-operation ownership rules (a manager owns the fields it set;
  a field changed by another manager moves to it); the manager is the `fieldManager` query
  parameter, else the User-Agent up to its first "/" (e.g. `OpenAPI-Generator` for the Python
  client). Lists are treated as atomic fields.
* LIST pages (`limit`/`continue`) are consistent snapshots, like etcd-served pages; the continue
  token has the real format and an unknown snapshot answers 410 Expired.
* Errors are `Status` bodies with the reason, message and details a real server sends.
* RBAC is evaluated per bearer token from Role/ClusterRole rules, with the real 403 message.
* Namespaces: a namespaced create in a missing namespace answers 404 `namespaces "x" not found`,
  NamespaceLifecycle's answer on a default cluster. `namespaces=[...]` seeds namespaces at start
  and after every reset (as an administrator would have created them); `auto_namespaces=True`
  creates a missing one first instead, like a cluster running the NamespaceAutoProvision plugin.
* Names are checked as kube-apiserver's validation does, as full matches: object names are DNS-1123
  subdomains (labels for Namespaces), label keys are qualified names with an optional subdomain
  prefix, label values at most 63 characters; a namespace named in a create's path must be a
  DNS-1123 label. A failure is a 422 `Invalid` Status with one cause per field.

Left out on purpose (answering them would be dishonest, so they fail loudly): watch (405),
server-side apply (`application/apply-patch+yaml`, 415), protobuf, admission webhooks, CRD schema
validation (the Argo CRDs preserve unknown fields anyway), owner-reference garbage collection,
and etcd's 1.5 MiB object limit for custom resources.

Run in-process with `start_server()` or as its own process:
`python -m tests.support.k8s_server --port 0 [--no-argo-crds] [--namespace NS ...] [--rbac examples/argo/rbac.yaml]`
prints its URL on one line and serves until killed.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import json
import re
import secrets
import signal
import socket
import sys
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from tests.support.kubeconfig import write_kubeconfig

__all__ = [
    "DEFAULT_ADMIN_TOKEN",
    "DEFAULT_RBAC_TOKEN",
    "ApiError",
    "K8sTestServer",
    "Principal",
    "ResourceType",
    "load_principal",
    "main",
    "start_server",
]

JSON = dict[str, Any]

DEFAULT_ADMIN_TOKEN = "flowplan-test-admin"
DEFAULT_RBAC_TOKEN = "flowplan-test-rbac"
ADMIN_USER = "kubernetes-admin"
#: Server version reported on /version; the Python client validates every field of it strictly.
SERVER_VERSION: JSON = {
    "major": "1",
    "minor": "32",
    "emulationMajor": "1",
    "emulationMinor": "32",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "31",
    "gitVersion": "v1.32.0-flowplan-test",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
CONFIGMAP_MAX_BYTES = 1024 * 1024
#: The test-only side door for benchmarks (see ``ApiState._harness``); not part of the Kubernetes API.
HARNESS_PREFIX = "/__harness__/"
ANNOTATIONS_MAX_BYTES = 256 * 1024
_SNAPSHOT_CACHE_SIZE = 128


# --------------------------------------------------------------------------------------------
# Resource types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceType:
    """One served resource: everything discovery, routing and the write strategy need to know."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    #: Served by a CRD: generation tracking, no unconditional update, no strategic merge patch,
    #: DELETE returns the object, lists carry apiVersion/kind on items.
    custom: bool = False
    #: Typed kinds drop unknown top-level fields when decoding; None keeps everything (CRDs).
    known_fields: frozenset[str] | None = None
    field_selectors: frozenset[str] = frozenset({"metadata.name", "metadata.namespace"})
    #: Validate metadata.name as a DNS label (63) instead of a DNS subdomain (253).
    name_is_label: bool = False
    #: The CRD declares `subresources: {status: {}}`.
    status_subresource: bool = False
    #: Top-level fields the schema marks `x-kubernetes-map-type: atomic` (one managed field each).
    atomic_fields: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`cronworkflows.argoproj.io` / `configmaps`: how errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """`CronWorkflow.argoproj.io` / `ConfigMap`: how 422 Invalid names the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)


ARGO_GROUP = "argoproj.io"
ARGO_VERSION = "v1alpha1"
_ARGO_ROOT = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
ARGO_TYPES: tuple[ResourceType, ...] = (
    # Argo Workflows CRDs: no subresources; WorkflowTemplate's schema has no status at all.
    ResourceType(
        ARGO_GROUP, ARGO_VERSION, "workflowtemplates", "WorkflowTemplate", "workflowtemplate",
        short_names=("wftmpl",), custom=True, known_fields=_ARGO_ROOT - {"status"},
        atomic_fields=frozenset({"spec"}),
    ),
    ResourceType(
        ARGO_GROUP, ARGO_VERSION, "cronworkflows", "CronWorkflow", "cronworkflow",
        short_names=("cwf", "cronwf"), custom=True, known_fields=_ARGO_ROOT,
        atomic_fields=frozenset({"spec", "status"}),
    ),
    ResourceType(
        ARGO_GROUP, ARGO_VERSION, "workflows", "Workflow", "workflow", short_names=("wf",), custom=True,
        known_fields=_ARGO_ROOT,
    ),
    # Argo Events CRDs: status is a subresource.
    ResourceType(
        ARGO_GROUP, ARGO_VERSION, "sensors", "Sensor", "sensor", short_names=("sn",), custom=True,
        known_fields=_ARGO_ROOT, status_subresource=True,
    ),
    ResourceType(
        ARGO_GROUP, ARGO_VERSION, "eventsources", "EventSource", "eventsource",
        short_names=("es",), custom=True, known_fields=_ARGO_ROOT, status_subresource=True,
    ),
)  # fmt: skip
CORE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "", "v1", "configmaps", "ConfigMap", "configmap", short_names=("cm",),
        known_fields=frozenset({"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}),
    ),
    ResourceType(
        "", "v1", "secrets", "Secret", "secret",
        known_fields=frozenset({"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}),
        field_selectors=frozenset({"metadata.name", "metadata.namespace", "type"}),
    ),
    ResourceType(
        "", "v1", "namespaces", "Namespace", "namespace", namespaced=False, short_names=("ns",),
        known_fields=frozenset({"apiVersion", "kind", "metadata", "spec", "status"}),
        field_selectors=frozenset({"metadata.name", "status.phase"}), name_is_label=True,
    ),
    ResourceType(
        "coordination.k8s.io", "v1", "leases", "Lease", "lease",
        known_fields=frozenset({"apiVersion", "kind", "metadata", "spec"}),
    ),
)  # fmt: skip
_LEASE_SPEC_FIELDS = frozenset(
    {
        "holderIdentity",
        "leaseDurationSeconds",
        "acquireTime",
        "renewTime",
        "leaseTransitions",
        "preferredHolder",
        "strategy",
    }
)
_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
#: Metadata the server owns; never part of a manager's field set.
_UNTRACKED_META = frozenset(
    {
        "name",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
    }
)
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
SERVED_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update"]


# --------------------------------------------------------------------------------------------
# Errors as Status bodies
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer: `code` plus the `Status` body a kube-apiserver would send."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
        if not reason:  # StatusReasonUnknown is the empty string, omitted like any empty field
            del self.status["reason"]
        if details is not None:
            self.status["details"] = details


def _details(rt: ResourceType, name: str | None, *, kind: str | None = None) -> JSON:
    out: JSON = {}
    if name:
        out["name"] = name
    if rt.group:
        out["group"] = rt.group
    out["kind"] = kind if kind is not None else rt.plural
    return out


def _not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def _no_such_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name))


def _conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    message = f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}'
    return ApiError(409, "Conflict", message, _details(rt, name))


_OPTIMISTIC_LOCK = "the object has been modified; please apply your changes to the latest version and try again"


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def _method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def _unsupported_media(accepted: Iterable[str]) -> ApiError:
    message = "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted)
    return ApiError(415, "UnsupportedMediaType", message)


def _gone() -> ApiError:
    return ApiError(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a new "
        "list without the continue parameter.",
    )


@dataclass(frozen=True)
class _Cause:
    reason: str
    field: str
    message: str


def _invalid_value(field_path: str, value: Any, detail: str, *, shown: str | None = None) -> _Cause:
    if shown is None:
        shown = json.dumps(value) if isinstance(value, str) else repr(value)
    return _Cause("FieldValueInvalid", field_path, f"Invalid value: {shown}: {detail}")


def _invalid(rt: ResourceType, name: str, causes: list[_Cause]) -> ApiError:
    parts = [f"{c.field}: {c.message}" for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = _details(rt, name, kind=rt.kind)
    details["causes"] = [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes]
    return ApiError(422, "Invalid", f'{rt.group_kind} "{name}" is invalid: {joined}', details)


def _forbidden(
    user: str, verb: str, rt: ResourceType, namespace: str | None, name: str | None, sub: str | None
) -> ApiError:
    resource = f"{rt.plural}/{sub}" if sub else rt.plural
    subject = f'{rt.qualified} "{name}"' if name else rt.qualified
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{rt.group}" {scope}'
    )
    return ApiError(403, "Forbidden", message, _details(rt, name))


# --------------------------------------------------------------------------------------------
# Validation (apimachinery's name and label rules)
# --------------------------------------------------------------------------------------------

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1123_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def dns_subdomain_errors(value: str) -> list[str]:
    """Reasons `value` is not an RFC 1123 subdomain (object names, label key prefixes)."""
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_SUBDOMAIN_MSG)
    return errs


def _dns_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL_RE.fullmatch(value):
        errs.append(_LABEL_MSG)
    return errs


def qualified_name_errors(key: str) -> list[str]:
    """Reasons `key` is not a valid label/annotation key (`[prefix/]name`)."""
    parts = key.split("/")
    if len(parts) > 2:
        return [
            "a qualified name " + _QUALIFIED_MSG.removeprefix("name part ") + " with an optional DNS subdomain "
            "prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errs: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns_subdomain_errors(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(_QUALIFIED_MSG)
    return errs


def label_value_errors(value: str) -> list[str]:
    """Reasons `value` is not a valid label value."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_LABEL_VALUE_MSG)
    return errs


def _validate_meta(rt: ResourceType, obj: JSON) -> list[_Cause]:
    meta = obj["metadata"]
    causes: list[_Cause] = []
    name = meta.get("name", "")
    if not name:
        causes.append(_Cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required"))
    else:
        name_errs = _dns_label_errors(name) if rt.name_is_label else dns_subdomain_errors(name)
        causes.extend(_invalid_value("metadata.name", name, e) for e in name_errs)
    if rt.namespaced:
        namespace = meta.get("namespace", "")
        causes.extend(_invalid_value("metadata.namespace", namespace, e) for e in _dns_label_errors(namespace))
    for key, value in (meta.get("labels") or {}).items():
        causes.extend(_invalid_value("metadata.labels", key, e) for e in qualified_name_errors(key))
        causes.extend(_invalid_value("metadata.labels", value, e) for e in label_value_errors(value))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        causes.extend(_invalid_value("metadata.annotations", key, e) for e in qualified_name_errors(key))
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        causes.append(
            _Cause(
                "FieldValueTooLong",
                "metadata.annotations",
                f"Too long: must have at most {ANNOTATIONS_MAX_BYTES} bytes",
            )
        )
    return causes


def _validate_kind(rt: ResourceType, obj: JSON) -> list[_Cause]:
    causes: list[_Cause] = []
    if rt.custom and obj.get("spec") is None:
        causes.append(_Cause("FieldValueRequired", "spec", "Required value"))  # the CRDs' `required: [spec]`
    if rt.kind == "ConfigMap":
        data: dict[str, str] = obj.get("data") or {}
        binary: dict[str, str] = obj.get("binaryData") or {}
        total = 0
        for where, mapping in (("data", data), ("binaryData", binary)):
            for key, value in mapping.items():
                if len(key) > 253 or not _CONFIG_KEY_RE.fullmatch(key):
                    causes.append(
                        _invalid_value(
                            f"{where}[{key}]",
                            key,
                            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                            "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                            "'[-._a-zA-Z0-9]+')",
                        )
                    )
                total += len(key) + len(value)
        for key in set(data) & set(binary):
            causes.append(_Cause("FieldValueDuplicate", f"data[{key}]", f"Duplicate value: {json.dumps(key)}"))
        if total > CONFIGMAP_MAX_BYTES:
            causes.append(_Cause("FieldValueTooLong", "[]", f"Too long: must have at most {CONFIGMAP_MAX_BYTES} bytes"))
    elif rt.kind == "Lease":
        spec = obj.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and duration <= 0:
            causes.append(_invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0"))
        transitions = spec.get("leaseTransitions")
        if transitions is not None and transitions < 0:
            causes.append(_invalid_value("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    return causes


def _type_error(where: str, got: Any, want: str) -> ApiError:
    kind = "number" if isinstance(got, int | float) else type(got).__name__
    return _bad_request(f"json: cannot unmarshal {kind} into Go struct field {where} of type {want}")


def _require_str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _type_error(where, value, "map[string]string")
    for v in value.values():
        if not isinstance(v, str):
            raise _type_error(where, v, "string")
    return value


def _micro_time(value: Any, where: str) -> str:
    """Normalize a MicroTime like the server's decoder/encoder pair does (UTC, 6 digits, `Z`)."""
    if not isinstance(value, str):
        raise _type_error(where, value, "v1.MicroTime")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad_request(f'parsing time "{value}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse') from exc
    if parsed.tzinfo is None:
        raise _bad_request(f'parsing time "{value}" as "2006-01-02T15:04:05.000000Z07:00": missing time zone')
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _decode_typed(rt: ResourceType, obj: JSON) -> JSON:
    """Drop unknown fields and check types of a built-in kind, as its Go decoder would."""
    if rt.known_fields is not None:
        obj = {k: v for k, v in obj.items() if k in rt.known_fields}
    if rt.kind == "ConfigMap":
        _require_str_map(obj.get("data"), "ConfigMap.data")
        for key, value in _require_str_map(obj.get("binaryData"), "ConfigMap.binaryData").items():
            _b64(value, f"binaryData[{key}]")
    elif rt.kind == "Secret":
        data = dict(_require_str_map(obj.get("data"), "Secret.data"))
        for key, value in data.items():
            _b64(value, f"data[{key}]")
        for key, value in _require_str_map(obj.pop("stringData", None), "Secret.stringData").items():
            data[key] = base64.b64encode(value.encode()).decode()
        if data:
            obj["data"] = data
        obj.setdefault("type", "Opaque")
    elif rt.kind == "Lease":
        spec = obj.get("spec")
        if spec is not None:
            if not isinstance(spec, dict):
                raise _type_error("Lease.spec", spec, "v1.LeaseSpec")
            spec = {k: v for k, v in spec.items() if k in _LEASE_SPEC_FIELDS and v is not None}
            for key in ("acquireTime", "renewTime"):
                if key in spec:
                    spec[key] = _micro_time(spec[key], f"LeaseSpec.spec.{key}")
            for key in ("leaseDurationSeconds", "leaseTransitions"):
                if key in spec and (not isinstance(spec[key], int) or isinstance(spec[key], bool)):
                    raise _type_error(f"LeaseSpec.spec.{key}", spec[key], "int32")
            obj["spec"] = spec
    elif rt.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    return obj


def _b64(value: str, where: str) -> None:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad_request(f"illegal base64 data in {where}") from exc


def _decode_meta(meta: Any) -> JSON:
    """Keep only ObjectMeta fields and check the types the client is strict about."""
    if not isinstance(meta, dict):
        raise _type_error("ObjectMeta.metadata", meta, "v1.ObjectMeta")
    meta = {k: v for k, v in meta.items() if k in _META_FIELDS and v is not None}
    for key in ("name", "generateName", "namespace", "resourceVersion", "uid"):
        if key in meta and not isinstance(meta[key], str):
            raise _type_error(f"ObjectMeta.metadata.{key}", meta[key], "string")
    _require_str_map(meta.get("labels"), "ObjectMeta.metadata.labels")
    _require_str_map(meta.get("annotations"), "ObjectMeta.metadata.annotations")
    for key in ("labels", "annotations"):
        if key in meta and not meta[key]:
            del meta[key]
    return meta


# --------------------------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, gt, lt
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            number, bound = int(value or ""), int(next(iter(self.values)))
        except ValueError:
            return False
        return number > bound if self.op == "gt" else number < bound


_SELECTOR_TOKEN = re.compile(r"\s*(==|!=|=|!|\(|\)|,|>|<|[^\s=!(),<>]+)")


def parse_label_selector(text: str) -> list[_Requirement]:
    """Parse a labelSelector the way apimachinery's labels.Parse does; BadRequest on syntax errors."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _SELECTOR_TOKEN.match(text, pos)
        if not m:
            raise _bad_request(f"unable to parse requirement: unexpected character at {pos} in {text!r}")
        tokens.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    reqs: list[_Requirement] = []
    i = 0

    def fail(why: str) -> ApiError:
        return _bad_request(f"unable to parse requirement: {why}")

    def check_key(key: str) -> str:
        errs = qualified_name_errors(key)
        if errs:
            raise fail(f'key: Invalid value: "{key}": {errs[0]}')
        return key

    def check_value(value: str) -> str:
        errs = label_value_errors(value)
        if errs:
            raise fail(f'values[0]: Invalid value: "{value}": {errs[0]}')
        return value

    while i < len(tokens):
        if tokens[i] == "!":
            if i + 1 >= len(tokens):
                raise fail("found '', expected: identifier after '!'")
            reqs.append(_Requirement(check_key(tokens[i + 1]), "!exists"))
            i += 2
        else:
            key = check_key(tokens[i])
            i += 1
            if i >= len(tokens) or tokens[i] == ",":
                reqs.append(_Requirement(key, "exists"))
            elif tokens[i] in ("=", "==", "!="):
                op = "!=" if tokens[i] == "!=" else "="
                value = ""
                if i + 1 < len(tokens) and tokens[i + 1] != ",":
                    value = tokens[i + 1]
                    i += 1
                reqs.append(_Requirement(key, op, frozenset({check_value(value)})))
                i += 1
            elif tokens[i] in ("in", "notin"):
                op = tokens[i]
                if i + 1 >= len(tokens) or tokens[i + 1] != "(":
                    raise fail(f"found '{tokens[i + 1] if i + 1 < len(tokens) else ''}', expected: '('")
                i += 2
                values: set[str] = set()
                expect_value = True
                while i < len(tokens) and tokens[i] != ")":
                    if tokens[i] == ",":
                        if expect_value:
                            values.add("")
                        expect_value = True
                    else:
                        values.add(check_value(tokens[i]))
                        expect_value = False
                    i += 1
                if i >= len(tokens):
                    raise fail("found '', expected: ')'")
                i += 1
                reqs.append(_Requirement(key, op, frozenset(values)))
            elif tokens[i] in (">", "<"):
                if i + 1 >= len(tokens) or not tokens[i + 1].lstrip("-").isdigit():
                    raise fail(f"for 'Gt', 'Lt' operators, the value must be an integer in {text!r}")
                reqs.append(_Requirement(key, "gt" if tokens[i] == ">" else "lt", frozenset({tokens[i + 1]})))
                i += 2
            else:
                raise fail(f"found '{tokens[i]}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(tokens):
            if tokens[i] != ",":
                raise fail(f"found '{tokens[i]}', expected: ',' or 'end of string'")
            i += 1
            if i >= len(tokens):
                raise fail("found '', expected: identifier")
    return reqs


def parse_field_selector(rt: ResourceType, text: str) -> list[tuple[str, bool, str]]:
    """Parse `metadata.name=x,metadata.namespace!=y` into (field, equal?, value) triples."""
    out: list[tuple[str, bool, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.match(r"^([^=!]+)(==|!=|=)(.*)$", part)
        if not m:
            raise _bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        key, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if key not in rt.field_selectors:
            raise _bad_request(f"field label not supported: {key}")
        out.append((key, op != "!=", value))
    return out


def _field_value(obj: JSON, key: str) -> str:
    node: Any = obj
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


# --------------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class JsonPatchError(Exception):
    """A JSON patch (RFC 6902) operation could not be applied."""


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise JsonPatchError(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _container(doc: Any, parts: list[str], op: str) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise JsonPatchError(f"{op} operation does not apply: doc is missing path: /{'/'.join(parts)}")
    return node


def _index(node: list[Any], part: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(node)
    if not part.isdigit():
        raise JsonPatchError(f"invalid array index {part!r}")
    idx = int(part)
    if idx > len(node) or (idx == len(node) and not allow_end):
        raise JsonPatchError(f"array index {idx} out of bounds")
    return idx


def _json_patch_get(doc: Any, parts: list[str], op: str) -> Any:
    if not parts:
        return doc
    node = _container(doc, parts, op)
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        return node[last]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        return node[int(last)]
    raise JsonPatchError(f"{op} operation does not apply: doc is missing path: /{'/'.join(parts)}")


def _json_patch_add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    node = _container(doc, parts, "add")
    if isinstance(node, dict):
        node[parts[-1]] = value
    elif isinstance(node, list):
        node.insert(_index(node, parts[-1], allow_end=True), value)
    else:
        raise JsonPatchError("add operation does not apply: parent is not a container")
    return doc


def _json_patch_remove(doc: Any, parts: list[str], op: str = "remove") -> Any:
    if not parts:
        raise JsonPatchError("cannot remove the whole document")
    node = _container(doc, parts, op)
    if isinstance(node, dict) and parts[-1] in node:
        return node.pop(parts[-1])
    if isinstance(node, list):
        return node.pop(_index(node, parts[-1], allow_end=False))
    raise JsonPatchError(f"{op} operation does not apply: doc is missing path: /{'/'.join(parts)}")


def json_patch(doc: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch to a copy of `doc`; raises JsonPatchError."""
    if not isinstance(operations, list):
        raise JsonPatchError("a JSON patch must be a list of operations")
    result = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise JsonPatchError(f"invalid operation {operation!r}")
        op, parts = operation["op"], _pointer(operation["path"])
        if op == "add":
            result = _json_patch_add(result, parts, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _json_patch_remove(result, parts)
        elif op == "replace":
            _json_patch_get(result, parts, "replace")
            if not parts:
                result = copy.deepcopy(operation.get("value"))
            else:
                _json_patch_remove(result, parts, "replace")
                result = _json_patch_add(result, parts, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            value = _json_patch_get(result, source, op)
            if op == "move":
                _json_patch_remove(result, source, op)
            result = _json_patch_add(result, parts, copy.deepcopy(value))
        elif op == "test":
            if _json_patch_get(result, parts, "test") != operation.get("value"):
                raise JsonPatchError(f"testing value {operation['path']} failed: test failed")
        else:
            raise JsonPatchError(f"Unexpected kind: {op}")
    return result


# --------------------------------------------------------------------------------------------
# managedFields (Update-operation ownership)
# --------------------------------------------------------------------------------------------

_MAP_NODE = object()
FieldPath = tuple[str, ...]


def _flatten_fields(
    obj: JSON, *, include_status: bool, only_status: bool = False, atomic: frozenset[str] = frozenset()
) -> dict[FieldPath, Any]:
    """Map each owned-able field path to its value (or _MAP_NODE for non-empty objects)."""
    out: dict[FieldPath, Any] = {}

    def walk(path: FieldPath, value: Any) -> None:
        if isinstance(value, dict) and value and not (len(path) == 1 and path[0] in atomic):
            out[path] = _MAP_NODE
            for k, v in value.items():
                walk((*path, k), v)
        else:
            out[path] = value

    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if only_status:
            if key == "status":
                walk((key,), value)
            continue
        if key == "status" and not include_status:
            continue
        if key == "metadata":
            for mk, mv in value.items():
                if mk not in _UNTRACKED_META:
                    walk(("metadata", mk), mv)
        else:
            walk((key,), value)
    return out


def _fields_v1_to_paths(node: Mapping[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    out: set[FieldPath] = set()
    for key, child in node.items():
        if key == ".":
            out.add(prefix)
        elif key.startswith("f:"):
            path = (*prefix, key[2:])
            if child:
                out |= _fields_v1_to_paths(child, path)
            else:
                out.add(path)
    return out


def _paths_to_fields_v1(paths: Iterable[FieldPath], flat: Mapping[FieldPath, Any]) -> JSON:
    root: JSON = {}
    for path in paths:
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
        if flat.get(path) is _MAP_NODE:
            node["."] = {}

    def ordered(node: JSON) -> JSON:
        return {k: ordered(node[k]) for k in sorted(node)}

    return ordered(root)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _update_managed_fields(
    entries: list[JSON],
    old_flat: Mapping[FieldPath, Any],
    new_flat: Mapping[FieldPath, Any],
    *,
    manager: str,
    operation: str,
    api_version: str,
    subresource: str | None,
) -> list[JSON]:
    """Move ownership of the fields this write changed to `manager`; drop fields that are gone."""
    changed = {
        p
        for p, v in new_flat.items()
        if p not in old_flat
        or (v is _MAP_NODE) != (old_flat[p] is _MAP_NODE)
        or (v is not _MAP_NODE and old_flat[p] != v)
    }
    live = set(new_flat)
    out: list[JSON] = []
    mine: set[FieldPath] = set(changed)
    mine_time: str | None = None
    for entry in entries:
        owned = _fields_v1_to_paths(entry.get("fieldsV1") or {})
        same = (
            entry.get("manager") == manager
            and entry.get("operation") == operation
            and entry.get("subresource") == subresource
        )
        if same:
            mine |= owned & live
            mine_time = entry.get("time")
            continue
        kept = (owned & live) - changed
        if kept:
            out.append({**entry, "fieldsV1": _paths_to_fields_v1(kept, new_flat)})
    if mine:
        entry = {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": _now() if changed or mine_time is None else mine_time,
            "fieldsType": "FieldsV1",
            "fieldsV1": _paths_to_fields_v1(mine, new_flat),
        }
        if subresource:
            entry["subresource"] = subresource
        out.append(entry)
    return out


def manager_from_user_agent(user_agent: str) -> str:
    """What kube-apiserver records as manager when no fieldManager is given: the UA up to '/'."""
    return user_agent.split("/", 1)[0][:128]


# --------------------------------------------------------------------------------------------
# RBAC
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRule:
    """One rbac.authorization.k8s.io/v1 PolicyRule (resource rules only)."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str] = frozenset()

    def allows(self, verb: str, group: str, resource: str, name: str | None) -> bool:
        if not ({"*", verb} & self.verbs) or not ({"*", group} & self.api_groups):
            return False
        if not ({"*", resource} & self.resources):
            return False
        if self.resource_names:
            # Like real RBAC: create and unnamed list/deletecollection cannot match a name-restricted rule.
            return name is not None and name in self.resource_names
        return True


@dataclass(frozen=True)
class Principal:
    """Who a bearer token authenticates as and what it may do. `rules=None` is cluster-admin."""

    user: str
    rules: tuple[PolicyRule, ...] | None = None
    #: A Role grants only inside its namespace; None (ClusterRole) grants everywhere.
    namespace: str | None = None

    def allows(self, verb: str, group: str, resource: str, namespace: str | None, name: str | None) -> bool:
        if self.rules is None:
            return True
        if self.namespace is not None and namespace != self.namespace:
            return False
        return any(rule.allows(verb, group, resource, name) for rule in self.rules)


def _rule_from_dict(rule: Mapping[str, Any]) -> PolicyRule:
    return PolicyRule(
        verbs=frozenset(rule.get("verbs") or ()),
        api_groups=frozenset(rule.get("apiGroups") or ()),
        resources=frozenset(rule.get("resources") or ()),
        resource_names=frozenset(rule.get("resourceNames") or ()),
    )


def load_principal(
    role: str | Path | Mapping[str, Any] | None,
    *,
    user: str | None = None,
    namespace: str | None = None,
) -> Principal:
    """Build a Principal from a Role/ClusterRole (path to YAML, YAML text, or dict); None = admin.

    A file may hold several documents (ServiceAccount, Role, RoleBinding, like
    examples/argo/rbac.yaml): the rules of every Role/ClusterRole in it are granted, and the user
    name is taken from the first ServiceAccount subject of a RoleBinding. `namespace` moves a Role
    into another namespace, as `kubectl apply -n NS` of a file without namespaces would.
    """
    if role is None:
        return Principal(user or ADMIN_USER, None, None)
    if isinstance(role, Mapping):
        docs: list[Any] = [role]
    else:
        text = role if isinstance(role, str) and "\n" in role else Path(role).read_text(encoding="utf-8")
        docs = [d for d in yaml.safe_load_all(text) if d]
    rules: list[PolicyRule] = []
    role_namespace: str | None = None
    cluster_role = False
    subject_user: str | None = None
    for doc in docs:
        kind = doc.get("kind")
        if kind in ("Role", "ClusterRole"):
            rules.extend(_rule_from_dict(r) for r in doc.get("rules") or ())
            if kind == "ClusterRole":
                cluster_role = True
            else:
                role_namespace = role_namespace or (doc.get("metadata") or {}).get("namespace")
        elif kind in ("RoleBinding", "ClusterRoleBinding") and subject_user is None:
            for subject in doc.get("subjects") or ():
                if subject.get("kind") == "ServiceAccount":
                    sa_ns = namespace or subject.get("namespace") or "default"
                    subject_user = f"system:serviceaccount:{sa_ns}:{subject['name']}"
                    break
                if subject.get("kind") == "User":
                    subject_user = subject["name"]
                    break
    if not rules and not cluster_role:
        raise ValueError("no Role or ClusterRole with rules found")
    scope = None if cluster_role and namespace is None else (namespace or role_namespace)
    return Principal(user or subject_user or "flowplan-test-user", tuple(rules), scope)


# --------------------------------------------------------------------------------------------
# The API logic (transport-independent)
# --------------------------------------------------------------------------------------------


@dataclass
class Request:
    """One API request as the logic sees it (the HTTP handler builds it)."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def header(self, name: str) -> str:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return ""


@dataclass
class Response:
    code: int
    body: Any
    content_type: str = "application/json"
    #: An object or list that kubectl may ask to see as a Table.
    tabular: bool = False


@dataclass
class _Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def _unique_suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(5))


def _without_volatile(obj: JSON) -> JSON:
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("managedFields", "resourceVersion")}
    return {**obj, "metadata": meta}


class ApiState:
    """The store and the request logic, independent of HTTP so it is easy to reason about.

    One lock guards the store. Stored objects are never mutated after they are stored (every write
    stores a fresh dict), so readers can serialize them after releasing the lock and list
    snapshots can share them.
    """

    def __init__(
        self,
        *,
        argo_crds: bool = True,
        status_subresource: bool | None = None,
        auto_namespaces: bool = False,
        namespaces: Iterable[str] = (),
    ) -> None:
        self._lock = threading.RLock()
        self._rv = 1
        #: None: each Argo kind as its published CRD; True/False: force it on every Argo kind.
        self.status_subresource = status_subresource
        self.auto_namespaces = auto_namespaces
        #: Namespaces that exist at start and after every reset, besides a fresh cluster's own.
        self.seed_namespaces = tuple(namespaces)
        self._argo_crds = argo_crds
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[str, ResourceType] = {}
        for rt in CORE_TYPES + ARGO_TYPES:
            self._by_kind[rt.kind] = rt
        self._objects: dict[tuple[str, str], dict[str, dict[str, JSON]]] = {}
        self._snapshots: OrderedDict[tuple[Any, ...], list[tuple[str, JSON]]] = OrderedDict()
        self.tokens: dict[str, Principal] = {}
        #: Who a request without credentials is; None answers 401. kubectl (client-go) never sends
        #: a bearer token to an http:// server, so kubectl tests need this (like the old insecure port).
        self.anonymous: Principal | None = None
        self.set_argo_crds(argo_crds)
        self.clear()

    # -- configuration -------------------------------------------------------------------------

    def set_argo_crds(self, installed: bool) -> None:
        """Install or remove the Argo CRDs (their objects stay stored but unreachable, like etcd)."""
        with self._lock:
            self._argo_crds = installed
            served = CORE_TYPES + (ARGO_TYPES if installed else ())
            self._types = {(rt.group, rt.version, rt.plural): rt for rt in served}

    @property
    def argo_crds(self) -> bool:
        return self._argo_crds

    def clear(self) -> None:
        """Drop every object and snapshot; seed the namespaces a fresh cluster has."""
        with self._lock:
            self._objects = {}
            self._snapshots.clear()
            ns_type = self._by_kind["Namespace"]
            for name in dict.fromkeys(
                ("default", "kube-system", "kube-public", "kube-node-lease", *self.seed_namespaces)
            ):
                self._store_new(ns_type, "", self._namespace_object(name), "kube-apiserver")

    def create_namespace(self, name: str) -> None:
        """Create namespace `name` (validated like any Namespace) unless it exists."""
        with self._lock:
            ns_type = self._by_kind["Namespace"]
            if name not in self._bucket(ns_type, ""):
                self._store_new(ns_type, "", self._namespace_object(name), "kube-apiserver")

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def kind(self, kind: str) -> ResourceType:
        try:
            return self._by_kind[kind]
        except KeyError:
            raise KeyError(f"unknown kind {kind!r}; known: {sorted(self._by_kind)}") from None

    def served_types(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    # -- harness-side access (no HTTP, no RBAC) -----------------------------------------------

    def get_object(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        rt = self.kind(kind)
        with self._lock:
            obj = self._bucket(rt, namespace or "").get(name)
        return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, kind: str, namespace: str | None = None) -> list[JSON]:
        rt = self.kind(kind)
        with self._lock:
            found = sorted(self._scan(rt, namespace), key=lambda kv: kv[0])
        return [copy.deepcopy(obj) for _, obj in found]

    def put_object(self, obj: Mapping[str, Any], *, manager: str = "test-harness") -> JSON:
        """Create or replace an object as a controller would (status included, no RV check).

        Server-side fields stay honest: uid and creationTimestamp are kept on replace, the
        resourceVersion is bumped, generation follows the kind's rules, managedFields record
        `manager`. Validation still applies (ApiError on invalid names).
        """
        body = copy.deepcopy(dict(obj))
        rt = self._kind_of(body)
        meta = body.setdefault("metadata", {})
        namespace = meta.get("namespace", "default") if rt.namespaced else ""
        meta["namespace"] = namespace
        with self._lock:
            current = self._bucket(rt, namespace).get(meta.get("name", ""))
            if current is None:
                meta.pop("resourceVersion", None)
                return copy.deepcopy(self._create(rt, namespace, body, manager=manager, dry_run=False, harness=True))
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
            meta.pop("uid", None)
            result = self._update(
                rt, namespace, meta["name"], body, manager=manager, dry_run=False, subresource=None, harness=True
            )
            return copy.deepcopy(result)

    def set_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any], *, manager: str = "test-harness"
    ) -> JSON:
        """Replace an object's status (e.g. a Workflow's phase), like a controller would."""
        current = self.get_object(kind, namespace, name)
        if current is None:
            raise _not_found(self.kind(kind), name)
        current["status"] = copy.deepcopy(dict(status))
        return self.put_object(current, manager=manager)

    def delete_object(self, kind: str, namespace: str | None, name: str) -> bool:
        rt = self.kind(kind)
        with self._lock:
            bucket = self._bucket(rt, namespace or "")
            if name not in bucket:
                return False
            del bucket[name]
            self._rv += 1
            return True

    def _kind_of(self, body: Mapping[str, Any]) -> ResourceType:
        rt = self.kind(str(body.get("kind")))
        if body.get("apiVersion") not in (None, rt.api_version):
            raise ValueError(f"apiVersion {body.get('apiVersion')!r} is not {rt.api_version!r}")
        return rt

    # -- store helpers (lock held) --------------------------------------------------------------

    def has_status_subresource(self, rt: ResourceType) -> bool:
        if not rt.custom:
            return False
        return rt.status_subresource if self.status_subresource is None else self.status_subresource

    def _bucket(self, rt: ResourceType, namespace: str) -> dict[str, JSON]:
        return self._objects.setdefault(rt.key, {}).setdefault(namespace, {})

    def _scan(self, rt: ResourceType, namespace: str | None) -> list[tuple[str, JSON]]:
        by_ns = self._objects.get(rt.key, {})
        if namespace is not None:
            return [(f"{namespace}/{n}", o) for n, o in by_ns.get(namespace, {}).items()]
        return [(f"{ns}/{n}" if ns else n, o) for ns, objs in by_ns.items() for n, o in objs.items()]

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    @staticmethod
    def _namespace_object(name: str) -> JSON:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def _ensure_namespace(self, namespace: str, dry_run: bool) -> None:
        ns_type = self._by_kind["Namespace"]
        if namespace in self._bucket(ns_type, ""):
            return
        if not self.auto_namespaces:
            raise _not_found(ns_type, namespace)
        if not dry_run:
            self._store_new(ns_type, "", self._namespace_object(namespace), "kube-apiserver")

    def _store_new(self, rt: ResourceType, namespace: str, obj: JSON, manager: str) -> JSON:
        return self._create(rt, namespace, obj, manager=manager, dry_run=False)

    # -- the verbs (lock held) -------------------------------------------------------------------

    def _decode_body(self, rt: ResourceType, body: Any, namespace: str) -> JSON:
        """Check identity fields against the URL and decode like the kind's Go type would."""
        if not isinstance(body, dict):
            raise _bad_request(f"the body of the request is not a {rt.kind} object")
        body = copy.deepcopy(body)
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if rt.custom and (not api_version or not kind):
            missing = "Kind" if not kind else "apiVersion"
            raise _bad_request(f"Object '{missing}' is missing in '{json.dumps(body, separators=(',', ':'))}'")
        if api_version and api_version != rt.api_version:
            raise _bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise _bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        body["apiVersion"], body["kind"] = rt.api_version, rt.kind
        meta = _decode_meta(body.get("metadata") or {})
        if rt.namespaced:
            if meta.get("namespace", namespace) != namespace:
                raise _bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        body["metadata"] = meta
        return _decode_typed(rt, body)

    def _create(
        self, rt: ResourceType, namespace: str, body: JSON, *, manager: str, dry_run: bool, harness: bool = False
    ) -> JSON:
        obj = self._decode_body(rt, body, namespace)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            # storage.ErrResourceVersionSetOnCreate is not a Status error: the handler answers 500.
            raise ApiError(500, "", "resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + _unique_suffix()
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if rt.custom:
            meta["generation"] = 1
            if self.has_status_subresource(rt) and not harness:
                obj.pop("status", None)
        else:
            meta.pop("generation", None)
        if rt.namespaced:
            # NamespaceLifecycle (or NamespaceAutoProvision) is mutating admission: it runs before validation.
            self._ensure_namespace(namespace, dry_run)
        causes = _validate_meta(rt, obj) + _validate_kind(rt, obj)
        if causes:
            raise _invalid(rt, meta.get("name", ""), causes)
        bucket = self._bucket(rt, namespace)
        if meta["name"] in bucket:
            raise _already_exists(rt, meta["name"])
        flat = _flatten_fields(
            obj, include_status=harness or not self.has_status_subresource(rt), atomic=rt.atomic_fields
        )
        meta["managedFields"] = _update_managed_fields(
            [], {}, flat, manager=manager, operation="Update", api_version=rt.api_version, subresource=None
        )
        if not meta["managedFields"]:
            del meta["managedFields"]
        if dry_run:
            return obj
        meta["resourceVersion"] = self._next_rv()
        bucket[meta["name"]] = obj
        return obj

    def _update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        dry_run: bool,
        subresource: str | None,
        harness: bool = False,
    ) -> JSON:
        if isinstance(body, dict):
            body_name = (body.get("metadata") or {}).get("name")
            if body_name is not None and body_name != name:
                raise _bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
        new = self._decode_body(rt, body, namespace)
        new["metadata"]["name"] = name
        bucket = self._bucket(rt, namespace)
        current = bucket.get(name)
        if current is None:
            raise _not_found(rt, name)
        meta, old_meta = new["metadata"], current["metadata"]
        rv = meta.get("resourceVersion", "")
        if not rv:
            if rt.custom:
                raise _invalid(
                    rt,
                    name,
                    [_invalid_value("metadata.resourceVersion", 0, "must be specified for an update", shown="0x0")],
                )
        elif rv != old_meta["resourceVersion"]:
            raise _conflict(rt, name, _OPTIMISTIC_LOCK)
        if meta.get("uid", old_meta["uid"]) != old_meta["uid"]:
            raise _invalid(rt, name, [_invalid_value("metadata.uid", meta["uid"], "field is immutable")])
        tracks_status = not self.has_status_subresource(rt) or harness
        if subresource == "status":
            # Only status may change through /status; everything else comes from the stored object.
            new = {**copy.deepcopy(current), "status": new.get("status")}
            if new["status"] is None:
                del new["status"]
            meta = new["metadata"]
        elif not tracks_status:
            new.pop("status", None)
            if "status" in current:
                new["status"] = copy.deepcopy(current["status"])
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if rt.custom:
            # Everything outside metadata counts, except status when it is a subresource.
            meta["generation"] = old_meta.get("generation", 1)
            skip = {"metadata", "status"} if self.has_status_subresource(rt) else {"metadata"}
            if {k: v for k, v in new.items() if k not in skip} != {k: v for k, v in current.items() if k not in skip}:
                meta["generation"] += 1
        else:
            meta.pop("generation", None)
        causes = _validate_meta(rt, new) + _validate_kind(rt, new)
        if causes:
            raise _invalid(rt, name, causes)
        client_fields = meta.pop("managedFields", None)
        if _without_volatile(new) == _without_volatile(current):
            return current  # a no-op write is not persisted and keeps its resourceVersion
        baseline = old_meta.get("managedFields", [])
        if client_fields is not None and client_fields != baseline:
            baseline = client_fields if isinstance(client_fields, list) else baseline
        only_status = subresource == "status"
        include_status = tracks_status or only_status
        old_flat = _flatten_fields(
            current, include_status=include_status, only_status=only_status, atomic=rt.atomic_fields
        )
        new_flat = _flatten_fields(new, include_status=include_status, only_status=only_status, atomic=rt.atomic_fields)
        fields = _update_managed_fields(
            baseline,
            old_flat,
            new_flat,
            manager=manager,
            operation="Update",
            api_version=rt.api_version,
            subresource=subresource,
        )
        if fields:
            meta["managedFields"] = fields
        if dry_run:
            return new
        meta["resourceVersion"] = self._next_rv()
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del bucket[name]  # the last finalizer is gone: the pending deletion completes
        else:
            bucket[name] = new
        return new

    def _patch(self, rt: ResourceType, namespace: str, name: str, req: Request, *, subresource: str | None) -> JSON:
        content_type = req.header("Content-Type").split(";")[0].strip().lower()
        accepted = ["application/json-patch+json", "application/merge-patch+json"]
        if not rt.custom:
            accepted.append("application/strategic-merge-patch+json")
        if content_type not in accepted:
            raise _unsupported_media(accepted)  # server-side apply is not implemented, so not offered
        try:
            patch = json.loads(req.body or b"null")
        except ValueError as exc:
            raise _bad_request(f"error decoding patch: {exc}") from exc
        current = self._bucket(rt, namespace).get(name)
        if current is None:
            raise _not_found(rt, name)
        if content_type == "application/json-patch+json":
            try:
                patched = json_patch(current, patch)
            except JsonPatchError as exc:
                raise ApiError(
                    422,
                    "Invalid",
                    "the server rejected our request due to an error in our request",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": str(exc)}]},
                ) from exc
        else:
            if not isinstance(patch, dict):
                raise _bad_request("the patch must be a JSON object for a merge patch")
            patched = merge_patch(current, patch)
        if isinstance(patched, dict) and not (patched.get("metadata") or {}).get("resourceVersion"):
            patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self._update(
            rt,
            namespace,
            name,
            patched,
            manager=self._manager(req),
            dry_run=self._dry_run(req),
            subresource=subresource,
        )

    def _delete(self, rt: ResourceType, namespace: str, name: str, req: Request) -> Response:
        options: JSON = {}
        if req.body.strip():
            try:
                options = json.loads(req.body)
            except ValueError as exc:
                raise _bad_request(f"error decoding DeleteOptions: {exc}") from exc
            if not isinstance(options, dict):
                raise _bad_request("DeleteOptions must be a JSON object")
        dry_run = self._dry_run(req) or self._dry_run_values(options.get("dryRun") or [])
        bucket = self._bucket(rt, namespace)
        current = bucket.get(name)
        if current is None:
            raise _not_found(rt, name)
        meta = current["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            why = f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}"
            raise _conflict(rt, name, why)
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            why = (
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {meta['resourceVersion']}"
            )
            raise _conflict(rt, name, why)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return Response(200, current)
            pending = copy.deepcopy(current)
            pending["metadata"]["deletionTimestamp"] = _now()
            pending["metadata"]["deletionGracePeriodSeconds"] = 0
            if not dry_run:
                pending["metadata"]["resourceVersion"] = self._next_rv()
                bucket[name] = pending
            return Response(200, pending)
        if not dry_run:
            del bucket[name]
            self._rv += 1
            if rt.kind == "Namespace":
                for by_ns in self._objects.values():
                    by_ns.pop(name, None)
        if rt.kind == "Namespace":
            return Response(200, {**current, "status": {"phase": "Terminating"}})
        if rt.custom:
            return Response(200, current)
        details = _details(rt, name)
        details["uid"] = meta["uid"]
        return Response(
            200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    def _list(self, rt: ResourceType, namespace: str | None, req: Request) -> JSON:
        labels = parse_label_selector(req.param("labelSelector") or "")
        fields = parse_field_selector(rt, req.param("fieldSelector") or "")
        try:
            limit = int(req.param("limit") or 0)
        except ValueError as exc:
            raise _bad_request(f"invalid limit: {req.param('limit')}") from exc
        token = req.param("continue")
        with self._lock:
            if token:
                rv, start = self._decode_continue(token)
                snapshot = self._snapshots.get((rt.key, namespace, rv))
                if snapshot is None:
                    raise _gone()
                self._snapshots.move_to_end((rt.key, namespace, rv))
            else:
                rv, start = self._rv, ""
                snapshot = self._scan(rt, namespace)
                snapshot.sort(key=lambda kv: kv[0])

        def selected(obj: JSON) -> bool:
            obj_labels = obj["metadata"].get("labels") or {}
            if not all(r.matches(obj_labels) for r in labels):
                return False
            return all((_field_value(obj, key) == value) == equal for key, equal, value in fields)

        index = 0
        if start:
            lo, hi = 0, len(snapshot)
            while lo < hi:  # first key strictly after `start`
                mid = (lo + hi) // 2
                if snapshot[mid][0] <= start:
                    lo = mid + 1
                else:
                    hi = mid
            index = lo
        items: list[JSON] = []
        last_key = ""
        next_key = ""
        while index < len(snapshot):
            key, obj = snapshot[index]
            index += 1
            if not selected(obj):
                continue
            if limit and len(items) == limit:
                next_key = last_key  # another match exists: the next page starts after the last one sent
                index -= 1
                break
            items.append(obj)
            last_key = key
        list_meta: JSON = {"resourceVersion": str(rv)}
        if next_key:
            with self._lock:
                self._snapshots[(rt.key, namespace, rv)] = snapshot
                self._snapshots.move_to_end((rt.key, namespace, rv))
                while len(self._snapshots) > _SNAPSHOT_CACHE_SIZE:
                    self._snapshots.popitem(last=False)
            list_meta["continue"] = self._encode_continue(rv, next_key)
            if not labels and not fields:
                list_meta["remainingItemCount"] = len(snapshot) - index
        if not rt.custom:
            items = [{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")} for obj in items]
        return {"apiVersion": rt.api_version, "kind": f"{rt.kind}List", "metadata": list_meta, "items": items}

    @staticmethod
    def _encode_continue(rv: int, last_key: str) -> str:
        payload = {"v": "meta.k8s.io/v1", "rv": rv, "start": last_key + "\x00"}
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    @staticmethod
    def _decode_continue(token: str) -> tuple[int, str]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            payload = json.loads(raw)
            if payload.get("v") != "meta.k8s.io/v1":
                raise ValueError(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
                )
            return int(payload["rv"]), str(payload["start"]).rstrip("\x00")
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise _bad_request(f"continue key is not valid: {exc}") from exc

    # -- request plumbing ---------------------------------------------------------------------

    @staticmethod
    def _dry_run_values(values: list[str]) -> bool:
        for value in values:
            if value != "All":
                raise _bad_request(f'Invalid value: "{value}": supported values: "All"')
        return bool(values)

    def _dry_run(self, req: Request) -> bool:
        return self._dry_run_values(req.query.get("dryRun", []))

    @staticmethod
    def _manager(req: Request) -> str:
        return req.param("fieldManager") or manager_from_user_agent(req.header("User-Agent"))

    @staticmethod
    def _json_body(req: Request) -> Any:
        content_type = req.header("Content-Type").split(";")[0].strip().lower()
        if content_type not in ("", "application/json", "application/yaml", "application/x-yaml", "text/yaml"):
            raise _unsupported_media(["application/json", "application/yaml"])  # no protobuf, no CBOR
        try:
            if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
                return yaml.safe_load(req.body)
            return json.loads(req.body or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise _bad_request(f"the body of the request could not be decoded: {exc}") from exc

    def authenticate(self, req: Request) -> Principal:
        auth = req.header("Authorization")
        if not auth and self.anonymous is not None:
            return self.anonymous
        if not auth.startswith("Bearer "):
            raise _unauthorized()
        principal = self.tokens.get(auth[len("Bearer ") :].strip())
        if principal is None:
            raise _unauthorized()
        return principal

    def _route(self, parts: list[str]) -> _Route | None:
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if not rest:
            return None
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            return None
        with self._lock:
            rt = self._types.get((group, version, rest[0]))
        if rt is None or (namespace is not None and not rt.namespaced):
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if rt.namespaced and namespace is None and name is not None:
            return None  # namespaced objects are only addressable inside their namespace
        if sub is not None and not (sub == "status" and self.has_status_subresource(rt)):
            return None
        return _Route(rt, namespace, name, sub)

    def handle(self, req: Request) -> Response:
        """Answer one request; ApiError becomes its Status body."""
        try:
            return self._handle(req)
        except ApiError as err:
            return Response(err.code, err.status)

    def _handle(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if path == "/version":
            return Response(200, SERVER_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        principal = self.authenticate(req)
        if path.startswith(HARNESS_PREFIX):
            return self._harness(req, principal, path[len(HARNESS_PREFIX) :])
        parts = [unquote(p) for p in path.strip("/").split("/")]
        discovery = self._discovery(parts) if len(parts) <= 3 else None
        if discovery is not None:
            if req.method != "GET":
                raise _method_not_allowed()
            return Response(200, discovery)
        route = self._route(parts)
        if route is None:
            raise _no_such_resource()
        return self._serve(req, route, principal)

    def _harness(self, req: Request, principal: Principal, command: str) -> Response:
        """The test-only side door (``/__harness__/...``), for benchmarks in another process.

        ``POST /__harness__/objects`` with ``{"objects": [...], "manager": NAME}``
        stores each object as :meth:`put_object` does (as a controller would:
        validated, resourceVersion and managedFields honest, no RBAC, no
        admission), in one request: seeding 30,000 objects takes seconds instead
        of 30,000 round trips. ``POST /__harness__/reset`` forgets every object.
        Only a cluster-admin token may use it; no real API server has it.
        """
        if req.method != "POST":
            raise _method_not_allowed()
        if not principal.allows("create", "*", "*", None, None):
            raise _forbidden(principal.user, "create", self.kind("ConfigMap"), None, None, None)
        if command == "objects":
            payload = self._json_body(req)
            if not isinstance(payload, dict) or not isinstance(payload.get("objects"), list):
                raise _bad_request('expected {"objects": [...]}')
            manager = str(payload.get("manager") or "test-harness")
            for obj in payload["objects"]:
                self.put_object(obj, manager=manager)
            return Response(200, {"stored": len(payload["objects"]), "resourceVersion": self.resource_version})
        if command == "reset":
            self.clear()
            return Response(200, {"reset": True})
        raise _no_such_resource()

    def _serve(self, req: Request, route: _Route, principal: Principal) -> Response:
        rt, ns, name, sub = route.rt, route.namespace, route.name, route.subresource
        method = req.method
        if method == "GET":
            if name is None and req.param("watch") in ("true", "1"):
                raise _method_not_allowed()
            verb = "get" if name is not None else "list"
        elif method == "POST":
            if name is not None:
                raise _method_not_allowed()
            verb = "create"
        elif method in ("PUT", "PATCH"):
            if name is None:
                raise _method_not_allowed()
            verb = "update" if method == "PUT" else "patch"
        elif method == "DELETE":
            verb = "delete" if name is not None else "deletecollection"
            if sub is not None:
                raise _method_not_allowed()
        else:
            raise _method_not_allowed()
        resource = f"{rt.plural}/{sub}" if sub else rt.plural
        # RBAC sees a name for a list only when the field selector pins metadata.name.
        auth_name = name if verb != "list" else self._name_from_field_selector(req)
        if not principal.allows(verb, rt.group, resource, ns, auth_name):
            raise _forbidden(principal.user, verb, rt, ns, name, sub)
        scope_ns = ns if rt.namespaced else ""
        if verb == "list":
            return Response(200, self._list(rt, ns, req), tabular=True)
        if verb == "get":
            with self._lock:
                obj = self._bucket(rt, scope_ns or "").get(name or "")
            if obj is None:
                raise _not_found(rt, name or "")
            return Response(200, obj, tabular=True)
        dry_run = self._dry_run(req)
        manager = self._manager(req)
        with self._lock:
            if verb == "create":
                obj = self._create(rt, scope_ns or "", self._json_body(req), manager=manager, dry_run=dry_run)
                return Response(201, obj)
            if verb == "update":
                obj = self._update(
                    rt,
                    scope_ns or "",
                    name or "",
                    self._json_body(req),
                    manager=manager,
                    dry_run=dry_run,
                    subresource=sub,
                )
                return Response(200, obj)
            if verb == "patch":
                return Response(200, self._patch(rt, scope_ns or "", name or "", req, subresource=sub))
            if verb == "delete":
                return self._delete(rt, scope_ns or "", name or "", req)
            listing = self._list(rt, ns, Request("GET", req.path, {k: v for k, v in req.query.items() if k != "limit"}))
            deleted = []
            for item in listing["items"]:
                item_name = item["metadata"]["name"]
                item_ns = item["metadata"].get("namespace", "")
                response = self._delete(rt, item_ns, item_name, Request("DELETE", req.path, req.query, req.headers))
                deleted.append(response.body if rt.custom else item)
            listing["items"] = deleted
            return Response(200, listing)

    @staticmethod
    def _name_from_field_selector(req: Request) -> str | None:
        m = re.fullmatch(r"metadata\.name==?([^,]+)", (req.param("fieldSelector") or "").strip())
        return m.group(1) if m else None

    # -- discovery ------------------------------------------------------------------------------

    def _discovery(self, parts: list[str]) -> JSON | None:
        types = self.served_types()
        groups: dict[str, list[ResourceType]] = {}
        for rt in types:
            groups.setdefault(rt.group, []).append(rt)
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
            }
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group_info(g, rts) for g, rts in sorted(groups.items()) if g],
            }
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups and parts[1]:
            return {"kind": "APIGroup", "apiVersion": "v1", **self._group_info(parts[1], groups[parts[1]])}
        if parts == ["api", "v1"]:
            return self._resource_list("v1", groups.get("", []))
        if len(parts) == 3 and parts[0] == "apis" and parts[1] in groups and parts[1]:
            rts = [rt for rt in groups[parts[1]] if rt.version == parts[2]]
            if rts:
                return self._resource_list(f"{parts[1]}/{parts[2]}", rts)
        return None

    @staticmethod
    def _group_info(group: str, rts: list[ResourceType]) -> JSON:
        version = {"groupVersion": f"{group}/{rts[0].version}", "version": rts[0].version}
        return {"name": group, "versions": [version], "preferredVersion": version}

    def _resource_list(self, group_version: str, rts: list[ResourceType]) -> JSON:
        resources: list[JSON] = []
        for rt in rts:
            entry: JSON = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": SERVED_VERBS,
            }
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            resources.append(entry)
            if self.has_status_subresource(rt):
                resources.append(
                    {
                        "name": f"{rt.plural}/status",
                        "singularName": "",
                        "namespaced": True,
                        "kind": rt.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


# --------------------------------------------------------------------------------------------
# kubectl's Table form
# --------------------------------------------------------------------------------------------


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(timestamp)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def as_table(body: JSON) -> JSON:
    """Render an object or list as a meta.k8s.io/v1 Table (Name, Age), what `kubectl get` asks for."""
    items = body.get("items", [body])
    rows = []
    for obj in items:
        meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        rows.append(
            {
                "cells": [meta.get("name", ""), _age(meta.get("creationTimestamp"))],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
            }
        )
    list_meta = (
        body["metadata"] if "items" in body else {"resourceVersion": body["metadata"].get("resourceVersion", "")}
    )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0},
        ],
        "rows": rows,
    }


# --------------------------------------------------------------------------------------------
# HTTP transport
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler; one write per response, Nagle off (each call would gain ~40 ms)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log: benchmarks make thousands of calls."""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            self.command,
            split.path,
            parse_qs(split.query, keep_blank_values=True),
            {k: v for k, v in self.headers.items()},
            body,
        )
        resp = self.server.state.handle(req)
        payload = resp.body
        if resp.tabular and "as=Table" in req.header("Accept"):
            payload = as_table(payload)
        data = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        self._send(resp.code, data, resp.content_type)

    def _send(self, code: int, data: bytes, content_type: str) -> None:
        head = [
            f"HTTP/1.1 {code} {HTTPStatus(code).phrase}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(data)}",
            "Cache-Control: no-cache, private",
            f"Date: {self.date_time_string()}",
        ]
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def do_HEAD(self) -> None:
        self._send(405, b"", "text/plain")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    #: The default backlog of 5 drops SYNs under benchmark concurrency (1 s retransmit stalls).
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], state: ApiState) -> None:
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        #: TCP connections accepted so far: lets tests check that clients keep connections alive.
        self.connections_accepted = 0
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
                self.connections_accepted += 1
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        """Close kept-alive client connections so stop() does not leave threads blocked on reads."""
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class K8sTestServer:
    """A running Kubernetes API test server: `.url`, tokens, harness access, reset and stop."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        no_argo_crds: bool = False,
        status_subresource: bool | None = None,
        auto_namespaces: bool = False,
        namespaces: Iterable[str] = (),
        admin_token: str = DEFAULT_ADMIN_TOKEN,
        rbac: str | Path | Mapping[str, Any] | None = None,
        rbac_token: str = DEFAULT_RBAC_TOKEN,
        rbac_namespace: str | None = None,
        anonymous_admin: bool = False,
    ) -> None:
        self._initial_anonymous = load_principal(None, user="system:anonymous") if anonymous_admin else None
        self.state = ApiState(
            argo_crds=not no_argo_crds,
            status_subresource=status_subresource,
            auto_namespaces=auto_namespaces,
            namespaces=namespaces,
        )
        self.admin_token = admin_token
        self._initial_tokens: dict[str, Principal] = {admin_token: load_principal(None)}
        if rbac is not None:
            self._initial_tokens[rbac_token] = load_principal(rbac, namespace=rbac_namespace)
        self._initial_config = (not no_argo_crds, auto_namespaces)
        self.state.tokens = dict(self._initial_tokens)
        self.state.anonymous = self._initial_anonymous
        self._httpd = _HTTPServer((host, port), self.state)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="k8s-test-server", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since start (not reset): keep-alive makes this small."""
        return self._httpd.connections_accepted

    def stop(self) -> None:
        """Stop serving and close kept-alive connections."""
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget all objects and added tokens; restore the start-up configuration.

        The resourceVersion keeps increasing across resets, like a real cluster's: a client that
        cached an old version can never mistake it for a current one.
        """
        argo_crds, auto_namespaces = self._initial_config
        self.state.set_argo_crds(argo_crds)
        self.state.auto_namespaces = auto_namespaces
        self.state.tokens = dict(self._initial_tokens)
        self.state.anonymous = self._initial_anonymous
        self.state.clear()

    def add_token(
        self,
        token: str,
        role: str | Path | Mapping[str, Any] | None = None,
        *,
        user: str | None = None,
        namespace: str | None = None,
    ) -> Principal:
        """Accept `token`; `role=None` is cluster-admin, else a Role/ClusterRole file, YAML text or dict."""
        principal = load_principal(role, user=user, namespace=namespace)
        self.state.tokens[token] = principal
        return principal

    def remove_token(self, token: str) -> None:
        self.state.tokens.pop(token, None)

    def allow_anonymous(
        self, role: str | Path | Mapping[str, Any] | None = None, *, namespace: str | None = None
    ) -> None:
        """Serve requests without credentials as `role` (None: cluster-admin) until the next reset.

        Needed for kubectl: client-go drops bearer tokens on plain-http connections
        (kubernetes/kubectl#744), so kubectl reaches this server without credentials.
        """
        self.state.anonymous = load_principal(role, user="system:anonymous", namespace=namespace)

    def deny_anonymous(self) -> None:
        self.state.anonymous = None

    def write_kubeconfig(self, path: str | Path, token: str | None = None, *, namespace: str = "default") -> Path:
        """Write a kubeconfig for this server; the admin token unless `token` is given."""
        return write_kubeconfig(path, self.url, token or self.admin_token, namespace=namespace)

    def set_argo_crds(self, installed: bool) -> None:
        """Install or remove the Argo CRDs at runtime (until the next reset)."""
        self.state.set_argo_crds(installed)

    def create_namespace(self, name: str) -> None:
        """Create namespace `name` (until the next reset), as an administrator would."""
        self.state.create_namespace(name)

    def set_auto_namespaces(self, enabled: bool) -> None:
        """Create missing namespaces on a create (NamespaceAutoProvision) or not, until the next reset."""
        self.state.auto_namespaces = enabled

    # Harness-side access, for arranging state the way a controller or another user would.
    def put_object(self, obj: Mapping[str, Any], *, manager: str = "test-harness") -> JSON:
        return self.state.put_object(obj, manager=manager)

    def get_object(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        return self.state.get_object(kind, namespace, name)

    def list_objects(self, kind: str, namespace: str | None = None) -> list[JSON]:
        return self.state.list_objects(kind, namespace)

    def set_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> JSON:
        return self.state.set_status(kind, namespace, name, status)

    def delete_object(self, kind: str, namespace: str | None, name: str) -> bool:
        return self.state.delete_object(kind, namespace, name)

    @property
    def resource_version(self) -> str:
        return self.state.resource_version

    def __enter__(self) -> K8sTestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    *,
    port: int = 0,
    no_argo_crds: bool = False,
    status_subresource: bool | None = None,
    auto_namespaces: bool = False,
    namespaces: Iterable[str] = (),
    admin_token: str = DEFAULT_ADMIN_TOKEN,
    rbac: str | Path | Mapping[str, Any] | None = None,
    rbac_token: str = DEFAULT_RBAC_TOKEN,
    rbac_namespace: str | None = None,
    anonymous_admin: bool = False,
) -> K8sTestServer:
    """Start a server on 127.0.0.1 (port 0 = any free port) in a background thread."""
    return K8sTestServer(
        port=port,
        no_argo_crds=no_argo_crds,
        status_subresource=status_subresource,
        auto_namespaces=auto_namespaces,
        namespaces=namespaces,
        admin_token=admin_token,
        rbac=rbac,
        rbac_token=rbac_token,
        rbac_namespace=rbac_namespace,
        anonymous_admin=anonymous_admin,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the server as its own process; print the URL (one flushed line) and serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.k8s_server", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-argo-crds", action="store_true", help="serve without the Argo CRDs (404s)")
    parser.add_argument(
        "--status-subresource",
        choices=["crd", "all", "none"],
        default="crd",
        help="status subresource: as each published CRD (default), on every Argo kind, or on none",
    )
    parser.add_argument(
        "--auto-namespaces", action="store_true", help="create a missing namespace on a create (default: 404)"
    )
    parser.add_argument(
        "--namespace", action="append", default=[], help="a namespace that exists at start (repeatable)"
    )
    parser.add_argument("--admin-token", default=DEFAULT_ADMIN_TOKEN)
    parser.add_argument("--rbac", help="Role/ClusterRole YAML; its token is --rbac-token")
    parser.add_argument("--rbac-token", default=DEFAULT_RBAC_TOKEN)
    parser.add_argument("--rbac-namespace", help="grant the Role in this namespace instead of its own")
    parser.add_argument("--kubeconfig", help="also write an admin kubeconfig here")
    parser.add_argument(
        "--anonymous-admin", action="store_true", help="treat requests without credentials as admin (for kubectl)"
    )
    args = parser.parse_args(argv)
    server = start_server(
        port=args.port,
        no_argo_crds=args.no_argo_crds,
        status_subresource={"crd": None, "all": True, "none": False}[args.status_subresource],
        auto_namespaces=args.auto_namespaces,
        namespaces=args.namespace,
        admin_token=args.admin_token,
        rbac=args.rbac,
        rbac_token=args.rbac_token,
        rbac_namespace=args.rbac_namespace,
        anonymous_admin=args.anonymous_admin,
    )
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(server.url, flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
