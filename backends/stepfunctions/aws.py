"""boto3 plumbing: one session, lazily created clients, and errors a person can act on.

Two clients per service:

- the *retrying* client (botocore ``standard`` retry mode: throttling, 5xx and
  connection errors, with backoff and jitter) for reads and for writes that
  may be repeated safely (``PutRule``, ``UpdateSchedule``, ``TagResource``,
  deletes that treat "not found" as done);
- the *once* client (a single attempt) for writes that are not idempotent
  (``RegisterJobDefinition`` adds a revision per call; creates answer
  "already exists" when replayed). The writer sends those once and, after an
  ambiguous outcome, reads back (:mod:`backends.stepfunctions.writer`).

Every call goes through :meth:`Aws.call` / :meth:`Aws.pages`, which turn
botocore's exceptions into flowplan's: missing or expired credentials, access
denied (naming the action and the resource), an unreachable endpoint and TLS
failures become a :class:`~planner.errors.BackendError` with a hint; throttling
and 5xx that outlived their retries a
:class:`~planner.errors.TransientError`; anything else an :class:`AwsError`
carrying AWS's error code for the caller to handle. Never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from planner import __version__
from planner.contract import remember_credential
from planner.errors import BackendError, FlowplanError, TransientError

__all__ = [
    "ALLOW_MANIFEST_CONNECTION",
    "Aws",
    "AwsError",
    "AwsOptions",
    "AwsTransientError",
    "manifest_connection_allowed",
]

log = logging.getLogger("flowplan.stepfunctions")

_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
_REJECTED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
    }
)
_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "NotAuthorized"}
)
_THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
    }
)
#: botocore's service name → the IAM prefix people see in policies.
_IAM_PREFIX = {"stepfunctions": "states", "resourcegroupstaggingapi": "tag"}
_HINT_CREDENTIALS = (
    "give flowplan AWS credentials the standard way: `aws sso login` (with AWS_PROFILE or `profile:` on the "
    "backend), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the role of the CI job or instance"
)


#: The operator's opt-in to the manifest's ``endpoint_url`` and ``verify_tls: false`` (see backend.py).
ALLOW_MANIFEST_CONNECTION = "FLOWPLAN_ALLOW_MANIFEST_CONNECTION"


def manifest_connection_allowed() -> bool:
    """Whether the operator lets the manifest choose the AWS endpoint and TLS verification."""
    return os.environ.get(ALLOW_MANIFEST_CONNECTION, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class AwsOptions:
    """How to reach AWS; from the backend's settings (and ``extra`` in tests and benchmarks)."""

    backend: str
    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    verify_tls: bool = True
    parallelism: int = 8
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int | None = None

    def where(self) -> str:
        text = f"backend {self.backend!r} in {self.region}"
        return f"{text} at {self.endpoint_url}" if self.endpoint_url else text


class AwsError(BackendError):
    """An AWS error the caller may handle by its ``code`` (``ResourceNotFoundException``, ...).

    ``ambiguous`` is true when the request may have been applied although no
    answer arrived (connection dropped after sending, read timeout, 5xx);
    ``sent`` is false when it certainly never left (connection refused).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        operation: str,
        status: int | None = None,
        ambiguous: bool = False,
        sent: bool = True,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.operation = operation
        self.status = status
        self.ambiguous = ambiguous
        self.sent = sent


class AwsTransientError(AwsError, TransientError):
    """Throttling, 5xx or a dropped connection that outlived its retries."""


class MalformedAnswer(Exception):
    """A 2xx answer of a JSON protocol whose body is not a JSON object (raised before botocore parses it)."""

    def __init__(self, status: int, content_type: str, size: int, what: str) -> None:
        super().__init__(f"HTTP {status} ({content_type}, {size} bytes) with {what}")
        self.status = status


def _check_answer(operation_model: Any, response_dict: Mapping[str, Any], **_: Any) -> None:
    """Refuse a 2xx answer that is not a JSON object before botocore reads it as "nothing there".

    botocore's JSON parsers turn a body that does not decode into ``{"message": body}``:
    an HTML page from a proxy answering a listing would read as "no state machines",
    and the plan would create everything again. Empty bodies stay allowed (deletes,
    tag calls answer with one).
    """
    status = response_dict.get("status_code")
    if not isinstance(status, int) or not 200 <= status <= 299 or operation_model.has_streaming_output:
        return
    # what botocore speaks with this endpoint (a model may list several protocols; CBOR bodies are not checked)
    service = operation_model.service_model
    protocol = getattr(service, "resolved_protocol", None) or service.metadata.get("protocol")
    if protocol not in ("json", "rest-json"):
        return
    body = response_dict.get("body") or b""
    if not body.strip():
        return
    headers = response_dict.get("headers") or {}
    content_type = str(headers.get("content-type") or "no Content-Type")
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        raise MalformedAnswer(status, content_type, len(body), f"a body that is not JSON ({exc})") from None
    if not isinstance(decoded, dict):
        found = type(decoded).__name__
        raise MalformedAnswer(status, content_type, len(body), f"JSON {found} where an object belongs")


class Aws:
    """One boto3 session and its clients for one backend; safe to share between threads."""

    def __init__(self, options: AwsOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[tuple[str, bool], Any] = {}
        self._calls: Counter[str] = Counter()

    # -- clients -----------------------------------------------------------------------

    def _new_session(self) -> Any:
        import boto3
        import botocore.session
        from botocore.exceptions import ProfileNotFound

        try:
            core = botocore.session.Session(profile=self.options.profile or None)
            core.register_component("data_loader", _shared_loader(core))
            return boto3.session.Session(botocore_session=core, region_name=self.options.region)
        except ProfileNotFound:
            raise self._no_profile() from None

    def _remember_credentials(self) -> None:
        """The resolved keys and session token, to be scrubbed from every output (resolution errors surface later)."""
        try:
            credentials = self._session.get_credentials()
            frozen = credentials.get_frozen_credentials() if credentials is not None else None
        except Exception:
            return
        if frozen is not None:
            for value in (frozen.secret_key, frozen.token, frozen.access_key):
                remember_credential(value)

    def _no_profile(self) -> BackendError:
        """The profile named by the manifest's ``profile:`` or else by ``$AWS_PROFILE`` does not exist."""
        if self.options.profile:
            named = f"the AWS profile {self.options.profile!r} (profile: on backend {self.options.backend!r})"
        else:
            # botocore reads AWS_DEFAULT_PROFILE before AWS_PROFILE
            variable = "AWS_DEFAULT_PROFILE" if os.environ.get("AWS_DEFAULT_PROFILE") else "AWS_PROFILE"
            named = f"the AWS profile {os.environ.get(variable, '')!r} named by ${variable}"
        config = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
        return BackendError(
            f"{named} is not configured in {config} (needed for {self.options.where()})",
            hint="check the profile name, or run `aws configure sso --profile NAME`",
        )

    def client(self, service: str, *, once: bool = False) -> Any:
        """The (cached) client for ``service``; ``once`` disables retries (non-idempotent writes)."""
        key = (service, once)
        with self._lock:
            existing = self._clients.get(key)
            if existing is not None:
                return existing
            from botocore.config import Config

            if self._session is None:
                self._session = self._new_session()
                self._remember_credentials()
                if not self.options.verify_tls:
                    import urllib3

                    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
                    log.warning(
                        "warning: %s does not verify the endpoint's TLS certificate (verify_tls: false); anyone on "
                        "the network path can read and change what flowplan sends",
                        self.options.where(),
                    )
            retries: dict[str, Any] = {"mode": "standard"}
            if once:
                retries["total_max_attempts"] = 1
            elif self.options.max_attempts:
                retries["total_max_attempts"] = self.options.max_attempts
            config = Config(
                region_name=self.options.region,
                retries=retries,  # type: ignore[arg-type]
                connect_timeout=self.options.connect_timeout,
                read_timeout=self.options.read_timeout,
                max_pool_connections=max(10, self.options.parallelism + 5),
                user_agent_extra=f"flowplan/{__version__}",
            )
            try:
                made = self._session.client(
                    service,
                    endpoint_url=self.options.endpoint_url or None,
                    verify=None if self.options.verify_tls else False,
                    config=config,
                )
            except Exception as exc:  # a bad profile or region surfaces here
                raise self.translate(exc, service, "client") from None
            made.meta.events.register("before-parse", _check_answer)
            self._clients[key] = made
            return made

    # -- calls -------------------------------------------------------------------------

    def calls(self) -> dict[str, int]:
        """Calls made so far, by ``service:Operation`` (each page counts)."""
        with self._lock:
            return dict(self._calls)

    def _count(self, service: str, operation: str) -> None:
        with self._lock:
            self._calls[f"{_IAM_PREFIX.get(service, service)}:{operation}"] += 1

    def call(self, service: str, operation: str, *, once: bool = False, resource: str = "", **params: Any) -> Any:
        """Call ``operation`` (CamelCase, as in IAM); translated errors, never botocore's."""
        client = self.client(service, once=once)
        method = getattr(client, _snake(operation))
        self._count(service, operation)
        try:
            return method(**params)
        except Exception as exc:
            raise self.translate(exc, service, operation, resource) from None

    def pages(self, service: str, operation: str, *, resource: str = "", **params: Any) -> Iterator[Mapping[str, Any]]:
        """Every page of a paginated operation (botocore's paginator, errors translated)."""
        client = self.client(service)
        paginator = client.get_paginator(_snake(operation))
        iterator = iter(paginator.paginate(**params))
        while True:
            self._count(service, operation)
            try:
                page = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                raise self.translate(exc, service, operation, resource) from None
            yield page

    # -- errors ------------------------------------------------------------------------

    def translate(self, exc: Exception, service: str, operation: str, resource: str = "") -> FlowplanError:
        """botocore's exception → flowplan's error (see the module docstring)."""
        if isinstance(exc, FlowplanError):
            return exc
        from botocore import exceptions as bx

        where = self.options.where()
        action = f"{_IAM_PREFIX.get(service, service)}:{operation}"
        if isinstance(exc, MalformedAnswer):
            return BackendError(
                f"{action} on {where}: the endpoint answered {exc}",
                hint="something between flowplan and AWS (a proxy, a captive portal) answered instead of AWS, or the "
                "endpoint is not an AWS API; check the network, HTTPS_PROXY and the endpoint, then try again",
            )
        if isinstance(exc, bx.ProfileNotFound):
            return self._no_profile()
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return BackendError(f"no AWS credentials found for {where}", hint=_HINT_CREDENTIALS)
        if isinstance(exc, bx.TokenRetrievalError | bx.SSOTokenLoadError | bx.UnauthorizedSSOTokenError):
            return BackendError(
                f"the AWS SSO session for {where} has expired or is missing",
                hint="run `aws sso login` (with the same profile) and try again",
            )
        if isinstance(exc, bx.SSLError):
            return BackendError(
                f"TLS verification failed talking to {where}: {exc}",
                hint="fix the endpoint's certificate (or AWS_CA_BUNDLE); verify_tls: false is for local emulators only",
            )
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
            return AwsTransientError(
                f"cannot reach AWS for {where}: {exc}",
                code="Unreachable",
                operation=action,
                sent=False,
                hint="check the network, the region and endpoint_url; a proxy needs HTTPS_PROXY",
            )
        if isinstance(exc, bx.ConnectionClosedError | bx.ReadTimeoutError | bx.ResponseStreamingError):
            return AwsTransientError(
                f"{action} on {where}: the connection dropped before AWS answered ({exc})",
                code="ConnectionDropped",
                operation=action,
                ambiguous=True,
                hint="the request may or may not have been applied; flowplan apply reads back and converges",
            )
        if isinstance(exc, bx.ClientError):
            return self._client_error(exc, action, where, resource)
        if isinstance(exc, bx.BotoCoreError):
            return BackendError(f"{action} on {where} failed: {exc}")
        return BackendError(f"{action} on {where} failed unexpectedly: {type(exc).__name__}: {exc}")

    def _client_error(self, exc: Any, action: str, where: str, resource: str) -> FlowplanError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _EXPIRED:
            return BackendError(
                f"the AWS credentials for {where} have expired ({code})",
                hint="refresh them (`aws sso login`, or a new session token) and try again",
            )
        if code in _REJECTED:
            return BackendError(f"AWS rejected the credentials for {where} ({code}: {message})", hint=_HINT_CREDENTIALS)
        if code in _DENIED or status == 403:
            target = f" on {resource}" if resource else ""
            return BackendError(
                f"AWS denied {action}{target} for {where}: {message}",
                hint=f"allow {action} to the identity flowplan runs as; examples/stepfunctions/README.md lists "
                "every action flowplan needs",
            )
        if code in _THROTTLED or (isinstance(status, int) and status >= 500):
            return AwsTransientError(
                f"{action} on {where} still failed after retries: {code}: {message}",
                code=code,
                operation=action,
                status=status,
                ambiguous=isinstance(status, int) and status >= 500,
                hint="AWS is throttling or failing; run flowplan again later (it converges)",
            )
        return AwsError(f"{action} on {where}: {code}: {message}", code=code, operation=action, status=status)


_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def _shared_loader(session: Any) -> Any:
    """One botocore data loader per process: service models are parsed once, not once per session.

    ``apply`` opens the backends twice (plan, then plan again under the lock),
    and each session would otherwise load and parse every service model again.
    """
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = session.get_component("data_loader")
        return _LOADER


def _snake(operation: str) -> str:
    out = []
    for index, char in enumerate(operation):
        if char.isupper() and index and not operation[index - 1].isupper():
            out.append("_")
        out.append(char.lower())
    return "".join(out)
