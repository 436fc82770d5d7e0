"""A small stand-in for the GitHub REST API: the endpoints flowplan's CI commands call.

It keeps issues (pull requests are issues here too, as on GitHub) and their comments in
memory, answers list calls a page at a time with the ``Link`` header GitHub sends
(``per_page`` honoured, 30 by default, at most 100), and records every request (method,
path with query, JSON body, and whether it carried the expected token) so a test can check
the exact sequence a command sent. Shapes follow docs.github.com/rest/issues: a comment is
``{"id", "body", "html_url", "user", ...}``; an issue ``{"number", "title", "body", "state",
"labels": [{"name"}], ...}``; a delete answers 204 with no body.

Failures are injected per call with :meth:`GitHubServer.fail_next` (status and message), to
check that a command names the call and status and never prints the token.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_ROUTES = [
    ("GET", re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$"), "list_comments"),
    ("POST", re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$"), "create_comment"),
    ("PATCH", re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$"), "update_comment"),
    ("DELETE", re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$"), "delete_comment"),
    ("GET", re.compile(r"^/repos/([^/]+/[^/]+)/issues$"), "list_issues"),
    ("GET", re.compile(r"^/repos/([^/]+/[^/]+)/pulls/(\d+)$"), "get_pull"),
    ("GET", re.compile(r"^/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)/runs$"), "list_runs"),
    ("POST", re.compile(r"^/repos/([^/]+/[^/]+)/issues$"), "create_issue"),
    ("PATCH", re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)$"), "update_issue"),
]


@dataclass
class Request:
    method: str
    path: str
    body: Any
    authorized: bool

    @property
    def route(self) -> str:
        """Method and path without the query string: ``PATCH /repos/o/r/issues/comments/7``."""
        return f"{self.method} {self.path.split('?', 1)[0]}"


@dataclass
class State:
    token: str
    repository: str
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1000
    next_number: int = 1


class GitHubServer:
    """The server on 127.0.0.1, port 0; ``url`` is what ``GITHUB_API_URL`` should be."""

    def __init__(self, token: str = "ghs_test-token", repository: str = "acme/recsys") -> None:
        self.state = State(token=token, repository=repository)
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_state": self.state, "server_lock": self.lock})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> GitHubServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- state for tests -------------------------------------------------------------------------

    def add_pull_request(self, number: int | None = None, title: str = "change the flows", head: str = "f" * 40) -> int:
        issue = self.add_issue(title=title, pull_request=True, number=number)
        issue["pull_request"]["head_sha"] = head
        return issue["number"]  # type: ignore[no-any-return]

    def add_run(self, workflow: str, head_sha: str, conclusion: str = "success", run_id: int | None = None) -> int:
        """A finished workflow run (``GET .../actions/workflows/{file}/runs`` lists the newest first)."""
        with self.lock:
            run_id = run_id or 5000 + len(self.state.runs)
            self.state.runs.append(
                {"id": run_id, "path": f".github/workflows/{workflow}", "head_sha": head_sha, "conclusion": conclusion}
            )
            return run_id

    def add_issue(
        self,
        *,
        title: str,
        body: str = "",
        labels: tuple[str, ...] = (),
        state: str = "open",
        pull_request: bool = False,
        number: int | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            return _new_issue(self.state, title, body, list(labels), state, pull_request, number)

    def add_comment(self, issue: int, body: str) -> int:
        with self.lock:
            return _new_comment(self.state, issue, body)["id"]  # type: ignore[no-any-return]

    def comments(self, issue: int) -> list[str]:
        """Bodies of an issue's comments, oldest first."""
        with self.lock:
            return [
                c["body"] for c in sorted(self.state.comments.values(), key=lambda c: c["id"]) if c["issue"] == issue
            ]

    def requests(self) -> list[Request]:
        with self.lock:
            return list(self.state.requests)

    def routes(self) -> list[str]:
        return [r.route for r in self.requests()]

    def clear_requests(self) -> None:
        with self.lock:
            self.state.requests.clear()

    def fail_next(self, method: str, status: int, message: str) -> None:
        """Answer the next ``method`` call with ``status`` and a GitHub-shaped error body."""
        with self.lock:
            self.state.failures.append((method, status, message))


def _new_issue(
    state: State,
    title: str,
    body: str,
    labels: list[str],
    status: str,
    pull_request: bool,
    number: int | None,
) -> dict[str, Any]:
    if number is None:
        number = state.next_number
    state.next_number = max(state.next_number, number + 1)
    issue: dict[str, Any] = {
        "number": number,
        "title": title,
        "body": body,
        "state": status,
        "labels": [{"name": name} for name in labels],
        "html_url": f"https://github.example/{state.repository}/issues/{number}",
    }
    if pull_request:
        issue["pull_request"] = {"url": f"https://api.github.example/repos/{state.repository}/pulls/{number}"}
    state.issues[number] = issue
    return issue


def _new_comment(state: State, issue: int, body: str) -> dict[str, Any]:
    state.next_id += 1
    comment = {
        "id": state.next_id,
        "issue": issue,
        "body": body,
        "user": {"login": "github-actions[bot]", "type": "Bot"},
        "html_url": f"https://github.example/{state.repository}/issues/{issue}#issuecomment-{state.next_id}",
    }
    state.comments[state.next_id] = comment
    return comment


class _Handler(BaseHTTPRequestHandler):
    server_state: State
    server_lock: threading.Lock
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        state = self.server_state
        authorized = self.headers.get("Authorization") == f"Bearer {state.token}"
        with self.server_lock:
            state.requests.append(Request(method, self.path, body, authorized))
            failure = next((f for f in state.failures if f[0] == method), None)
            if failure is not None:
                state.failures.remove(failure)
                self._send(failure[1], {"message": failure[2], "documentation_url": "https://docs.github.com/rest"})
                return
            if not authorized:
                self._send(401, {"message": "Bad credentials"})
                return
            self._route(method)

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        for verb, pattern, name in _ROUTES:
            match = pattern.match(parts.path)
            if verb == method and match:
                if match.group(1) != self.server_state.repository:
                    self._send(404, {"message": "Not Found"})
                    return
                getattr(self, "_" + name)(*match.groups()[1:], query=query)
                return
        self._send(404, {"message": "Not Found"})

    # -- endpoints -------------------------------------------------------------------------------

    def _list_comments(self, number: str, *, query: dict[str, str]) -> None:
        if int(number) not in self.server_state.issues:
            self._send(404, {"message": "Not Found"})
            return
        found = sorted(
            (c for c in self.server_state.comments.values() if c["issue"] == int(number)), key=lambda c: c["id"]
        )
        self._page([_public(c) for c in found], query)

    def _create_comment(self, number: str, *, query: dict[str, str]) -> None:
        if int(number) not in self.server_state.issues:
            self._send(404, {"message": "Not Found"})
            return
        self._send(201, _public(_new_comment(self.server_state, int(number), self._body()["body"])))

    def _update_comment(self, comment_id: str, *, query: dict[str, str]) -> None:
        comment = self.server_state.comments.get(int(comment_id))
        if comment is None:
            self._send(404, {"message": "Not Found"})
            return
        comment["body"] = self._body()["body"]
        self._send(200, _public(comment))

    def _delete_comment(self, comment_id: str, *, query: dict[str, str]) -> None:
        if self.server_state.comments.pop(int(comment_id), None) is None:
            self._send(404, {"message": "Not Found"})
            return
        self._send(204, None)

    def _list_issues(self, *, query: dict[str, str]) -> None:
        wanted = {name for name in query.get("labels", "").split(",") if name}
        status = query.get("state", "open")
        found = []
        for issue in sorted(self.server_state.issues.values(), key=lambda i: -i["number"]):
            names = {label["name"] for label in issue["labels"]}
            if wanted <= names and status in ("all", issue["state"]):
                found.append(issue)
        self._page(found, query)

    def _get_pull(self, number: str, *, query: dict[str, str]) -> None:
        issue = self.server_state.issues.get(int(number))
        if issue is None or "pull_request" not in issue:
            self._send(404, {"message": "Not Found"})
            return
        head = {"sha": issue["pull_request"]["head_sha"], "repo": {"full_name": self.server_state.repository}}
        self._send(200, {"number": issue["number"], "state": issue["state"], "head": head})

    def _list_runs(self, workflow: str, *, query: dict[str, str]) -> None:
        runs = [
            run
            for run in reversed(self.server_state.runs)
            if run["path"].endswith("/" + workflow)
            and query.get("head_sha", run["head_sha"]) == run["head_sha"]
            and query.get("status", run["conclusion"]) == run["conclusion"]
        ]
        per_page = min(int(query.get("per_page", "30")), 100)
        self._send(200, {"total_count": len(runs), "workflow_runs": runs[:per_page]})

    def _create_issue(self, *, query: dict[str, str]) -> None:
        data = self._body()
        issue = _new_issue(
            self.server_state, data["title"], data.get("body", ""), list(data.get("labels", [])), "open", False, None
        )
        self._send(201, issue)

    def _update_issue(self, number: str, *, query: dict[str, str]) -> None:
        issue = self.server_state.issues.get(int(number))
        if issue is None:
            self._send(404, {"message": "Not Found"})
            return
        data = self._body()
        for key in ("title", "body", "state"):
            if key in data:
                issue[key] = data[key]
        if "labels" in data:
            issue["labels"] = [{"name": name} for name in data["labels"]]
        self._send(200, issue)

    # -- plumbing --------------------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        body = self.server_state.requests[-1].body
        return body if isinstance(body, dict) else {}

    def _page(self, items: list[dict[str, Any]], query: dict[str, str]) -> None:
        per_page = min(int(query.get("per_page", "30")), 100)
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        last = max(1, -(-len(items) // per_page))
        host = f"http://{self.headers.get('Host')}"
        base = urlsplit(self.path).path
        others = "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k not in ("page", "per_page"))
        prefix = f"{host}{base}?{others + '&' if others else ''}per_page={per_page}&page="
        if page < last:
            links.append(f'<{prefix}{page + 1}>; rel="next"')
            links.append(f'<{prefix}{last}>; rel="last"')
        if page > 1:
            links.append(f'<{prefix}1>; rel="first"')
            links.append(f'<{prefix}{page - 1}>; rel="prev"')
        self._send(200, chunk, {"Link": ", ".join(links)} if links else {})

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _public(comment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in comment.items() if k != "issue"}
