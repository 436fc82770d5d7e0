"""A counting, fault-injecting HTTP reverse proxy for tests and benchmarks.

Why it exists: flowplan's promises are about calls as much as results ("a plan of 500 flows
costs a handful of LIST calls, not 500 GETs"; "an apply retries an idempotent call after a
dropped connection and reads back after an ambiguous one"). Both are checked by putting this
proxy between the official client (`kubernetes`, `boto3`) and a test server (the Kubernetes API
test server, moto) and asserting on what crossed the wire, without mocking either side.

Counting. Every request is counted twice (thread-safe):
* `counts()` by meaning: `"<verb> <resource>"` for Kubernetes (`list cronworkflows`,
  `get configmaps`, `update workflows/status`; GET on a collection is `list`), `"<service>:<Op>"`
  for AWS (`states:ListStateMachines`, `scheduler:GetSchedule`), else `"<METHOD> <path>"`;
* `raw_counts()` by `"<METHOD> <path>"` (no query string).
Requests are counted when they arrive, whatever a fault rule then does with them: a count is
what the client attempted.

Faults. `proxy.rules` is a list of callables `rule(request) -> Action | None`, consulted in order
for each request. `Delay` sleeps and lets later rules and forwarding go on; the first other action
ends the request: `Respond` (answer without forwarding), `ResetBeforeForward` (drop the client
connection with a TCP RST, upstream never sees the request) or `ForwardThenReset` (upstream
processes the request, the client gets a RST instead of the answer: the ambiguous outcome).
`FaultRule` is a ready-made rule matching key/method/path with `after`/`times` budgets;
`RandomFaults` fails a seeded fraction of matching calls with a mix of fault types (5xx, 429 /
ThrottlingException, a delay past the client's timeout, a reset before forwarding, a reset after
the upstream applied the request). `ResetBeforeForward` and `ForwardThenReset` take an optional
`hook` run at the moment of the fault (the crash trials SIGKILL a child process there).

Fault counters: `faults()` by `"<action> <key>"`, `fault_types()` by type (`5xx`, `429`,
`timeout`, `reset-before`, `reset-after`, `respond 4xx`). Retries: a request identical to one
that was faulted (same method, path, query and body) arriving again is a *retry observed*;
`retries()` counts them by key, `retry_chains()` by attempts per request, and `retry_gaps()`
lists the seconds between a fault and its retry (backoff and jitter show there); `close_chains()`
ends the tracking (call it between two runs of a client, whose identical calls are not retries).

Transport. HTTP/1.1 keep-alive on both sides (one upstream connection per client connection),
TCP_NODELAY on both sides (without it each proxied call gains ~40 ms from Nagle + delayed ACK),
the Host header forwarded unchanged (AWS SigV4 signs it), responses written in one send.

Benchmarks in other processes read counts over HTTP: `GET /__proxy__/counts` (JSON object),
`GET /__proxy__/raw-counts`, `POST /__proxy__/reset`; see `fetch_counts` / `reset_remote`.
Run standalone: `python -m tests.support.proxy --upstream URL --port 0` prints its URL.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import http.client
import json
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, MutableSequence
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "FAULT_TYPES",
    "Action",
    "CountingProxy",
    "Delay",
    "FaultRule",
    "ForwardThenReset",
    "ProxyRequest",
    "RandomFaults",
    "ResetBeforeForward",
    "Respond",
    "Rule",
    "classify",
    "classify_aws",
    "classify_kubernetes",
    "fetch_counts",
    "main",
    "request_identity",
    "reset_remote",
    "start_proxy",
]

CONTROL_PREFIX = "/__proxy__/"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",  # the proxy answers 100-continue itself and sends the whole body upstream
    }
)


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def classify_kubernetes(method: str, path: str, query: str = "") -> str | None:
    """`"<verb> <resource>"` for a Kubernetes resource request, None for anything else.

    The verb is the one RBAC and audit logs use: GET on a collection is `list` (`watch` with
    `watch=true`), GET on a name is `get`; POST `create`, PUT `update`, PATCH `patch`, DELETE
    `delete` (on a collection: `deletecollection`). Subresources read `workflows/status`.
    """
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        rest = parts[3:]
    else:
        return None
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    if len(rest) > 3:
        return None
    resource = f"{rest[0]}/{rest[2]}" if len(rest) == 3 else rest[0]
    named = len(rest) >= 2
    method = method.upper()
    if method == "GET":
        if named:
            verb = "get"
        else:
            watch = parse_qs(query).get("watch", [""])[-1]
            verb = "watch" if watch in ("true", "1") else "list"
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
    return f"{verb} {resource}"


#: X-Amz-Target prefixes (JSON protocol) -> IAM service prefix.
_TARGET_PREFIXES = {
    "AWSStepFunctions": "states",
    "AWSEvents": "events",
    "AmazonSSM": "ssm",
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodb",
    "ResourceGroupsTaggingAPI_20170126": "tag",
    "Logs_20140328": "logs",
    "AWSSecurityTokenServiceV20110615": "sts",
    "AWSKMS": "kms",
    "secretsmanager": "secretsmanager",
}
#: SigV4 signing name -> (botocore service name, IAM prefix), where they differ.
_SIGNING_NAMES = {
    "states": ("stepfunctions", "states"),
    "tagging": ("resourcegroupstaggingapi", "tag"),
}
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return ""


@lru_cache(maxsize=32)
def _rest_routes(service: str) -> tuple[tuple[str, re.Pattern[str], int, str], ...]:
    """(method, path regex, literal length, operation) for a REST service, from botocore's model."""
    try:
        import botocore.session
    except ImportError:  # pragma: no cover - botocore is a flowplan dependency
        return ()
    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:
        return ()
    routes = []
    for name in model.operation_names:
        http_spec = model.operation_model(name).http
        uri = http_spec.get("requestUri", "/").split("?", 1)[0]
        pattern = ""
        literal = 0
        for piece in re.split(r"(\{[^}]+\})", uri):
            if piece.startswith("{"):
                pattern += ".+" if piece.endswith("+}") else "[^/]+"
            else:
                pattern += re.escape(piece)
                literal += len(piece)
        routes.append((http_spec.get("method", "POST"), re.compile(f"^{pattern}/?$"), literal, name))
    return tuple(routes)


def classify_aws(method: str, path: str, headers: Mapping[str, str], body: bytes = b"") -> str | None:
    """`"<service>:<Operation>"` for an AWS API call, None if it does not look like one.

    JSON-protocol services name the operation in `X-Amz-Target`; REST services (Scheduler,
    Batch) are matched against botocore's request URIs by method and path (the most literal
    match wins); query-protocol services (STS, IAM) carry `Action=` in the query or form body.
    The service comes from the SigV4 credential scope when the request is signed.
    """
    target = _header(headers, "X-Amz-Target")
    scope = _CREDENTIAL_SCOPE.search(_header(headers, "Authorization"))
    signing = scope.group(1) if scope else None
    service, prefix = _SIGNING_NAMES.get(signing or "", (signing, signing))
    if target and "." in target:
        target_prefix, operation = target.rsplit(".", 1)
        return f"{_TARGET_PREFIXES.get(target_prefix, prefix or target_prefix.lower())}:{operation}"
    if not signing or service is None:
        return None
    query = parse_qs(urlsplit(path).query)
    if not query.get("Action") and body and b"Action=" in body:
        with contextlib.suppress(UnicodeDecodeError):
            query = parse_qs(body.decode())
    if query.get("Action"):
        return f"{prefix}:{query['Action'][0]}"
    bare = urlsplit(path).path
    best: tuple[int, str] | None = None
    for route_method, regex, literal, operation in _rest_routes(service):
        if route_method == method.upper() and regex.match(bare) and (best is None or literal > best[0]):
            best = (literal, operation)
    if best is not None:
        return f"{prefix}:{best[1]}"
    return f"{prefix}:{method.upper()} {bare}"


def classify(method: str, path: str, headers: Mapping[str, str], body: bytes = b"") -> str:
    """The counting key of a request: AWS operation, else Kubernetes verb+resource, else METHOD path."""
    split = urlsplit(path)
    return (
        classify_aws(method, path, headers, body)
        or classify_kubernetes(method, split.path, split.query)
        or f"{method.upper()} {split.path}"
    )


# --------------------------------------------------------------------------------------------
# Fault rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyRequest:
    """What a rule sees of a request (the body is fully read before rules run)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    key: str
    raw_key: str


class Action:
    """Base of what a rule can tell the proxy to do with a request."""

    terminal = True

    def describe(self) -> str:
        return type(self).__name__

    @property
    def fault_type(self) -> str:
        """The family this fault belongs to in the counters (`5xx`, `429`, `timeout`, `reset-before`, ...)."""
        return self.describe()


@dataclass(frozen=True)
class Respond(Action):
    """Answer with `status` (and `body`) without forwarding: the upstream never sees the call."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)

    def describe(self) -> str:
        return f"respond {self.status}"

    @property
    def fault_type(self) -> str:
        if self.status >= 500:
            return "5xx"
        if self.status == 429 or b"Throttl" in self.body or b"TooManyRequests" in self.body:
            return "429"
        return f"respond {self.status}"

    @classmethod
    def kubernetes(
        cls, status: int, reason: str, message: str = "injected fault", *, retry_after: int | None = None
    ) -> Respond:
        """A kube-apiserver style `Status` answer, e.g. `Respond.kubernetes(429, "TooManyRequests")`."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": status,
        }
        headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
        if retry_after is not None:
            body["details"] = {"retryAfterSeconds": retry_after}
            headers.append(("Retry-After", str(retry_after)))
        return cls(status, json.dumps(body).encode(), tuple(headers))

    @classmethod
    def aws_json(cls, status: int, error_type: str, message: str = "injected fault") -> Respond:
        """An AWS JSON-protocol error, e.g. `Respond.aws_json(400, "ThrottlingException")`."""
        body = json.dumps({"__type": error_type, "message": message}).encode()
        headers = (("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", error_type))
        return cls(status, body, headers)


@dataclass(frozen=True)
class Delay(Action):
    """Sleep, then let later rules and the forwarding go on."""

    seconds: float
    terminal = False

    def describe(self) -> str:
        return f"delay {self.seconds}"

    @property
    def fault_type(self) -> str:
        return "timeout"


@dataclass(frozen=True)
class ResetBeforeForward(Action):
    """Drop the client connection (TCP RST) without forwarding: a clean failure.

    `hook` (optional) runs first, before the reset: e.g. SIGKILL the client process.
    """

    hook: Callable[[], None] | None = field(default=None, compare=False)

    def describe(self) -> str:
        return "reset-before"


@dataclass(frozen=True)
class ForwardThenReset(Action):
    """Forward, let the upstream apply it, then RST the client: the ambiguous outcome.

    `hook` (optional) runs after the upstream answered and before the reset.
    """

    hook: Callable[[], None] | None = field(default=None, compare=False)

    def describe(self) -> str:
        return "reset-after"


#: A rule looks at a request and returns an Action, or None to pass.
Rule = Callable[[ProxyRequest], Action | None]


@dataclass
class FaultRule:
    """Match requests by classified key (fnmatch), method and path regex; fire with a budget.

    `after` skips that many matching requests first; `times` limits how often it fires (None:
    always). Example: fail the second `update cronworkflows` once with a dropped connection:
    `FaultRule(ForwardThenReset(), key="update cronworkflows", after=1, times=1)`.
    """

    action: Action
    key: str | None = None
    method: str | None = None
    path: str | None = None
    after: int = 0
    times: int | None = None
    matched: int = 0
    fired: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __call__(self, request: ProxyRequest) -> Action | None:
        if self.key is not None and not fnmatch.fnmatchcase(request.key, self.key):
            return None
        if self.method is not None and request.method.upper() != self.method.upper():
            return None
        if self.path is not None and not re.search(self.path, request.path):
            return None
        with self._lock:
            self.matched += 1
            if self.matched <= self.after or (self.times is not None and self.fired >= self.times):
                return None
            self.fired += 1
        return self.action


#: The fault types `RandomFaults` draws from, and their default weights.
FAULT_TYPES: tuple[str, ...] = ("5xx", "429", "timeout", "reset-before", "reset-after")


#: Body fields an SDK fills with a fresh value per call (botocore's idempotency tokens): not part of identity.
_PER_CALL_FIELDS = ("ClientToken", "clientToken")


def request_identity(request: ProxyRequest) -> str:
    """What makes two requests "the same request" (a retry): method, path, query and body.

    A JSON body's per-call idempotency token (botocore fills ``ClientToken`` anew for each
    call it makes) is left out, so the same create sent again counts as the same request.
    """
    body = request.body
    if body[:1] == b"{" and any(f.encode() in body for f in _PER_CALL_FIELDS):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            data = json.loads(body)
            if isinstance(data, dict):
                for name in _PER_CALL_FIELDS:
                    data.pop(name, None)
                body = json.dumps(data, sort_keys=True).encode()
    digest = hashlib.sha256(body).hexdigest()[:16]
    return f"{request.method} {request.path}?{request.query} {digest}"


@dataclass
class RandomFaults:
    """Fail a seeded fraction of matching requests, drawing the fault type from a weighted mix.

    The draw for a request depends only on the seed, the request's identity (method, path,
    query, body) and how often that identity was seen before, not on thread timing: the same
    seed against the same calls injects the same faults. `flavor` shapes error bodies like the
    upstream would (`kubernetes` Status objects, `aws` JSON errors); `timeout` is how long a
    `timeout` fault holds a request before forwarding it (set it past the client's read
    timeout: the client gives up, the upstream still applies it). `match` limits which requests
    may fail (by default every one; control paths are never proxied to rules). `injected`
    counts faults by type; `budget` caps the total (None: no cap).
    """

    seed: int
    rate: float = 0.1
    flavor: str = "kubernetes"
    weights: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(FAULT_TYPES, 1.0))
    timeout: float = 1.5
    match: Callable[[ProxyRequest], bool] | None = None
    budget: int | None = None
    injected: Counter[str] = field(default_factory=Counter)
    _seen: Counter[str] = field(default_factory=Counter, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _draw(self, identity: str, occurrence: int) -> random.Random:
        key = f"{self.seed}|{identity}|{occurrence}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))

    def action_for(self, fault: str) -> Action:
        if fault == "5xx":
            if self.flavor == "aws":
                return Respond.aws_json(500, "InternalFailure", "injected fault")
            return Respond.kubernetes(500, "InternalError", "injected fault")
        if fault == "429":
            if self.flavor == "aws":
                return Respond.aws_json(400, "ThrottlingException", "Rate exceeded (injected)")
            return Respond.kubernetes(429, "TooManyRequests", "injected fault")
        if fault == "timeout":
            return Delay(self.timeout)
        if fault == "reset-before":
            return ResetBeforeForward()
        if fault == "reset-after":
            return ForwardThenReset()
        raise ValueError(f"unknown fault type {fault!r}")

    def __call__(self, request: ProxyRequest) -> Action | None:
        if self.match is not None and not self.match(request):
            return None
        identity = request_identity(request)
        with self._lock:
            self._seen[identity] += 1
            occurrence = self._seen[identity]
            if self.budget is not None and sum(self.injected.values()) >= self.budget:
                return None
        rng = self._draw(identity, occurrence)
        if rng.random() >= self.rate:
            return None
        kinds = [k for k, w in self.weights.items() if w > 0]
        fault = rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]
        with self._lock:
            self.injected[fault] += 1
        return self.action_for(fault)


# --------------------------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------------------------


class _UpstreamConnection(http.client.HTTPConnection):
    """Keep-alive upstream connection with Nagle off."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _ConnectionDropped(Exception):
    """Internal: the handler dropped the client connection on purpose."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: benchmarks push thousands of requests through."""

    def setup(self) -> None:
        super().setup()
        self._upstream: _UpstreamConnection | None = None
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError, ValueError):
                super().finish()
            if self._upstream is not None:
                self._upstream.close()
        finally:
            self.server.track(self.connection, add=False)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        body = self._read_body()
        if split.path.startswith(CONTROL_PREFIX):
            self._control(split.path[len(CONTROL_PREFIX) :])
            return
        headers = {k: v for k, v in self.headers.items()}
        proxy = self.server.proxy
        request = ProxyRequest(
            method=self.command,
            path=split.path,
            query=split.query,
            headers=headers,
            body=body,
            key=classify(self.command, self.path, headers, body),
            raw_key=f"{self.command} {split.path}",
        )
        identity = proxy._count(request)
        try:
            for rule in list(proxy.rules):
                action = rule(request)
                if action is None:
                    continue
                proxy._record_fault(action, request, identity)
                if isinstance(action, Delay):
                    time.sleep(action.seconds)
                    continue
                if isinstance(action, Respond):
                    self._send(action.status, list(action.headers), action.body)
                    return
                if isinstance(action, ResetBeforeForward):
                    if action.hook is not None:
                        action.hook()
                    self._reset()
                if isinstance(action, ForwardThenReset):
                    with contextlib.suppress(_ConnectionDropped):
                        self._forward(request)
                    if action.hook is not None:
                        action.hook()
                    self._reset()
                if action.terminal:
                    raise TypeError(f"unknown terminal action {action!r}")
            status, resp_headers, resp_body = self._forward(request)
            try:
                self._send(status, resp_headers, resp_body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a delay past its timeout)
        except _ConnectionDropped:
            return

    def _forward(self, request: ProxyRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        target = proxy.upstream_prefix + request.path + (f"?{request.query}" if request.query else "")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        for attempt in (1, 2):
            reused = self._upstream is not None
            if self._upstream is None:
                self._upstream = _UpstreamConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.timeout)
            conn = self._upstream
            try:
                conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
                for key, value in headers:
                    conn.putheader(key, value)
                if request.body or request.method in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(request.body)))
                conn.endheaders(request.body or None)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                self._upstream = None
                # A kept-alive connection the upstream closed while idle: retry once on a new one.
                if reused and attempt == 1:
                    continue
                raise _ConnectionDropped() from self._bad_gateway(exc)
            except OSError as exc:
                conn.close()
                self._upstream = None
                raise _ConnectionDropped() from self._bad_gateway(exc)
            if resp.will_close:
                conn.close()
                self._upstream = None
            out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            return resp.status, out_headers, data
        raise AssertionError("unreachable")

    def _bad_gateway(self, exc: Exception) -> Exception:
        message = json.dumps({"message": f"proxy: upstream failed: {exc}"}).encode()
        with contextlib.suppress(OSError):
            self._send(502, [("Content-Type", "application/json")], message)
        return exc

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(body) if self.command != 'HEAD' else 0}")
        if self.close_connection:
            lines.append("Connection: close")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(payload + (body if self.command != "HEAD" else b""))

    def _reset(self) -> None:
        """Close the client connection with a RST (SO_LINGER 0), not a FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError, ValueError):
            self.rfile.close()  # makefile() holds a reference; the socket only closes once it is gone
        with contextlib.suppress(OSError):
            self.connection.close()
        raise _ConnectionDropped()

    def _control(self, command: str) -> None:
        proxy = self.server.proxy
        if command == "counts" and self.command == "GET":
            payload: Any = proxy.counts()
        elif command == "raw-counts" and self.command == "GET":
            payload = proxy.raw_counts()
        elif command == "faults" and self.command == "GET":
            payload = proxy.faults()
        elif command == "fault-types" and self.command == "GET":
            payload = proxy.fault_types()
        elif command == "retries" and self.command == "GET":
            payload = proxy.retries()
        elif command == "reset" and self.command == "POST":
            proxy.reset_counts()
            payload = {"reset": True}
        else:
            self._send(404, [("Content-Type", "application/json")], b'{"message":"unknown proxy control"}')
            return
        self._send(200, [("Content-Type", "application/json")], json.dumps(payload, sort_keys=True).encode())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], proxy: CountingProxy) -> None:
        self.proxy = proxy
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
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class CountingProxy:
    """A running proxy: `.url`, counts, `rules` for faults, `stop()`."""

    def __init__(self, upstream_url: str, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0) -> None:
        upstream = urlsplit(upstream_url)
        if upstream.scheme != "http" or not upstream.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream_url!r}")
        self.upstream_url = upstream_url
        self.upstream_host = upstream.hostname
        self.upstream_port = upstream.port or 80
        self.upstream_prefix = upstream.path.rstrip("/")
        self.timeout = timeout
        #: Fault rules, consulted in order per request; mutate freely (e.g. `proxy.rules.append(...)`).
        self.rules: MutableSequence[Rule] = []
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._raw: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._fault_types: Counter[str] = Counter()
        self._retries: Counter[str] = Counter()
        self._chains: Counter[int] = Counter()
        self._gaps: list[tuple[int, float]] = []
        #: identity -> (attempt number, time of the fault) for requests whose last attempt was faulted
        self._faulted: dict[str, tuple[int, float]] = {}
        self._attempt: dict[str, int] = {}
        self._server = _ProxyServer((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="counting-proxy", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections_accepted(self) -> int:
        """Client TCP connections accepted since start."""
        return self._server.connections_accepted

    def _count(self, request: ProxyRequest) -> str:
        """Count a request; one identical to a request whose last attempt was faulted is a retry."""
        identity = request_identity(request)
        with self._lock:
            self._counts[request.key] += 1
            self._raw[request.raw_key] += 1
            earlier = self._faulted.pop(identity, None)
            if earlier is None:
                self._attempt[identity] = 1
            else:
                attempt = earlier[0] + 1
                self._attempt[identity] = attempt
                self._retries[request.key] += 1
                self._chains[attempt] += 1
                self._gaps.append((attempt, time.monotonic() - earlier[1]))
        return identity

    def _record_fault(self, action: Action, request: ProxyRequest, identity: str | None = None) -> None:
        with self._lock:
            self._faults[f"{action.describe()} {request.key}"] += 1
            self._fault_types[action.fault_type] += 1
            if identity is not None:
                self._faulted[identity] = (self._attempt.get(identity, 1), time.monotonic())

    def counts(self) -> dict[str, int]:
        """Requests by meaning (`list cronworkflows`, `states:ListStateMachines`, ...)."""
        with self._lock:
            return dict(self._counts)

    def raw_counts(self) -> dict[str, int]:
        """Requests by `METHOD /path`."""
        with self._lock:
            return dict(self._raw)

    def faults(self) -> dict[str, int]:
        """Actions taken by rules, by `"<action> <key>"` (e.g. `respond 500 update cronworkflows`)."""
        with self._lock:
            return dict(self._faults)

    def fault_types(self) -> dict[str, int]:
        """Faults injected by type: `5xx`, `429`, `timeout`, `reset-before`, `reset-after`, `respond 4xx`."""
        with self._lock:
            return dict(self._fault_types)

    def retries(self) -> dict[str, int]:
        """Retries observed (a faulted request seen again), by key."""
        with self._lock:
            return dict(self._retries)

    def retry_chains(self) -> dict[int, int]:
        """How often a request arrived for its 2nd, 3rd, ... attempt after faults (attempt → count)."""
        with self._lock:
            return dict(self._chains)

    def retry_gaps(self) -> list[tuple[int, float]]:
        """(attempt number, seconds since the fault before it) for every retry observed."""
        with self._lock:
            return list(self._gaps)

    def close_chains(self) -> None:
        """Forget which requests were faulted: a request seen again from now on is not a retry (a new run)."""
        with self._lock:
            self._faulted.clear()
            self._attempt.clear()

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._raw.clear()
            self._faults.clear()
            self._fault_types.clear()
            self._retries.clear()
            self._chains.clear()
            self._gaps.clear()
            self._faulted.clear()
            self._attempt.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_proxy(upstream_url: str, *, port: int = 0, timeout: float = 60.0) -> CountingProxy:
    """Start a proxy on 127.0.0.1 forwarding to `upstream_url` (http only)."""
    return CountingProxy(upstream_url, port=port, timeout=timeout)


def fetch_counts(proxy_url: str, *, raw: bool = False) -> dict[str, int]:
    """Read a (possibly out-of-process) proxy's counts over HTTP."""
    path = "raw-counts" if raw else "counts"
    with urllib.request.urlopen(f"{proxy_url.rstrip('/')}{CONTROL_PREFIX}{path}", timeout=10) as resp:
        data: dict[str, int] = json.loads(resp.read())
    return data


def reset_remote(proxy_url: str) -> None:
    """Reset a (possibly out-of-process) proxy's counts over HTTP."""
    req = urllib.request.Request(f"{proxy_url.rstrip('/')}{CONTROL_PREFIX}reset", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def main(argv: list[str] | None = None) -> int:
    """Run the proxy as its own process; print its URL (one flushed line) and serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.proxy", description=main.__doc__)
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT to forward to")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the upstream")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every call (latency trials)")
    args = parser.parse_args(argv)
    proxy = start_proxy(args.upstream, port=args.port, timeout=args.timeout)
    if args.delay > 0:
        delay = Delay(args.delay)

        def every_call(request: ProxyRequest) -> Delay:
            return delay

        proxy.rules.append(every_call)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(proxy.url, flush=True)
    stop.wait()
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
