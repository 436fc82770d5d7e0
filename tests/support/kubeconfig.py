"""Write kubeconfig files that point the official clients at a test server.

Tests, benchmarks and `kubectl` all reach the Kubernetes API test server (or the counting proxy in
front of it) the same way they would reach a real cluster: through a kubeconfig file. Keeping the
file format in one place means the backends are exercised through `kubernetes.config` loading too,
not through a hand-built `Configuration` that production code never uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["kubeconfig_dict", "write_kubeconfig"]


def kubeconfig_dict(
    server_url: str,
    token: str,
    *,
    namespace: str = "default",
    name: str = "flowplan-test",
) -> dict[str, Any]:
    """Return a one-cluster, one-user, one-context kubeconfig as a dict.

    The same `name` is used for cluster, user and context so a test can select it without
    knowing more than one string. Plain `http://` servers need no certificate settings.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server_url}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    }


def write_kubeconfig(
    path: str | Path,
    server_url: str,
    token: str,
    *,
    namespace: str = "default",
    name: str = "flowplan-test",
) -> Path:
    """Write a kubeconfig for `server_url` authenticating with a bearer `token`; return its path.

    Parent directories are created so callers can point at a fresh `tmp_path` sub-path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig_dict(server_url, token, namespace=namespace, name=name), sort_keys=False)
    target.write_text(text, encoding="utf-8")
    return target
