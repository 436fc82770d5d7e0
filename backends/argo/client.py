"""Talking to the Kubernetes API for the Argo backend: kinds, calls, retries and errors.

The configuration (kubeconfig, in-cluster, the shared ``ApiClient``) is
:mod:`backends.argo.connection`'s; :class:`ClusterSettings` and :class:`Connection`
are re-exported here.

Everything that knows the ``kubernetes`` client lives here, so the reader,
writer, inventory and lock speak in kinds, namespaces and JSON bodies.

Decisions worth knowing (each one cost someone time, see docs/argo-backend.md):

- **urllib3's own retries are switched off** (``Configuration.retries = False``).
  By default urllib3 replays PUT and DELETE after a dropped connection, so a
  PUT that succeeded but lost its answer comes back as 409 Conflict (the
  replay carries the old resourceVersion) and a DELETE as 404: the caller can
  no longer tell "someone changed it" from "my own write landed". flowplan
  retries itself, and reads back after an ambiguous write (see
  :mod:`backends.argo.writer`).
- Every call goes through ``ApiClient.param_serialize`` and ``call_api`` with
  the resource path spelled out (not the generated ``CoreV1Api`` /
  ``CustomObjectsApi``: see :meth:`Kube._request`) and decodes the JSON
  itself: bodies stay plain dicts for every kind (the typed models of
  ConfigMap and Lease would turn timestamps into datetimes and drop nothing
  useful), and a create answered with 200 still returns its object.
- One ``ApiClient`` per backend with a connection pool of
  :data:`backends.argo.connection.POOL_SIZE` (≥ the CLI's maximum ``--parallelism`` of 64), shared by
  all threads: urllib3's pool is thread-safe, and keep-alive connections are
  reused across the LISTs of a plan and the writes of a wave.
- Every call carries ``_request_timeout`` (connect, read) so a hung API
  server is an error, not a hung CI job.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import orjson

from backends.argo.connection import ClusterSettings, Connection
from planner.errors import BackendError, ConflictError, TransientError

__all__ = [
    "CONFIG_MAP",
    "KINDS",
    "LEASE",
    "RESOURCE_KINDS",
    "ClusterSettings",
    "Connection",
    "Failure",
    "Kind",
    "Kube",
    "MalformedAnswer",
    "MissingKindsError",
    "RetryPolicy",
]

log = logging.getLogger("flowplan.argo")

#: The field manager flowplan's writes are recorded under (``managedFields``).
FIELD_MANAGER = "flowplan"
#: (connect, read) seconds for every call.
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
#: Objects per LIST page.
PAGE_SIZE = 500
#: The most bytes flowplan reads from one answer: a page of PAGE_SIZE large Argo objects stays far below it.
MAX_ANSWER_BYTES = 256 * 1024 * 1024
#: The variable that changes :data:`MAX_ANSWER_BYTES`.
MAX_ANSWER_ENV = "FLOWPLAN_MAX_ANSWER_BYTES"

T = TypeVar("T")


# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Kind:
    """One Kubernetes resource type flowplan reads or writes."""

    kind: str
    group: str
    version: str
    plural: str
    #: What installs it, for the "missing CRDs" message (None: built into Kubernetes).
    product: str | None = None
    install: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``cronworkflows.argoproj.io`` / ``configmaps``: how RBAC and errors name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def custom(self) -> bool:
        return self.group == "argoproj.io"


_WORKFLOWS_INSTALL = (
    "kubectl create namespace argo; kubectl apply -n argo -f "
    "https://github.com/argoproj/argo-workflows/releases/latest/download/install.yaml"
)
_EVENTS_INSTALL = (
    "kubectl create namespace argo-events; kubectl apply -f "
    "https://raw.githubusercontent.com/argoproj/argo-events/stable/manifests/install.yaml"
)
WORKFLOW_TEMPLATE = Kind(
    "WorkflowTemplate", "argoproj.io", "v1alpha1", "workflowtemplates", "Argo Workflows", _WORKFLOWS_INSTALL
)
CRON_WORKFLOW = Kind("CronWorkflow", "argoproj.io", "v1alpha1", "cronworkflows", "Argo Workflows", _WORKFLOWS_INSTALL)
SENSOR = Kind("Sensor", "argoproj.io", "v1alpha1", "sensors", "Argo Events", _EVENTS_INSTALL)
EVENT_SOURCE = Kind("EventSource", "argoproj.io", "v1alpha1", "eventsources", "Argo Events", _EVENTS_INSTALL)
CONFIG_MAP = Kind("ConfigMap", "", "v1", "configmaps")
LEASE = Kind("Lease", "coordination.k8s.io", "v1", "leases")

KINDS: Mapping[str, Kind] = {
    k.kind: k for k in (WORKFLOW_TEMPLATE, CRON_WORKFLOW, SENSOR, EVENT_SOURCE, CONFIG_MAP, LEASE)
}
#: The kinds the compiler produces (what the reader lists), in apply order.
RESOURCE_KINDS: tuple[str, ...] = ("ConfigMap", "EventSource", "WorkflowTemplate", "CronWorkflow", "Sensor")


def kind_of(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise BackendError(f"the argo backend does not manage objects of kind {name!r}") from None


# --------------------------------------------------------------------------- retries and failures


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and equal jitter; honours Retry-After (capped).

    ``attempts`` counts every try, the first included. The defaults give up
    after about 6 s of backoff in total (plus the calls themselves).
    """

    attempts: int = 5
    base: float = 0.25
    cap: float = 4.0
    retry_after_cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` ≥ 1 tries have failed)."""
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        wait = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.retry_after_cap)


#: The policy a backend uses unless ``extra["retry"]`` says otherwise.
DEFAULT_RETRY = RetryPolicy()
#: Retry quickly in tests (the policy is per backend: ``ArgoBackend(..., extra={"retry": FAST})``).
FAST_RETRY = RetryPolicy(attempts=5, base=0.01, cap=0.05, retry_after_cap=0.2)


@dataclass(frozen=True)
class Failure:
    """One failed attempt, classified.

    ``retry``: not processed (429, connection refused): try again.
    ``ambiguous``: the request may have been applied (timeout or reset after
    sending, 5xx): a write must read back before deciding; a read retries.
    ``fatal``: an answer to act on (4xx other than 429).
    """

    kind: Literal["retry", "ambiguous", "fatal"]
    status: int | None
    reason: str
    message: str
    retry_after: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    transport: str | None = None

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def missing_type(self) -> bool:
        """A 404 for the resource type itself (CRD not installed), not for an object."""
        return self.status == 404 and not self.details.get("name")

    def describe(self) -> str:
        if self.status is None:
            return self.message
        text = f"HTTP {self.status}"
        if self.reason:
            text += f" {self.reason}"
        return f"{text}: {self.message}" if self.message else text


def classify(exc: BaseException) -> Failure:
    """Turn what the client raised into a :class:`Failure`; re-raise what is not about the API."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        body = _status_body(exc.body)
        message = str(body.get("message") or exc.reason or "")
        reason = str(body.get("reason") or exc.reason or "")
        raw_details = body.get("details")
        details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
        if status == 0:  # the client turns TLS failures into status 0
            return Failure("fatal", None, "TLS", message or str(exc), transport="tls")
        retry_after = _retry_after(exc.headers, details)
        if status == 429:
            return Failure("retry", status, reason, message, retry_after, details)
        if status >= 500:
            return Failure("ambiguous", status, reason, message, retry_after, details)
        return Failure("fatal", status, reason, message, None, details)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return classify(exc.reason)
    if isinstance(exc, urllib3.exceptions.NameResolutionError):
        return Failure("retry", None, "DNS", str(exc), transport="dns")
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return Failure("retry", None, "ConnectionRefused", str(exc), transport="refused")
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return Failure("retry", None, "ConnectTimeout", str(exc), transport="connect-timeout")
    if isinstance(exc, urllib3.exceptions.SSLError):
        return Failure("fatal", None, "TLS", str(exc), transport="tls")
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return Failure("ambiguous", None, "Timeout", str(exc), transport="timeout")
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | OSError):
        return Failure("ambiguous", None, "ConnectionLost", str(exc), transport="reset")
    raise exc


def _same(item: dict[str, Any]) -> dict[str, Any]:
    return item


def _status_body(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body.strip().startswith("{"):
        with contextlib.suppress(ValueError):
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                return parsed
    return {"message": str(body or "").strip()[:500]} if body else {}


def _retry_after(headers: Any, details: Mapping[str, Any]) -> float | None:
    value: Any = None
    if headers is not None:
        with contextlib.suppress(Exception):
            value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        value = details.get("retryAfterSeconds")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- calls


class Kube:
    """Calls for one backend: reads retried, writes tried once and classified for the caller.

    ``counts`` records every attempt by ``"<verb> <plural>"`` — the reader
    reports them in ``LiveState.calls`` and tests compare them with the proxy.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connection = connection
        self.retry = retry or DEFAULT_RETRY
        self.timeout = timeout
        self.sleep = sleep
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        #: The most bytes one answer may carry (``$FLOWPLAN_MAX_ANSWER_BYTES``, default :data:`MAX_ANSWER_BYTES`).
        self.max_answer_bytes = _max_answer_bytes()
        self._rng = random.Random()

    # -- one attempt ------------------------------------------------------------------

    def call(
        self,
        verb: Literal["list", "get", "create", "update", "delete"],
        kind: Kind,
        namespace: str,
        name: str | None = None,
        *,
        body: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        cont: str | None = None,
    ) -> dict[str, Any]:
        """One request; raises what the client raises (see :func:`classify`)."""
        with self._counts_lock:
            self.counts[f"{verb} {kind.plural}"] += 1
        write: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        if verb in ("create", "update"):
            write["field_manager"] = FIELD_MANAGER
        listing: dict[str, Any] = {}
        if label_selector:
            listing["label_selector"] = label_selector
        if field_selector:
            listing["field_selector"] = field_selector
        if limit:
            listing["limit"] = limit
        if cont:
            listing["_continue"] = cont
        resp = self._request(verb, kind, namespace, name, body, write, listing)
        try:
            data = self._read(verb, kind, namespace, name, resp)
        finally:
            with contextlib.suppress(Exception):
                resp.release_conn()
        return self._decode(verb, kind, namespace, name, resp, data)

    def _read(self, verb: str, kind: Kind, namespace: str, name: str | None, resp: Any) -> bytes:
        """The answer's body, at most :attr:`max_answer_bytes` of it (a hostile server cannot fill the memory)."""
        limit = self.max_answer_bytes
        declared = str((getattr(resp, "headers", None) or {}).get("Content-Length") or "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(verb, kind, namespace, name, f"announced {int(declared)} bytes")
        data = bytes(resp.read(limit + 1) or b"")
        if len(data) > limit:
            raise self._too_large(verb, kind, namespace, name, "sent more")
        return data

    def _too_large(self, verb: str, kind: Kind, namespace: str, name: str | None, what: str) -> MalformedAnswer:
        target = f"{kind.qualified} {namespace}/{name}" if name else f"{kind.qualified} in namespace {namespace!r}"
        return MalformedAnswer(
            f"{verb} {target} on {self.where()}: the answer {what} than flowplan reads from one call "
            f"({self.max_answer_bytes} bytes); it stopped reading",
            hint=f"a page of {PAGE_SIZE} objects is far smaller; check what answers at the kubeconfig's server, or "
            f"raise {MAX_ANSWER_ENV} if the objects really are that large",
        )

    def _decode(
        self, verb: str, kind: Kind, namespace: str, name: str | None, resp: Any, data: bytes
    ) -> dict[str, Any]:
        """The JSON object a 2xx answer carries, or a :class:`MalformedAnswer` naming the call.

        A proxy, a captive portal or a broken API server can answer 200 with an HTML
        page, a truncated body or JSON of another shape; read as "nothing there", a
        listing would plan to create everything again, so anything but a JSON object
        (with a list under ``items`` for a listing) is an error, never retried.
        """
        if not data:
            if verb in ("list", "get"):
                raise self.malformed(verb, kind, namespace, name, resp, data, "an empty body")
            return {}
        try:
            decoded = orjson.loads(data)  # listings of thousands of objects: 2x json
        except orjson.JSONDecodeError as exc:
            raise self.malformed(verb, kind, namespace, name, resp, data, f"a body that is not JSON ({exc})") from None
        if not isinstance(decoded, dict):
            found = type(decoded).__name__
            raise self.malformed(verb, kind, namespace, name, resp, data, f"JSON {found} where an object belongs")
        if verb == "list" and not isinstance(decoded.get("items", []), builtins.list):
            raise self.malformed(verb, kind, namespace, name, resp, data, "a listing whose items are not a list")
        return decoded

    def malformed(
        self, verb: str, kind: Kind, namespace: str, name: str | None, resp: Any, data: bytes, what: str
    ) -> MalformedAnswer:
        """The error for a 2xx answer flowplan cannot read: the call, the status, the content type, the size."""
        headers = getattr(resp, "headers", None) or {}
        content_type = str(headers.get("Content-Type") or "no Content-Type")
        size = len(data)
        target = f"{kind.qualified} {namespace}/{name}" if name else f"{kind.qualified} in namespace {namespace!r}"
        return MalformedAnswer(
            f"{verb} {target} on {self.where()}: the API server answered HTTP {getattr(resp, 'status', '?')} "
            f"({content_type}, {size} bytes) with {what}",
            hint="something between flowplan and the Kubernetes API (a proxy, a load balancer, a login page) "
            "answered instead of the API server, or the server is broken; check the kubeconfig's server "
            "(`kubectl cluster-info`) and try again",
        )

    #: Query parameter names of the keyword arguments the generated API classes take.
    _QUERY = {
        "label_selector": "labelSelector",
        "field_selector": "fieldSelector",
        "limit": "limit",
        "_continue": "continue",
        "dry_run": "dryRun",
        "field_manager": "fieldManager",
    }
    _METHODS = {"list": "GET", "get": "GET", "create": "POST", "update": "PUT", "delete": "DELETE"}

    def _request(
        self,
        verb: str,
        kind: Kind,
        namespace: str,
        name: str | None,
        body: Mapping[str, Any] | None,
        write: Mapping[str, Any],
        listing: Mapping[str, Any],
    ) -> Any:
        """One call through the official ``ApiClient`` with the resource path spelled out.

        The client, unchanged, minus its generated API classes: ``CoreV1Api`` loads
        every core model on first use (about a second, and every plan reads the
        inventory, a ConfigMap), and each generated method validates its arguments
        with pydantic and walks the body to sanitize it, a third of the client's CPU
        per write in a 1,000-object apply. The request is what the generated classes send:
        same path, query, headers, auth and timeout; a non-2xx answer raises the same
        ``ApiException`` (see :func:`classify`).
        """
        from kubernetes.client.exceptions import ApiException

        api_client = self.connection.api_client()
        prefix = "/api/v1" if not kind.group else f"/apis/{kind.group}/{kind.version}"
        path = f"{prefix}/namespaces/{{namespace}}/{kind.plural}" + ("/{name}" if name is not None else "")
        params = {"namespace": namespace, **({"name": name} if name is not None else {})}
        query = [(self._QUERY[k], v) for k, v in {**listing, **write}.items()]
        headers = {"Accept": "application/json"}
        if verb in ("create", "update", "delete"):
            headers["Content-Type"] = "application/json"
        method, url, header_params, _, post_params = api_client.param_serialize(
            method=self._METHODS[verb],
            resource_path=path,
            path_params=params,
            query_params=query,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        # The body is plain JSON already: given to call_api as is (the REST layer json.dumps it), it skips
        # the generated classes' walk of every value (sanitize_for_serialization), which changes nothing here.
        payload = dict(body or {}) if verb in ("create", "update", "delete") else None
        response = api_client.call_api(method, url, header_params, payload, post_params, _request_timeout=self.timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    def attempt(self, fn: Callable[[], T]) -> T | Failure:
        """Run one attempt; a failure the API or the network caused comes back as a :class:`Failure`."""
        try:
            return fn()
        except BackendError:
            raise
        except Exception as exc:
            return classify(exc)

    def backoff(self, attempt: int, failure: Failure) -> None:
        self.sleep(self.retry.delay(attempt, failure.retry_after, self._rng))

    # -- reads (retried) --------------------------------------------------------------

    def read(self, fn: Callable[[], T], *, verb: str, kind: Kind, namespace: str, name: str | None = None) -> T:
        """A read with retries: 429, 5xx, resets and timeouts are retried; anything else raised translated."""
        for attempt in range(1, self.retry.attempts + 1):
            result = self.attempt(fn)
            if not isinstance(result, Failure):
                return result
            if result.kind == "fatal" or attempt == self.retry.attempts:
                raise self.error(result, verb=verb, kind=kind, namespace=namespace, name=name, attempts=attempt)
            self.backoff(attempt, result)
        raise AssertionError("unreachable")

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (a missing CRD is still an error)."""

        def once() -> dict[str, Any] | None:
            try:
                return self.call("get", kind, namespace, name)
            except Exception as exc:
                failure = classify(exc)
                if failure.not_found and not failure.missing_type:
                    return None
                raise

        return self.read(once, verb="get", kind=kind, namespace=namespace, name=name)

    def list(
        self,
        kind: Kind,
        namespace: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> list[dict[str, Any]]:
        """Every matching object, page by page (``limit``/``continue``); restarts once if a token expires."""
        return self.list_as(
            kind, namespace, _same, label_selector=label_selector, field_selector=field_selector, page_size=page_size
        )

    def list_as(
        self,
        kind: Kind,
        namespace: str,
        convert: Callable[[dict[str, Any]], T],
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> builtins.list[T]:
        """:meth:`list`, each object converted as its page arrives (the decoded page is dropped then)."""
        for _restart in range(3):
            items: builtins.list[T] = []
            cont: str | None = None
            expired = False
            while True:

                def page(token: str | None = cont) -> dict[str, Any]:
                    return self.call(
                        "list",
                        kind,
                        namespace,
                        label_selector=label_selector,
                        field_selector=field_selector,
                        limit=page_size,
                        cont=token,
                    )

                try:
                    result = self.read(page, verb="list", kind=kind, namespace=namespace)
                except _Expired:
                    expired = True
                    break
                for item in result.get("items") or []:
                    if isinstance(item, dict):
                        items.append(convert(item))
                cont = (result.get("metadata") or {}).get("continue") or None
                del result  # the decoded page, before the next one is fetched
                if not cont:
                    break
            if not expired:
                return items
        raise TransientError(
            f"listing {kind.qualified} in namespace {namespace!r} kept expiring between pages",
            hint="the namespace changes faster than flowplan can page through it; try again",
        )

    # -- errors -----------------------------------------------------------------------

    def where(self) -> str:
        return self.connection.describe()

    def error(
        self,
        failure: Failure,
        *,
        verb: str,
        kind: Kind,
        namespace: str,
        name: str | None = None,
        attempts: int = 1,
    ) -> BackendError:
        """The error a person can act on for ``failure`` (never a traceback)."""
        where = self.where()
        target = f"{kind.kind} {namespace}/{name}" if name else f"{kind.qualified} in namespace {namespace!r}"
        if failure.status == 410 and verb == "list":
            return _Expired(failure.message)
        if failure.transport in ("refused", "dns", "connect-timeout"):
            detail = {
                "refused": "connection refused",
                "dns": f"the host name does not resolve ({_host(self.connection.server)})",
                "connect-timeout": "the connection timed out",
            }[failure.transport]
            return TransientError(
                f"cannot reach the Kubernetes API of {where}: {detail} (after {attempts} attempts)",
                hint="check that the cluster is up and that the kubeconfig points at it "
                "(`kubectl cluster-info`; wrong context? VPN?)",
            )
        if failure.transport == "tls":
            return BackendError(
                f"TLS with the Kubernetes API of {where} failed: {failure.message}",
                hint="the kubeconfig's certificate-authority data does not match the server; fix it, or (insecure, "
                "last resort) set verify_tls: false on the backend",
            )
        if failure.kind != "fatal":
            return TransientError(
                f"{verb} {target} on {where} kept failing ({failure.describe()}; {attempts} attempts)",
                hint="the API server is overloaded or unavailable; run the command again later",
            )
        if failure.status == 401:
            return BackendError(
                f"the Kubernetes API of {where} rejected flowplan's credentials (401 Unauthorized)",
                hint="the token or client certificate in the kubeconfig is missing, wrong or expired: refresh it "
                "(for example `kubectl -n NAMESPACE create token flowplan`, `aws eks update-kubeconfig`, "
                "`gcloud container clusters get-credentials`)",
            )
        if failure.status == 403:
            group = kind.group or '"" (core)'
            return BackendError(
                f"forbidden: flowplan may not {verb} {kind.qualified} in namespace {namespace!r} on {where} "
                f"(the server said: {failure.message})",
                hint=f"grant the verb {verb!r} on resource {kind.plural!r} in API group {group} in namespace "
                f"{namespace!r}; examples/argo/rbac.yaml is a Role with every verb flowplan uses "
                f"(`kubectl -n {namespace} apply -f examples/argo/rbac.yaml`)",
            )
        if failure.missing_type:
            return missing_kinds_error([kind], where)
        if failure.status is not None and 300 <= failure.status <= 399:
            return BackendError(
                f"{verb} {target} on {where}: the server answered with a redirect ({failure.describe()}); "
                "flowplan follows no redirect, so no answer (and no token) goes to another host",
                hint="the Kubernetes API never redirects these calls: check the kubeconfig's server address and "
                "anything in between (a proxy, a load balancer, a login page)",
            )
        if failure.status == 409:
            return ConflictError(f"{target}: {failure.message}", hint="run flowplan plan again, then apply")
        if failure.status == 404 and failure.details.get("kind") == "namespaces":
            # NamespaceLifecycle's answer to a write; reads of a missing namespace answer an empty list.
            missing = str(failure.details.get("name") or namespace)
            return BackendError(
                f"namespace {missing!r} does not exist on {where} ({verb} {target} was refused)",
                hint=f"create it (`kubectl create namespace {missing}`) or set the backend's namespace "
                "to one that exists",
            )
        return BackendError(
            f"{verb} {target} on {where} was refused ({failure.describe()})",
            hint="the message above is the API server's; fix what it names in the manifest or the cluster",
        )


class MalformedAnswer(BackendError):
    """A 2xx answer whose body is not the JSON object the API promises (HTML, truncated, another shape)."""


class _Expired(TransientError):
    """A LIST continue token expired (410): the listing restarts from the beginning."""


class MissingKindsError(BackendError):
    """The cluster does not serve some kinds flowplan needs (their CRDs are not installed)."""

    def __init__(self, message: str, *, hint: str, kinds: list[Kind], where: str) -> None:
        super().__init__(message, hint=hint)
        self.kinds = kinds
        self.where = where


def missing_kinds_error(kinds: list[Kind], where: str) -> MissingKindsError:
    """One message naming every CRD that is missing and what installs it."""
    by_product: dict[str, list[Kind]] = {}
    for kind in kinds:
        by_product.setdefault(kind.product or "Kubernetes", []).append(kind)
    parts = [
        f"{', '.join(sorted(k.qualified for k in group))} ({product})" for product, group in sorted(by_product.items())
    ]
    installs = sorted({k.install for k in kinds if k.install})
    hint = "install " + " and ".join(sorted(by_product)) + " in this cluster, or point the backend at the cluster that "
    hint += "runs them (check the kubeconfig context)"
    if installs:
        hint += ": " + "; ".join(installs)
    return MissingKindsError(
        f"the Kubernetes API of {where} does not serve {'; '.join(parts)}: the CRDs are not installed",
        hint=hint,
        kinds=kinds,
        where=where,
    )


def _max_answer_bytes() -> int:
    value = os.environ.get(MAX_ANSWER_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else MAX_ANSWER_BYTES


def _host(url: str | None) -> str:
    return urlsplit(url or "").hostname or str(url)
