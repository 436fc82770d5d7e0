"""Reaching a Kubernetes API server: kubeconfig or in-cluster settings, and one shared ``ApiClient``.

:class:`ClusterSettings` are what the manifest (and ``extra``) say; a :class:`Connection` builds
the official client's configuration from them on first use, with urllib3's own retries switched
off and a pool of :data:`POOL_SIZE` connections (see :mod:`backends.argo.client` for why), and
is what every reader, writer, inventory and lock of a backend share.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from planner.contract import remember_credential
from planner.errors import BackendError

__all__ = [
    "ALLOW_MANIFEST_CONNECTION",
    "POOL_SIZE",
    "SERVICE_ACCOUNT_TOKEN",
    "ClusterSettings",
    "Connection",
    "manifest_connection_allowed",
]

log = logging.getLogger("flowplan.argo")

#: Connections kept per host: writes of a wave run in parallel (``--parallelism`` ≤ 64).
POOL_SIZE = 64
#: Where a pod finds its service-account token (the in-cluster auto-detection looks here).
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


#: The operator's opt-in to connection settings named by the manifest (see :meth:`ClusterSettings.from_settings`).
ALLOW_MANIFEST_CONNECTION = "FLOWPLAN_ALLOW_MANIFEST_CONNECTION"


def manifest_connection_allowed() -> bool:
    """Whether the operator lets the manifest choose the kubeconfig, context and TLS verification."""
    return os.environ.get(ALLOW_MANIFEST_CONNECTION, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class ClusterSettings:
    """How to reach the cluster, from the backend's settings (``backends.NAME`` in flows.yaml)."""

    backend: str
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool | None = None
    verify_tls: bool = True
    #: Relative kubeconfig paths are read from the manifest's directory, like the files backend's ``path``.
    base_dir: Path = field(default_factory=Path)
    #: The manifest's connection settings left unused because the operator did not allow them.
    ignored: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, backend: str, settings: Mapping[str, Any], base_dir: Path) -> ClusterSettings:
        """The settings to use; the manifest's ``kubeconfig``, ``context`` and ``verify_tls: false`` only when allowed.

        The manifest is the pull request's: a kubeconfig it names may carry an ``exec``
        credential plugin (which the official client runs while loading it) and a
        server of the author's choosing that would receive the operator's token. So
        unless :data:`ALLOW_MANIFEST_CONNECTION` is set, those settings are set aside
        (and listed in ``ignored`` for the plan to say so) and the operator's
        ``$KUBECONFIG`` or default kubeconfig is used.
        """

        def text(key: str) -> str | None:
            value = settings.get(key)
            return str(value) if value not in (None, "") else None

        in_cluster = settings.get("in_cluster")
        kubeconfig, context = text("kubeconfig"), text("context")
        verify_tls = settings.get("verify_tls") is not False
        ignored: list[str] = []
        if not manifest_connection_allowed():
            if kubeconfig is not None:
                ignored.append(f"kubeconfig: {kubeconfig}")
            if context is not None:
                ignored.append(f"context: {context}")
            if not verify_tls:
                ignored.append("verify_tls: false")
            kubeconfig, context, verify_tls = None, None, True
        return cls(
            backend=backend,
            kubeconfig=kubeconfig,
            context=context,
            in_cluster=bool(in_cluster) if in_cluster is not None else None,
            verify_tls=verify_tls,
            base_dir=base_dir,
            ignored=tuple(ignored),
        )

    def warnings(self) -> tuple[str, ...]:
        """One line for the plan when the manifest's connection settings were set aside."""
        if not self.ignored:
            return ()
        return (
            f"backend {self.backend!r}: ignored {', '.join(self.ignored)} from the manifest (the repository does not "
            f"choose the cluster or its credentials); using $KUBECONFIG or ~/.kube/config. To use the manifest's "
            f"settings, the operator sets {ALLOW_MANIFEST_CONNECTION}=1",
        )


class Connection:
    """One ApiClient for one backend, built on first use from a kubeconfig or the pod's service account.

    Built lazily (and once, under a lock) so that opening a backend never
    touches the network or the kubeconfig: `flowplan validate` and a plan of
    another backend must not fail because this cluster's credentials are
    missing.
    """

    def __init__(self, settings: ClusterSettings, *, pool_size: int = POOL_SIZE) -> None:
        self.settings = settings
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._client: Any = None
        self._apis: dict[str, Any] = {}
        self.server: str | None = None
        self.context: str | None = None
        self.in_cluster = False

    # -- loading ----------------------------------------------------------------------

    def api_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._load()
            return self._client

    def api(self, name: Literal["custom", "core", "coordination"]) -> Any:
        from kubernetes import client as k8s

        api_client = self.api_client()
        with self._lock:
            if name not in self._apis:
                # looked up by name: touching k8s.CoreV1Api loads every core model (about a second)
                cls = {"custom": "CustomObjectsApi", "core": "CoreV1Api", "coordination": "CoordinationV1Api"}
                self._apis[name] = getattr(k8s, cls[name])(api_client)
            return self._apis[name]

    def _kubeconfig_paths(self) -> tuple[str | None, str]:
        """(the kubeconfig to read or None, where it came from) — None means "no kubeconfig exists"."""
        s = self.settings
        if s.kubeconfig:
            path = Path(os.path.expanduser(s.kubeconfig))
            if not path.is_absolute():
                path = s.base_dir / path
            return (str(path) if path.exists() else None), f"backends.{s.backend}.kubeconfig ({path})"
        env = os.environ.get("KUBECONFIG", "")
        if env:
            parts = [p for p in env.split(os.pathsep) if p]
            existing = [os.path.expanduser(p) for p in parts if Path(os.path.expanduser(p)).exists()]
            return (os.pathsep.join(existing) if existing else None), f"$KUBECONFIG ({env})"
        default = Path(os.path.expanduser("~/.kube/config"))
        return (str(default) if default.exists() else None), f"the default kubeconfig ({default})"

    def _load(self) -> Any:
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config
        from kubernetes.config.config_exception import ConfigException

        s = self.settings
        cfg = type.__call__(k8s.Configuration)
        use_cluster = s.in_cluster
        path, source = (None, "") if use_cluster else self._kubeconfig_paths()
        if use_cluster is None and path is None and _in_pod():
            use_cluster = True
        if use_cluster:
            try:
                k8s_config.load_incluster_config(client_configuration=cfg)
            except ConfigException as exc:
                raise BackendError(
                    f"backend {s.backend!r}: cannot use the pod's service account ({exc})",
                    hint="in_cluster: true works only inside a Kubernetes pod with a mounted service-account token; "
                    "elsewhere set backends.NAME.kubeconfig or $KUBECONFIG",
                ) from None
            self.in_cluster = True
            self.context = None
        else:
            if path is None:
                hint = "point $KUBECONFIG at a kubeconfig file, or run flowplan in a pod (in_cluster: true)"
                if s.ignored:
                    hint += (
                        f"; the manifest's {', '.join(s.ignored)} was ignored (the operator allows it with "
                        f"{ALLOW_MANIFEST_CONNECTION}=1)"
                    )
                raise BackendError(f"backend {s.backend!r}: no kubeconfig found at {source}", hint=hint)
            self.context = self._pick_context(path, source)
            if s.kubeconfig:
                self._refuse_commands(path, source)
            try:
                k8s_config.load_kube_config(
                    config_file=path, context=self.context, client_configuration=cfg, persist_config=False
                )
            except (ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as exc:
                raise BackendError(
                    f"backend {s.backend!r}: cannot use context {self.context!r} of {source}: {exc}",
                    hint="check the kubeconfig with `kubectl config view --minify --context CONTEXT`",
                ) from None
            if not cfg.verify_ssl and s.verify_tls:
                # Turning verification off takes the backend's own explicit setting (which every plan warns about).
                raise BackendError(
                    f"backend {s.backend!r}: context {self.context!r} of {source} turns TLS verification off "
                    "(insecure-skip-tls-verify: true)",
                    hint="give the cluster's CA (certificate-authority-data) in the kubeconfig; or, knowingly, set "
                    f"verify_tls: false on backend {s.backend!r} (every plan then warns about it)",
                )
        if not s.verify_tls:
            cfg.verify_ssl = False
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            log.warning(
                "warning: backend %r does not verify the API server's TLS certificate (verify_tls: false); "
                "anyone on the network path can read and change what flowplan sends",
                s.backend,
            )
        token = str((cfg.api_key or {}).get("authorization") or "")
        remember_credential(token.removeprefix("Bearer ").strip())
        remember_credential(cfg.password)
        hook = getattr(cfg, "refresh_api_key_hook", None)
        if hook is not None:
            cfg.refresh_api_key_hook = _at_most_every(REFRESH_SECONDS, hook)
        # flowplan retries itself (see the module docstring). urllib3's Retry(False) also follows no redirect: a
        # 3xx comes back as it is (an error naming the call), so no answer from another host is ever read.
        cfg.retries = False
        cfg.connection_pool_maxsize = self.pool_size
        self.server = str(cfg.host)
        api_client = k8s.ApiClient(configuration=cfg)
        from planner import __version__

        api_client.user_agent = f"flowplan/{__version__}"
        return api_client

    def _pick_context(self, path: str, source: str) -> str:
        from kubernetes import config as k8s_config
        from kubernetes.config.config_exception import ConfigException

        try:
            contexts, current = k8s_config.list_kube_config_contexts(config_file=path)
        except (ConfigException, OSError, ValueError, TypeError, AttributeError, yaml.YAMLError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(
                f"backend {self.settings.backend!r}: {source} is not a usable kubeconfig "
                f"({type(exc).__name__}: {first_line})",
                hint="check it with `kubectl config view`",
            ) from None
        names = sorted(str(c.get("name")) for c in contexts or [])
        wanted = self.settings.context
        if wanted is not None:
            if wanted not in names:
                raise BackendError(
                    f"backend {self.settings.backend!r}: context {wanted!r} is not in {source}",
                    hint=f"contexts there: {', '.join(names) or '(none)'}; fix backends.NAME.context",
                )
            return wanted
        if not current:
            raise BackendError(
                f"backend {self.settings.backend!r}: {source} has no current context",
                hint=f"set backends.NAME.context to one of: {', '.join(names) or '(none)'}",
            )
        return str(current["name"])

    def _refuse_commands(self, path: str, source: str) -> None:
        """Refuse a manifest-named kubeconfig whose user runs a command (``exec``, an ``auth-provider``'s ``cmd-path``).

        The official client runs them while loading the kubeconfig; a path the
        manifest names is the repository's choice even when the operator allowed
        it, and only the operator's own kubeconfig may run commands.
        """
        try:
            with open(path, encoding="utf-8") as handle:
                config = yaml.safe_load(handle)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise BackendError(
                f"backend {self.settings.backend!r}: {source} is not a usable kubeconfig ({type(exc).__name__})",
                hint="check it with `kubectl config view`",
            ) from None
        contexts = {str(c.get("name")): c.get("context") or {} for c in _dicts(config, "contexts")}
        user_name = (contexts.get(str(self.context)) or {}).get("user")
        for user in _dicts(config, "users"):
            settings = user.get("user") or {}
            if user.get("name") != user_name or not isinstance(settings, dict):
                continue
            if settings.get("exec") or settings.get("auth-provider"):
                raise BackendError(
                    f"backend {self.settings.backend!r}: user {user_name!r} of {source} runs a credential command "
                    "(exec or auth-provider); flowplan runs such commands only from the operator's kubeconfig",
                    hint="point $KUBECONFIG at this kubeconfig instead of naming it in the manifest",
                )

    # -- description ------------------------------------------------------------------

    def describe(self) -> str:
        """``cluster https://host:6443 (context prod)``; never raises (used in messages)."""
        try:
            self.api_client()
        except BackendError:
            return "cluster (not configured)"
        where = f"cluster {self.server}"
        if self.in_cluster:
            where += " (in-cluster)"
        elif self.context:
            where += f" (context {self.context})"
        if not self.settings.verify_tls:
            where += " [TLS NOT VERIFIED]"
        return where

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
                self._client = None
                self._apis.clear()


#: How often the kubeconfig loader's credential refresh runs at most (it runs before every request).
REFRESH_SECONDS = 1.0


def _at_most_every(seconds: float, hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """``hook``, skipped when it ran less than ``seconds`` ago.

    The kubeconfig loader installs a hook that runs before every request: it
    reloads an expired token and then sets the host, TLS and proxy settings
    again, and setting the host reads every proxy variable of the environment.
    That was a third of the client's CPU per write in a 1,000-object apply.
    A token still refreshes within ``seconds`` of expiring.
    """
    lock = threading.Lock()
    last = [-float("inf")]

    def throttled(configuration: Any) -> None:
        with lock:
            now = time.monotonic()
            if now - last[0] < seconds:
                return
            last[0] = now
        hook(configuration)
        # The loader's hook installs itself again (kube_config._set_config): without this, every
        # request after the first refresh ran it (and read the whole environment) again.
        configuration.refresh_api_key_hook = throttled

    return throttled


def _dicts(config: Any, key: str) -> list[dict[str, Any]]:
    """The mappings in the kubeconfig's list ``key`` (anything else in it skipped)."""
    items = config.get(key) if isinstance(config, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _in_pod() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and Path(SERVICE_ACCOUNT_TOKEN).exists()
