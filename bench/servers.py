"""The servers a benchmark talks to, each in its own process (so the planner's CPU is not shared with them).

* :func:`k8s_server`: the project's Kubernetes API test server (``tests/support/k8s_server.py``);
  large live states are seeded through its test-only ``/__harness__/`` side door.
* :func:`moto_server`: moto's server with a seeding side door (:mod:`bench.moto_server`).
* :func:`proxy`: the counting proxy (``tests/support/proxy.py``) in front of either, optionally
  adding a fixed delay to every call (``--delay``).

Every process is started by :class:`Process` and stopped by its own pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Credentials moto accepts; nothing real is ever configured for a benchmark.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    # moto reads back what it just wrote at once (the default waits 0.5 s for AWS's eventual consistency)
    "FLOWPLAN_AWS_READBACK_DELAY": "0.05",
}


class Process:
    """A child process that prints its URL on its first line; stopped by pid."""

    def __init__(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, name: str = "") -> None:
        self.name = name or args[2]
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline().strip()
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"{self.name} did not start (said {line!r})")
        self.url = line

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def k8s_server(namespace: str = "bench") -> Process:
    """The test server with the benchmark's namespace (it creates none on its own, like a cluster)."""
    return Process(["-m", "tests.support.k8s_server", "--port", "0", "--namespace", namespace], name="k8s_server")


def moto_server() -> Process:
    return Process(["-m", "bench.moto_server", "--port", "0"], env=AWS_ENV, name="moto_server")


def proxy(upstream: str, delay: float = 0.0) -> Process:
    args = ["-m", "tests.support.proxy", "--upstream", upstream, "--port", "0", "--timeout", "600"]
    if delay:
        args += ["--delay", str(delay)]
    return Process(args, name="proxy")


def post(url: str, payload: Any = None, *, token: str | None = None, timeout: float = 600.0) -> Any:
    data = json.dumps(payload if payload is not None else {}).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"POST {url}: {exc.code} {exc.read()[:1000]!r}") from None
    return json.loads(body) if body else None


def get(url: str, timeout: float = 60.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def counts(proxy_url: str) -> dict[str, int]:
    """The proxy's calls by verb/operation since its last reset."""
    return {k: int(v) for k, v in get(f"{proxy_url}/__proxy__/counts").items()}


def reset_counts(proxy_url: str) -> None:
    post(f"{proxy_url}/__proxy__/reset")


def wait_for(url: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
