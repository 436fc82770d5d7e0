"""Compile Metaflow flows with Metaflow itself, one isolated child process per flow, cached.

:func:`compile_flows` groups the Metaflow flows of a backend by their compile
environment, starts one :mod:`backends.metaflow._driver` process per group
(a :class:`planner.child.Child`: the request on its stdin, its status on its
stdout), which imports Metaflow once and forks a child per flow, at most
``metaflow.parallelism`` at a time, and turns each child's answer into a
:class:`CompiledFlow` or a :class:`~planner.errors.ManifestError` that points
at the flow in ``flows.yaml``.

Results are cached in a :class:`MetaflowWorkspace`, keyed by everything that
can change what Metaflow emits: the files under the flow's directory (the code
package is every file with a package suffix below it), the environment, the
arguments, the interpreter and the driver itself. ``flowplan apply`` plans
two or three times with one opened backend, whose workspace it is; the flows
compile once. The workspace's temporary directory holds the packages until
apply uploads them, and goes when the backend is closed (the CLI closes every
backend it opened when the command ends).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from backends.metaflow.settings import METAFLOW_VERSION, MetaflowSettings, compile_environment, flow_environment
from planner.child import Child
from planner.errors import BackendError, ManifestError, Problem
from planner.manifest import Flow, Manifest

__all__ = [
    "DRIVER",
    "CompiledFlow",
    "DriverStatus",
    "MetaflowWorkspace",
    "Package",
    "compile_flows",
    "compile_only",
    "metaflow_branch",
    "run_driver",
]

DRIVER = Path(__file__).with_name("_driver.py")
#: Files that can change a package: Metaflow's default suffixes (the flow's own are added).
_DEFAULT_SUFFIXES = (".py", ".R", ".RDS")
#: Seconds one compile group may take before flowplan gives up on it.
COMPILE_TIMEOUT = float(os.environ.get("FLOWPLAN_METAFLOW_TIMEOUT", "900"))

#: What a compile process keeps of the environment flowplan built for it (besides the flow's own ``metaflow.env``).
#: A flow file is the repository's code and runs during ``plan``: it sees no token, no kubeconfig, no
#: ``GITHUB_TOKEN``, and no AWS credentials when nothing in the compile talks to AWS.
_COMPILE_KEEPS = re.compile(
    r"^(PATH|HOME|LANG|LC_ALL|LC_CTYPE|TMPDIR|TZ|PYTHONHASHSEED|PYTHONDONTWRITEBYTECODE|PYTHONNOUSERSITE"
    r"|METAFLOW_[A-Z0-9_]+|SSL_CERT_FILE|REQUESTS_CA_BUNDLE)$"
)
#: Added for a Step Functions target: Metaflow's compile reads the job queue from AWS Batch
#: (``describe_job_queues``, see _driver.py), so that compile needs the operator's AWS settings.
_AWS = re.compile(r"^AWS_[A-Z0-9_]+$")


@dataclass(frozen=True)
class Package:
    """A code package: where Metaflow's runtime fetches it, its content address, and its bytes on disk."""

    url: str
    sha: str
    size: int
    path: str
    flow_name: str
    datastore_root: str

    @property
    def bucket(self) -> str:
        return self.url[len("s3://") :].split("/", 1)[0]

    @property
    def key(self) -> str:
        return self.url[len("s3://") :].split("/", 1)[1]


@dataclass(frozen=True)
class CompiledFlow:
    """What Metaflow made of one flow (see :mod:`backends.metaflow._driver` for the fields' sources)."""

    flow: str
    target: str
    flow_name: str
    workflow_name: str
    token: str
    project: str | None
    branch_name: str | None
    package: Package
    schedule: str | None
    timezone: str | None
    triggers: Sequence[Mapping[str, Any]]
    parameters: Any
    argv: Sequence[str]
    template: Mapping[str, Any] | None = None
    sensor: Mapping[str, Any] | None = None
    definition: Mapping[str, Any] | None = None
    job_definitions: Sequence[Mapping[str, Any]] = ()
    trigger_options: Any = None
    seconds: float = 0.0
    cached: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


class MetaflowWorkspace:
    """One Metaflow backend's compile cache and the temporary directory its compiles and packages live in.

    The cache and the directory belong together: a cached :class:`CompiledFlow` names its package's file in
    the directory. Owned by whoever made it (an opened :class:`~backends.metaflow.backend.MetaflowBackend`),
    which calls :meth:`close` when done; two workspaces never share a compile. ``parent`` is where the
    temporary directory is made (the system's temporary directory by default).
    """

    def __init__(self, parent: Path | None = None) -> None:
        self._parent = parent
        self._root: Path | None = None
        self._cache: dict[str, CompiledFlow] = {}
        self._lock = threading.Lock()
        #: Flows this workspace handed to Metaflow (cache hits not counted).
        self.compiled = 0

    @property
    def root(self) -> Path | None:
        """The temporary directory, once something needed it."""
        return self._root

    def directory(self, prefix: str) -> Path:
        """A new directory for one compile group or upload, inside this workspace's temporary directory."""
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="flowplan-metaflow-", dir=self._parent))
            root = self._root
        return Path(tempfile.mkdtemp(prefix=prefix, dir=root))

    def cached(self, key: str) -> CompiledFlow | None:
        with self._lock:
            return self._cache.get(key)

    def keep(self, key: str, compiled: CompiledFlow) -> None:
        with self._lock:
            self._cache[key] = compiled

    def package(self, sha: str) -> Package | None:
        """The package with this content address, if a compile of this workspace built it."""
        with self._lock:
            for compiled in self._cache.values():
                if compiled.package.sha == sha:
                    return compiled.package
        return None

    def close(self) -> None:
        """Forget every compile and remove the temporary directory (a later compile starts a new one)."""
        with self._lock:
            root, self._root = self._root, None
            self._cache.clear()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> MetaflowWorkspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def metaflow_branch(branch: str) -> str:
    """flowplan's branch as Metaflow's ``--branch`` (which allows ``[a-z0-9_]`` only): ``pr-42`` → ``pr_42``."""
    return branch.replace("-", "_")


def fallback_name(manifest: Manifest, flow: Flow, settings: MetaflowSettings, prefix: str = "") -> str:
    """``--name`` of a flow without ``@project``: flowplan's own ``<project>-<branch>-<flow>``."""
    return f"{prefix}{manifest.project}-{manifest.branch}-{flow.name}".lower().replace("_", "-")


def flow_file(manifest: Manifest, flow: Flow) -> Path:
    assert flow.metaflow is not None
    return (Path(manifest.path).resolve().parent / flow.metaflow.file).resolve()


def _tree_digest(file: Path, suffixes: Sequence[str]) -> str:
    """Digest of every file below the flow's directory that Metaflow could package (and the flow file itself)."""
    wanted = tuple(s.lower() for s in (*_DEFAULT_SUFFIXES, *suffixes))
    h = hashlib.sha256()
    root = file.parent
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if not name.lower().endswith(wanted) and Path(dirpath, name) != file:
                continue
            path = Path(dirpath, name)
            h.update(str(path.relative_to(root)).encode() + b"\0")
            try:
                h.update(path.read_bytes())
            except OSError:
                h.update(b"<unreadable>")
    return h.hexdigest()


_DRIVER_DIGEST = hashlib.sha256(DRIVER.read_bytes()).hexdigest()


@dataclass
class _Job:
    flow: Flow
    file: Path
    env: dict[str, str]
    spec: dict[str, Any]
    key: str


def compile_flows(
    manifest: Manifest,
    flows: Sequence[Flow],
    settings: MetaflowSettings,
    workspace: MetaflowWorkspace,
    *,
    name_prefix: str = "",
) -> dict[str, CompiledFlow]:
    """Compile ``flows`` (all Metaflow flows of one backend) in ``workspace``, which keeps the results;
    raises ManifestError with every problem found."""
    problems: list[Problem] = []
    jobs: list[_Job] = []
    results: dict[str, CompiledFlow] = {}
    for flow in flows:
        source = flow.metaflow
        assert source is not None
        where = f"flows.{flow.name}.metaflow.file"
        file = flow_file(manifest, flow)
        if not file.is_file():
            problems.append(
                Problem(source.loc, where, f"no such file: {source.file}", "paths are relative to the manifest")
            )
            continue
        if file.suffix != ".py":
            problems.append(Problem(source.loc, where, f"{source.file} is not a Python file"))
            continue
        try:
            env = flow_environment(settings, flow)
        except ManifestError as exc:
            problems.extend(exc.problems)
            continue
        spec = {
            "file": str(file),
            "target": settings.target,
            "production": manifest.is_production,
            "metaflow_branch": metaflow_branch(manifest.branch),
            "name": fallback_name(manifest, flow, settings, name_prefix),
            "package_suffixes": list(source.package_suffixes),
            "flow_class": source.flow_class,
        }
        key = hashlib.sha256(
            json.dumps(
                {
                    # the flow's place on disk does not enter the result: its directory's content does
                    "spec": {**spec, "file": file.name},
                    "env": env,
                    "aws": dict(settings.aws),
                    "python": settings.python,
                    "driver": _DRIVER_DIGEST,
                    "tree": _tree_digest(file, source.package_suffixes),
                },
                sort_keys=True,
            ).encode()
        ).hexdigest()
        hit = workspace.cached(key)
        if hit is not None:
            results[flow.name] = _replace_flow(hit, flow.name)
            continue
        jobs.append(_Job(flow, file, env, spec, key))
    groups: dict[str, list[_Job]] = {}
    for job in jobs:
        groups.setdefault(json.dumps(job.env, sort_keys=True), []).append(job)
    for group in groups.values():
        for job, outcome in zip(group, _run_group(group, settings, workspace), strict=True):
            if isinstance(outcome, Problem):
                problems.append(outcome)
                continue
            workspace.keep(job.key, outcome)
            results[job.flow.name] = outcome
    if problems:
        raise ManifestError(problems)
    return results


def _replace_flow(hit: CompiledFlow, name: str) -> CompiledFlow:
    from dataclasses import replace

    return replace(hit, flow=name, cached=True)


class DriverStatus(TypedDict, total=False):
    """The driver's answer on its stdout: ``ok``, and either what the mode produced or an ``error``."""

    ok: bool
    protocol: int
    error: dict[str, Any]
    url: str
    sha: str
    existed: bool


def run_driver(mode: str, spec: dict[str, Any], env: Mapping[str, str], python: str, workdir: Path) -> DriverStatus:
    """Run the driver once, in a process of its own (Metaflow is isolated from flowplan and from other
    compiles); returns its status (raises BackendError if it could not run).

    The request (``spec`` and the pinned Metaflow version) goes to its stdin; its stderr is kept in
    ``workdir/driver.log`` to explain a driver that gave no status.
    """
    request = {**spec, "metaflow_version": METAFLOW_VERSION}
    log = workdir / "driver.log"
    with Child([python, str(DRIVER), mode], json.dumps(request).encode(), env=env, cwd=workdir, log=log) as child:
        out = child.answer(timeout=COMPILE_TIMEOUT)
    if child.start_error is not None:
        raise BackendError(
            f"cannot run the Metaflow compile: no interpreter {python!r}",
            hint="set metaflow.python on the backend to a Python with metaflow installed",
        )
    if child.timed_out:
        raise BackendError(
            f"Metaflow did not finish within {COMPILE_TIMEOUT:.0f} s ({mode})",
            hint="set FLOWPLAN_METAFLOW_TIMEOUT to wait longer",
        )
    try:
        status: DriverStatus = json.loads(out) if out else {}
    except ValueError:
        status = {}
    if "ok" not in status:
        errors = log.read_text(errors="replace") if log.exists() else ""
        tail = errors.strip().splitlines()[-1:] or ["(no output)"]
        if "No module named 'metaflow'" in errors:
            raise BackendError(
                f"the interpreter {python} has no metaflow",
                hint=f"pip install 'flowplan[metaflow]' (metaflow=={METAFLOW_VERSION}) there, or set metaflow.python",
            )
        raise BackendError(f"the Metaflow {mode} process failed: {tail[0]}")
    return status


def compile_only(env: Mapping[str, str], flow_env: Mapping[str, str], settings: MetaflowSettings) -> dict[str, str]:
    """``env`` cut down to what a compile needs: :data:`_COMPILE_KEEPS`, the flow's own ``metaflow.env``, and
    the AWS variables only for a Step Functions target (whose compile calls AWS Batch)."""

    def kept(key: str) -> bool:
        if key in flow_env or _COMPILE_KEEPS.match(key):
            return True
        return settings.target == "stepfunctions" and bool(_AWS.match(key))

    return {key: value for key, value in env.items() if kept(key)}


def _run_group(
    group: list[_Job], settings: MetaflowSettings, workspace: MetaflowWorkspace
) -> list[CompiledFlow | Problem]:
    workdir = workspace.directory("compile-")
    workspace.compiled += len(group)
    home = workdir / "metaflow-home"
    home.mkdir()
    specs = []
    for index, job in enumerate(group):
        out = workdir / f"flow-{index}"
        out.mkdir()
        specs.append({**job.spec, "id": job.flow.name, "out": str(out)})
    env = compile_only(compile_environment(group[0].env, str(home), settings), group[0].env, settings)
    started = time.monotonic()
    status = run_driver(
        "compile",
        {
            "jobs": specs,
            "parallelism": settings.parallelism,
            "pins": {"platform": "Linux", "python": _python_minor(settings.python), "user": settings.user},
            "aws": dict(settings.aws) or {"partition": "aws", "region": "us-east-1", "account": "000000000000"},
        },
        env,
        settings.python,
        workdir,
    )
    seconds = time.monotonic() - started
    if not status.get("ok"):
        error = status.get("error", {})
        message = error.get("message", "the Metaflow compile failed")
        hint = None
        if error.get("kind") == "version":
            hint = (
                f"pip install metaflow=={METAFLOW_VERSION} into {settings.python} (or pip install 'flowplan[metaflow]')"
            )
        return [Problem(job.flow.metaflow.loc, f"flows.{job.flow.name}.metaflow", message, hint) for job in group]  # type: ignore[union-attr]
    outcomes: list[CompiledFlow | Problem] = []
    for job, spec in zip(group, specs, strict=True):
        result = json.loads((Path(spec["out"]) / "result.json").read_text())
        if not result.get("ok"):
            outcomes.append(_problem(job, result["error"], Path(spec["out"]), settings))
            continue
        package = result["package"]
        outcomes.append(
            CompiledFlow(
                flow=job.flow.name,
                target=result["target"],
                flow_name=result["flow_name"],
                workflow_name=result["workflow_name"],
                token=result["token"],
                project=result.get("project"),
                branch_name=result.get("branch_name"),
                package=Package(
                    url=package["url"],
                    sha=package["sha"],
                    size=package["size"],
                    path=str(Path(spec["out"]) / "package.tgz"),
                    flow_name=result["flow_name"],
                    datastore_root=settings.datastore_root,
                ),
                schedule=result.get("schedule"),
                timezone=result.get("timezone"),
                triggers=result.get("triggers") or [],
                parameters=result.get("parameters"),
                argv=result.get("argv") or [],
                template=result.get("template"),
                sensor=result.get("sensor"),
                definition=result.get("definition"),
                job_definitions=result.get("job_definitions") or [],
                trigger_options=result.get("trigger_options"),
                seconds=seconds / max(1, len(group)),
                extra={"project_flow_name": result.get("project_flow_name")},
            )
        )
    return outcomes


def _python_minor(python: str) -> str:
    """``major.minor`` of the interpreter that compiles (pinned into the package's INFO file)."""
    import sys

    if python == sys.executable:
        return f"{sys.version_info[0]}.{sys.version_info[1]}"
    with Child([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], b"") as child:
        out = child.answer(timeout=30)
    return out.decode(errors="replace").strip() if out is not None else "unknown"


def _problem(job: _Job, error: Mapping[str, Any], out: Path, settings: MetaflowSettings) -> Problem:
    source = job.flow.metaflow
    assert source is not None
    path = f"flows.{job.flow.name}.metaflow"
    kind = error.get("kind")
    message = str(error.get("message") or "the compile failed")
    shown = source.file
    where = error.get("where")
    if where:
        try:
            file = os.path.relpath(where[0], Path(job.file).parent)
        except ValueError:
            file = where[0]
        shown = f"{file}:{where[1]}" if not file.startswith("..") else f"{where[0]}:{where[1]}"
    if kind == "import":
        return Problem(
            source.loc,
            path,
            f"{source.file} failed to import ({shown}): {message}",
            f"flowplan imports it with {settings.python}: run `python {source.file} --help` there to see the whole "
            "error, and install what the flow imports (or set metaflow.python on the backend)",
        )
    if kind == "metaflow":
        headline = error.get("headline") or "Metaflow error"
        return Problem(
            source.loc,
            path,
            f"Metaflow cannot deploy it to {_target(settings)}: {headline}: {_one_line(message)}",
            _hint_for(message, settings),
        )
    if kind == "exception":
        return Problem(
            source.loc,
            path,
            f"compiling {source.file} for {_target(settings)} failed ({shown}): {message}",
            f"the log of the compile is {out / 'log.txt'} until flowplan exits",
        )
    if kind == "flow_class":
        return Problem(
            source.loc,
            f"{path}.flow_class",
            f"{message}: Metaflow's runtime runs `python {Path(source.file).name}` in every step, so only the flow "
            "the file starts can be deployed",
            f"set flow_class: {error.get('started')}, or move the flow to a file of its own",
        )
    if kind == "exit":
        tail = _log_tail(out)
        return Problem(source.loc, path, f"{message}: {tail}" if tail else message)
    return Problem(source.loc, path, message)


def _target(settings: MetaflowSettings) -> str:
    return "Argo Workflows" if settings.target == "argo" else "AWS Step Functions"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("*", "")).strip()


def _hint_for(message: str, settings: MetaflowSettings) -> str | None:
    lowered = message.lower()
    if "event" in lowered and "service account" in lowered:
        return "set metaflow.events_service_account (or argo.service_account) on the backend"
    if "not supported" in lowered or "isn't currently supported" in lowered or "is not currently supported" in lowered:
        other = "stepfunctions" if settings.target == "argo" else "argo"
        return f"remove the decorator, or deploy this flow on a {other} backend"
    return None


def _log_tail(out: Path) -> str:
    try:
        lines = [line for line in (out / "log.txt").read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""
