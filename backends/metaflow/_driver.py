# mypy: ignore-errors
# (a standalone script: it monkeypatches Metaflow, whose API carries no types)
"""The process that runs Metaflow's own compiler for flowplan. Standalone: stdlib and Metaflow only.

flowplan starts it as ``python _driver.py compile`` (or ``upload``), the
request (a JSON object) on its stdin and its status (a JSON object) read from
its stdout, with an environment it built from the manifest (``METAFLOW_*`` settings,
``METAFLOW_HOME`` pointing at an empty directory, ``USERNAME`` pinned), so
nothing comes from a developer's ``~/.metaflowconfig``. It may run under
another interpreter than flowplan's (the manifest's ``python:``), which is why
it imports nothing from flowplan.

``compile``: import Metaflow once, install the pins (below), then fork one
child per flow (at most ``parallelism`` at a time). A child is a fresh copy of
a process that never ran a flow, so Metaflow's global state (the ``@project``
name in ``current``, resolved decorators) cannot leak from one flow into the
next. The child runs the flow file as ``__main__`` — exactly what
``python flow.py ...`` does — with ``metaflow.cli.main`` wrapped so that the
CLI receives flowplan's arguments::

    --no-pylint --quiet [--production | --branch B] [--package-suffixes S]
    argo-workflows [--name N] create --only-json --generate-new-token
    step-functions [--name N] create --only-json

and captures what Metaflow's ``make_flow`` built: the WorkflowTemplate and the
Sensor (Argo), the state machine and the Batch job definitions (Step
Functions), the schedule and the triggers as Metaflow read them from the
decorators, and the code package.

Pins (what would otherwise differ between machines, users or commits):

- the package is never uploaded: ``FlowDataStore.save_data`` computes the
  content address exactly as Metaflow's content-addressed store does
  (``<root>/<Flow>/data/<sha1[:2]>/<sha1>``) and hands the bytes to flowplan,
  which uploads them at apply (``upload`` mode, through Metaflow's own
  datastore code);
- the package's members are sorted by name and their tar headers carry uid/gid
  0, no user or group names, mode 644 (755 if executable) and Metaflow's fixed
  mtime; the INFO file (and the ``METAFLOW_VERSION`` variable of every task)
  records no git state, the platform ``Linux``, the Python version as
  ``major.minor`` and the pinned user;
- the production token is the first token Metaflow itself derives from the
  token prefix (``new_token(prefix)``), with no lookup of what is deployed;
- Batch job definitions are not registered: the request Metaflow would send is
  captured, and the state machine refers to the definition by its ARN without a
  revision (AWS Batch then runs the latest active revision), because the
  revision number is only known once flowplan registers it at apply;
- on Step Functions, ``@trigger``, ``@trigger_on_finish`` and a ``@schedule``
  time zone (which Metaflow refuses there) are read with Metaflow's own parser
  and set aside while the state machine compiles; flowplan deploys them as
  EventBridge rules and a Scheduler schedule.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import runpy
import sys
import traceback

PROTOCOL = 2
_STATE: dict = {}
#: Where the status goes: the process's stdout as it started (fd 1 itself then points at stderr, so
#: nothing Metaflow prints can garble the status).
_ANSWER: dict = {}


# --------------------------------------------------------------------------- results


def _take_stdout():
    _ANSWER["fd"] = os.dup(1)
    os.dup2(2, 1)


def _answer(data):
    """Write the status (once) and close the stream: flowplan reads it to its end."""
    fd = _ANSWER.pop("fd", None)
    if fd is None:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)
    os.replace(tmp, path)


def _error(kind, message, **extra):
    return {"ok": False, "error": {"kind": kind, "message": message, **extra}}


def _user_frame(exc, flow_file):
    """The innermost traceback frame in the user's code (the flow file first), as (file, line)."""
    found = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_filename
        if "site-packages" in name or name.startswith("<") or name == __file__:
            continue
        if found is None or name == flow_file or found[0] != flow_file:
            found = (name, line)
    if isinstance(exc, SyntaxError) and exc.filename:
        found = (exc.filename, exc.lineno or 0)
    return found


# --------------------------------------------------------------------------- pins


def _install_pins(spec):
    """Monkeypatches inherited by every child (see the module docstring)."""
    import tarfile

    from metaflow import metaflow_git
    from metaflow.datastore.flow_datastore import FlowDataStore
    from metaflow.metaflow_environment import MetaflowEnvironment
    from metaflow.package import MetaflowPackage
    from metaflow.packaging_sys.tar_backend import TarPackagingBackend

    pins = spec["pins"]
    git_keys = ("repo_url", "branch_name", "commit_sha", "has_uncommitted_changes")

    metaflow_git.get_repository_info = lambda path=None: {}
    original_info = MetaflowEnvironment.get_environment_info

    def get_environment_info(self, include_ext_info=False):
        info = original_info(self, include_ext_info=include_ext_info)
        for key in git_keys:
            info.pop(key, None)
        info["platform"] = pins["platform"]
        info["python_version"] = pins["python"]
        info["python_version_code"] = pins["python"]
        info["username"] = pins["user"]
        return info

    MetaflowEnvironment.get_environment_info = get_environment_info

    def add_file(self, filename, arcname=None):
        info = self._archive.gettarinfo(filename, arcname)
        info.mtime = 1575360000  # Metaflow's own fixed mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755 if info.mode & 0o111 else 0o644
        info.type = tarfile.REGTYPE
        with open(filename, mode="rb") as handle:
            self._archive.addfile(info, handle)

    TarPackagingBackend.add_file = add_file

    def _make(self):
        entries = [(arcname, src) for src, arcname in self._mfcontent.contents()]
        entries += [(arcname, path) for path, arcname in self._cached_user_members]
        entries.sort(key=lambda entry: entry[0])
        backend = self._backend()
        with backend.create() as archive:
            for arcname, src in entries:
                if isinstance(src, str):
                    archive.add_file(src, arcname=arcname)
                else:
                    archive.add_data(io.BytesIO(src), arcname=arcname)
        return backend.get_blob()

    MetaflowPackage._make = _make

    def save_data(self, data_iter, len_hint=0):
        results = []
        for blob in data_iter:
            blob = bytes(blob)
            sha = hashlib.sha1(blob).hexdigest()
            storage = self.ca_store._storage_impl
            uri = storage.full_uri(storage.path_join(self.ca_store._prefix, sha[:2], sha))
            _STATE.setdefault("packages", []).append({"url": uri, "sha": sha, "blob": blob})
            results.append((uri, sha))
        return results

    FlowDataStore.save_data = save_data


def _install_argo_capture():
    from metaflow.plugins.argo import argo_workflows_cli as cli

    original = cli.make_flow

    def make_flow(obj, token, name, *args, **kwargs):
        flow = original(obj, token, name, *args, **kwargs)
        from metaflow import current

        sensor = flow._sensor.to_json() if flow._sensor else None
        _STATE["capture"] = {
            "target": "argo",
            "workflow_name": name,
            "token": token,
            "template": flow._workflow_template.to_json(),
            "sensor": sensor,
            "schedule": flow._schedule,
            "timezone": flow._timezone or None,
            "triggers": _plain(flow.triggers),
            "parameters": _plain(flow.parameters),
            "project": current.get("project_name"),
            "branch_name": current.get("branch_name"),
            "project_flow_name": current.get("project_flow_name"),
        }
        return flow

    cli.make_flow = make_flow


def _install_stepfunctions_capture(spec):
    from metaflow.plugins.argo.argo_workflows import ArgoWorkflows
    from metaflow.plugins.aws.batch import batch_client
    from metaflow.plugins.aws.step_functions import step_functions_cli as cli
    from metaflow.plugins.aws.step_functions.production_token import new_token

    cli.resolve_token = lambda name, token_prefix, obj, *args, **kwargs: new_token(token_prefix)
    original = cli.make_flow

    class _Decorators:
        """Just enough of an ArgoWorkflows instance for Metaflow's own trigger parser."""

        def __init__(self, flow):
            self.flow = flow

    class _Parameters:
        def __init__(self, flow, schedule):
            self.flow = flow
            self._schedule = schedule

        def _cron(self):
            return self._schedule

    def make_flow(obj, token, name, *args, **kwargs):
        from metaflow import current

        flow_decorators = obj.flow._flow_decorators
        triggers, options = ArgoWorkflows._process_triggers(_Decorators(obj.flow))
        set_aside = {
            key: flow_decorators.pop(key) for key in ("trigger", "trigger_on_finish") if key in flow_decorators
        }
        schedule_deco = (flow_decorators.get("schedule") or [None])[0]
        schedule = timezone = None
        if schedule_deco is not None and schedule_deco.schedule is not None:
            schedule, timezone = schedule_deco.schedule, schedule_deco.timezone
            schedule_deco.timezone = None
        try:
            machine = original(obj, token, name, *args, **kwargs)
        finally:
            flow_decorators.update(set_aside)
            if schedule_deco is not None:
                schedule_deco.timezone = timezone
        _STATE["capture"] = {
            "target": "stepfunctions",
            "workflow_name": name,
            "token": token,
            "definition": json.loads(machine.to_json()),
            "schedule": schedule,
            "timezone": timezone,
            "triggers": _plain(triggers),
            "trigger_options": _plain(options),
            # (after __init__, Metaflow's _cron attribute is the cron string, so ask through a stand-in)
            "parameters": _plain(type(machine)._process_parameters(_Parameters(obj.flow, schedule))),
            "project": current.get("project_name"),
            "branch_name": current.get("branch_name"),
            "project_flow_name": current.get("project_flow_name"),
            "job_definitions": _STATE.get("job_definitions", []),
        }
        return machine

    cli.make_flow = make_flow

    aws = spec["aws"]

    class _Batch:
        """Batch reads go to AWS; the definition lookup says "none" and the registration is captured."""

        def __init__(self, real):
            self._real = real

        def __getattr__(self, name):
            if name.startswith("describe_job_queues") or name.startswith("describe_compute_environments"):
                return getattr(self._real, name)
            raise AttributeError(f"flowplan's compile makes no Batch call {name}")

        def describe_job_definitions(self, **kwargs):
            return {"jobDefinitions": []}

        def register_job_definition(self, **kwargs):
            name = kwargs["jobDefinitionName"]
            arn = f"arn:{aws['partition']}:batch:{aws['region']}:{aws['account']}:job-definition/{name}"
            known = _STATE.setdefault("job_definitions", [])
            if all(item["jobDefinitionName"] != name for item in known):
                known.append(_plain(kwargs))
            return {"jobDefinitionArn": arn}

    original_register = batch_client.BatchJob._register_job_definition

    def register(self, *args, **kwargs):
        real = self._client
        self._client = _Batch(real)
        try:
            return original_register(self, *args, **kwargs)
        finally:
            self._client = real

    batch_client.BatchJob._register_job_definition = register


def _plain(value):
    """JSON-ready copy (tuples to lists, unknown objects to strings)."""
    return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------------- one flow (in a forked child)


def _cli_args(job, flow):
    args = ["--no-pylint", "--quiet"]
    has_project = bool(flow._flow_decorators.get("project"))
    if has_project:
        args += ["--production"] if job["production"] else ["--branch", job["metaflow_branch"]]
    if job.get("package_suffixes"):
        args += ["--package-suffixes", ",".join(job["package_suffixes"])]
    if job["target"] == "argo":
        args.append("argo-workflows")
    else:
        args.append("step-functions")
    if not has_project:
        args += ["--name", job["name"]]
    args += ["create", "--only-json"]
    if job["target"] == "argo":
        args.append("--generate-new-token")
    return args


def _install_main_wrapper():
    """Run Metaflow's command line with flowplan's arguments when the flow file starts its flow.

    ``metaflow.cli`` must not be imported before the flow class exists: it adds
    the flow's decorator options (``--branch``, ``--production``) and parameters
    to the command when it is first imported inside ``flow_context``. So this
    wraps ``FlowSpec.__init__`` rather than ``metaflow.cli.main``.
    """
    from metaflow import parameters
    from metaflow.exception import MetaflowException
    from metaflow.flowspec import FlowSpec

    original_init = FlowSpec.__init__

    def __init__(self, use_cli=True):
        original_init(self, use_cli=False)
        if not use_cli or _STATE.get("started"):
            return
        job = _STATE["job"]
        _STATE["started"] = type(self).__name__
        wanted = job.get("flow_class")
        if wanted and wanted != type(self).__name__:
            _STATE["error"] = {
                "kind": "flow_class",
                "message": f"running the file starts {type(self).__name__}, not {wanted}",
                "started": type(self).__name__,
            }
            return
        with parameters.flow_context(self.__class__):
            from metaflow import cli

            argv = _cli_args(job, self)
            _STATE["argv"] = argv
            try:
                code = cli.main(self, args=argv, handle_exceptions=False)
            except MetaflowException as exc:
                _STATE["error"] = {
                    "kind": "metaflow",
                    "message": str(getattr(exc, "message", "") or exc).strip(),
                    "headline": getattr(exc, "headline", type(exc).__name__),
                }
                return
            except Exception as exc:  # Metaflow's own bugs and the flow's deploy-time code
                where = _user_frame(exc, job["file"])
                _STATE["error"] = {
                    "kind": "exception",
                    "message": traceback.format_exception_only(type(exc), exc)[-1].strip(),
                    "where": list(where) if where else None,
                    "traceback": traceback.format_exc(),
                }
                return
        if code not in (0, None) and "capture" not in _STATE:
            _STATE["error"] = {"kind": "exit", "message": f"Metaflow's command line exited with code {code}"}

    FlowSpec.__init__ = __init__


def _child(job):
    fd = _ANSWER.pop("fd", None)
    if fd is not None:
        os.close(fd)  # only the driver answers; a stuck child must not hold the answer open
    out = job["out"]
    log = os.open(os.path.join(out, "log.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    _STATE.clear()
    _STATE["job"] = job
    flow_file = job["file"]
    flow_dir = os.path.dirname(flow_file)
    os.chdir(flow_dir)
    sys.argv = [flow_file]
    sys.path.insert(0, flow_dir)
    result = None
    try:
        runpy.run_path(flow_file, run_name="__main__")
    except SystemExit:
        pass
    except BaseException as exc:
        where = _user_frame(exc, flow_file)
        result = _error(
            "import",
            traceback.format_exception_only(type(exc), exc)[-1].strip(),
            where=list(where) if where else None,
            traceback=traceback.format_exc(),
        )
    sys.stdout.flush()
    sys.stderr.flush()
    if result is None:
        if "error" in _STATE:
            result = {"ok": False, "error": _STATE["error"]}
        elif "capture" not in _STATE:
            if _STATE.get("started"):
                result = _error("exit", "Metaflow did not compile the flow (see the log)")
            else:
                result = _error(
                    "no_flow",
                    "running the file starts no flow: Metaflow runs `python FILE` in every step, so the file "
                    "needs `if __name__ == '__main__': MyFlow()`",
                )
        else:
            packages = _STATE.get("packages") or []
            if len(packages) != 1:
                result = _error("package", f"Metaflow made {len(packages)} code packages, expected one")
            else:
                package = packages[0]
                with open(os.path.join(out, "package.tgz"), "wb") as handle:
                    handle.write(package["blob"])
                capture = dict(_STATE["capture"])
                capture["package"] = {"url": package["url"], "sha": package["sha"], "size": len(package["blob"])}
                capture["flow_name"] = _STATE["started"]
                capture["argv"] = _STATE.get("argv")
                result = {"ok": True, **capture}
    _write_json(os.path.join(out, "result.json"), result)
    return 0


# --------------------------------------------------------------------------- modes


def _check_version(spec):
    import metaflow

    found = getattr(metaflow, "__version__", "?")
    if found != spec["metaflow_version"]:
        _answer(
            _error(
                "version",
                f"the interpreter {sys.executable} has metaflow {found}; flowplan is pinned to "
                f"metaflow=={spec['metaflow_version']}",
                found=found,
            ),
        )
        return False
    return True


def compile_flows(spec):
    if not _check_version(spec):
        return 0
    # Warm the zygote: everything each child needs, imported once.
    import metaflow.plugins.argo.argo_workflows_cli
    import metaflow.plugins.aws.step_functions.step_functions_cli  # noqa: F401

    assert "metaflow.cli" not in sys.modules, (
        "metaflow.cli must first be imported by the flow (see _install_main_wrapper)"
    )

    _install_pins(spec)
    _install_main_wrapper()
    _install_argo_capture()
    _install_stepfunctions_capture(spec)
    sys.stdout.flush()
    sys.stderr.flush()

    jobs = list(spec["jobs"])
    running = {}
    parallelism = max(1, int(spec.get("parallelism", 4)))
    while jobs or running:
        while jobs and len(running) < parallelism:
            job = jobs.pop(0)
            pid = os.fork()
            if pid == 0:  # the child: never returns into this loop
                code = 1
                try:
                    code = _child(job)
                finally:
                    os._exit(code)
            running[pid] = job
        pid, status = os.wait()
        job = running.pop(pid, None)
        if job is not None and not os.path.exists(os.path.join(job["out"], "result.json")):
            _write_json(
                os.path.join(job["out"], "result.json"),
                _error("crash", f"the compile process ended without a result (wait status {status})"),
            )
    _answer({"ok": True, "protocol": PROTOCOL})
    return 0


def upload(spec):
    """Put one package into the datastore with Metaflow's own content-addressed store."""
    if not _check_version(spec):
        return 0
    from metaflow.datastore.flow_datastore import FlowDataStore
    from metaflow.plugins.datastores.s3_storage import S3Storage

    with open(spec["blob"], "rb") as handle:
        blob = handle.read()
    store = FlowDataStore(spec["flow_name"], storage_impl=S3Storage, ds_root=spec["datastore_root"])
    sha = hashlib.sha1(blob).hexdigest()
    storage = store.ca_store._storage_impl
    existed = bool(storage.is_file([storage.path_join(store.ca_store._prefix, sha[:2], sha)])[0])
    url, key = store.save_data([blob], len_hint=1)[0]
    _answer({"ok": True, "url": url, "sha": key, "existed": existed})
    return 0


def main(argv):
    mode = argv[1]
    spec = json.load(sys.stdin)
    _take_stdout()
    try:
        return {"compile": compile_flows, "upload": upload}[mode](spec)
    except BaseException as exc:
        _answer(
            _error(
                "driver", traceback.format_exception_only(type(exc), exc)[-1].strip(), traceback=traceback.format_exc()
            ),
        )
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
