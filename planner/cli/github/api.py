"""The few GitHub REST calls flowplan's CI commands make, over the standard library's urllib.

The Action's scripts could shell out to ``gh`` or ``curl``; doing it here instead keeps the
logic testable against a local server, and lets GitHub Enterprise work through
``GITHUB_API_URL`` alone. Every failure becomes one :class:`GitHubError` naming the call and
the HTTP status (never a traceback), and the token never appears in any message: it is
registered with the CLI's scrubber and only ever sent in the ``Authorization`` header, and
only to the API's own host (a ``Link`` pointing elsewhere is not followed).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from planner.cli.redact import SECRETS, scrub
from planner.errors import FlowplanError

API_VERSION = "2022-11-28"
DEFAULT_API_URL = "https://api.github.com"
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
_TIMEOUT_SECONDS = 30


class GitHubError(FlowplanError):
    """A GitHub call failed, or the environment does not say where or as whom to call."""


@dataclass(frozen=True)
class GitHub:
    """Where and as whom to call: the API root, the token and the ``owner/name`` repository."""

    api_url: str
    token: str
    repository: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, repository: str | None = None) -> GitHub:
        """The client GitHub Actions describes in ``GITHUB_API_URL``, ``GITHUB_TOKEN``, ``GITHUB_REPOSITORY``."""
        values = os.environ if env is None else env
        token = values.get("GITHUB_TOKEN", "")
        repo = repository or values.get("GITHUB_REPOSITORY", "")
        if not token:
            raise GitHubError(
                "GITHUB_TOKEN is not set: flowplan cannot talk to GitHub",
                hint="pass `github-token` to the Action, or set GITHUB_TOKEN: ${{ github.token }} on the step",
            )
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
            raise GitHubError(f"GITHUB_REPOSITORY must be owner/name, not {repo!r}")
        SECRETS.add(token)
        return cls(values.get("GITHUB_API_URL") or DEFAULT_API_URL, token, repo)

    # -- the calls -------------------------------------------------------------------------------

    def issue_comments(self, number: int) -> list[dict[str, Any]]:
        return list(self._pages(f"/repos/{self.repository}/issues/{number}/comments?per_page=100"))

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        return self._call("POST", f"/repos/{self.repository}/issues/{number}/comments", {"body": body})

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        return self._call("PATCH", f"/repos/{self.repository}/issues/comments/{comment_id}", {"body": body})

    def delete_comment(self, comment_id: int) -> None:
        self._call("DELETE", f"/repos/{self.repository}/issues/comments/{comment_id}", None)

    def pull_request(self, number: int) -> dict[str, Any]:
        return self._call("GET", f"/repos/{self.repository}/pulls/{number}", None)

    def successful_run(self, workflow: str, head_sha: str) -> int | None:
        """The newest successful run of ``workflow`` (its file name) on ``head_sha``, if any."""
        path = (
            f"/repos/{self.repository}/actions/workflows/{_quote(workflow)}/runs"
            f"?head_sha={_quote(head_sha)}&status=success&per_page=1"
        )
        runs = self._call("GET", path, None).get("workflow_runs") or []
        return int(runs[0]["id"]) if runs else None

    def issues_with_label(self, label: str) -> list[dict[str, Any]]:
        """Open and closed issues carrying ``label`` (pull requests, which the endpoint also lists, left out)."""
        path = f"/repos/{self.repository}/issues?labels={_quote(label)}&state=all&per_page=100"
        return [issue for issue in self._pages(path) if "pull_request" not in issue]

    def create_issue(self, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        return self._call("POST", f"/repos/{self.repository}/issues", {"title": title, "body": body, "labels": labels})

    def update_issue(self, number: int, fields: dict[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", f"/repos/{self.repository}/issues/{number}", fields)

    # -- plumbing --------------------------------------------------------------------------------

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        """Every item of a list call, following ``Link: <...>; rel="next"`` on the API's own host only."""
        url: str | None = self.api_url.rstrip("/") + path
        while url is not None:
            items, link = self._request("GET", url, None)
            if not isinstance(items, list):
                raise GitHubError(f"GET {_show(url)}: expected a JSON list from GitHub, got {type(items).__name__}")
            yield from items
            match = _NEXT.search(link or "")
            url = match.group(1) if match else None
            if url is not None and urlsplit(url).netloc != urlsplit(self.api_url).netloc:
                raise GitHubError(f"GET {_show(path)}: GitHub's next page points to another host ({_show(url)})")

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        answer, _ = self._request(method, self.api_url.rstrip("/") + path, body)
        return answer if isinstance(answer, dict) else {}

    def _request(self, method: str, url: str, body: dict[str, Any] | None) -> tuple[Any, str | None]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", API_VERSION)
        request.add_header("User-Agent", "flowplan")
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        call = f"{method} {_show(url)}"
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
                raw = response.read()
                link = response.headers.get("Link")
        except urllib.error.HTTPError as exc:
            raise GitHubError(
                scrub(f"{call}: GitHub answered {exc.code} {_reason(exc)}"), hint=_hint(exc.code)
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(scrub(f"{call}: cannot reach GitHub ({reason})")) from None
        if not raw:
            return None, link
        try:
            return json.loads(raw), link
        except ValueError:
            raise GitHubError(f"{call}: GitHub's answer is not JSON") from None


def _quote(value: str) -> str:
    return quote(value, safe="")


def _show(url: str) -> str:
    """The path and query of a URL: enough to name the call, nothing that could hold a credential."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _reason(exc: urllib.error.HTTPError) -> str:
    """GitHub's own ``message`` (``Not Found``, ``Resource not accessible by integration``), else the reason."""
    try:
        message = json.loads(exc.read() or b"{}").get("message")
    except (ValueError, AttributeError, OSError):
        message = None
    return f"({message})" if message else f"({exc.reason})"


def _hint(status: int) -> str | None:
    if status == 401:
        return "the token was refused: check the `github-token` input or GITHUB_TOKEN"
    if status in (403, 404):
        return (
            "the token may lack a permission: the plan comment needs `pull-requests: write`, "
            "the drift issue `issues: write`"
        )
    if status == 429 or status >= 500:
        return "GitHub is rate limiting or failing: re-run the job"
    return None
