"""``flowplan validate`` and ``flowplan plan`` give the same answer for every static problem.

A manifest that validates must never fail ``plan`` on something the manifest
alone decides, and a manifest ``validate`` refuses must be refused by ``plan``
in the same words. Both commands run in this process over:

- every manifest in ``examples/``, alone and with each var file beside it;
- every case of the bad-manifest corpus (``tests/planner/manifest/corpus``);
- the cases in ``tests/planner/parity/``: manifests that load, but that a
  backend's compiler refuses (the files backend's sensitive-value guard, the
  Step Functions compiler's ``events_role_arn``, ``concurrency: forbid`` and
  sink-credential checks, the Argo compiler's sink-credential check, sinks on
  a Metaflow flow), two of them on live backends that answer nothing.

No backend is reachable: the kubeconfig is missing or points at a closed port
and AWS at a closed endpoint, so a ``plan`` that gets past the compile fails
on the network, which is not a static problem. The only non-static problems
plan can report as manifest problems come from running Metaflow's own compile
(it reads the flow's code and asks AWS), which ``validate`` does not run.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from planner.cli import run

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CORPUS = REPO / "tests" / "planner" / "manifest" / "corpus"
PARITY = REPO / "tests" / "planner" / "parity"

#: A problem line of a ManifestError as the CLI prints it: "  flows.yaml:12:7: path: message".
PROBLEM_LINE = re.compile(r"^  \S+:\d+:\d+: ")
#: Problems that come from running Metaflow's compile, which needs more than the manifest.
METAFLOW_RUN = re.compile(r": flows\.[^.:]+\.metaflow: compiling ")


@dataclass(frozen=True)
class Case:
    """One manifest folder and the arguments both commands get."""

    name: str
    folder: Path
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    code: int
    err: str

    def static_problems(self) -> list[str]:
        return [line for line in self.err.splitlines() if PROBLEM_LINE.match(line) and not METAFLOW_RUN.search(line)]


def _example_cases() -> list[Case]:
    cases = []
    for manifest in sorted(EXAMPLES.rglob("flows.yaml")):
        folder = manifest.parent
        name = str(folder.relative_to(EXAMPLES))
        cases.append(Case(f"examples/{name}", folder))
        for var_file in sorted(folder.glob("*.vars.yaml")):
            cases.append(Case(f"examples/{name}+{var_file.name}", folder, ("--var-file", var_file.name)))
    return cases


def _corpus_cases() -> list[Case]:
    cases = []
    for folder in sorted(p for p in CORPUS.iterdir() if (p / "flows.yaml").exists()):
        spec = json.loads((folder / "args.json").read_text()) if (folder / "args.json").exists() else {}
        args: list[str] = []
        for key, value in dict(spec.get("vars") or {}).items():
            args += ["--var", f"{key}={value}"]
        for var_file in spec.get("var_files", ()):
            args += ["--var-file", var_file]
        if "branch" in spec:
            args += ["--branch", spec["branch"]]
        cases.append(Case(f"corpus/{folder.name}", folder, tuple(args)))
    return cases


def _parity_cases() -> list[Case]:
    return [Case(f"parity/{p.name}", p) for p in sorted(PARITY.iterdir()) if (p / "flows.yaml").exists()]


EXAMPLE_CASES = _example_cases()
CORPUS_CASES = _corpus_cases()
PARITY_CASES = _parity_cases()
CASES = EXAMPLE_CASES + CORPUS_CASES + PARITY_CASES


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cluster and no AWS answer: a plan past the compile fails on the network, quickly."""
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _flowplan(command: str, case: Case) -> Result:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = run([command, "-f", "flows.yaml", *case.args])
    return Result(code, err.getvalue())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validate_and_plan_agree_on_static_problems(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    workdir = tmp_path / "case"
    shutil.copytree(case.folder, workdir)
    monkeypatch.chdir(workdir)
    validated = _flowplan("validate", case)
    planned = _flowplan("plan", case)
    assert "Traceback" not in validated.err + planned.err
    if validated.code == 0:
        assert planned.static_problems() == [], f"plan failed on a static check validate passed:\n{planned.err}"
    else:
        assert validated.code == 1
        assert (planned.code, planned.err) == (validated.code, validated.err)


@pytest.mark.parametrize("case", PARITY_CASES, ids=[c.name for c in PARITY_CASES])
def test_backend_checks_are_refused_by_validate(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    """Each parity case is a problem only a backend's compiler finds; the loader alone accepts it."""
    from planner.manifest import load_manifest

    workdir = tmp_path / "case"
    shutil.copytree(case.folder, workdir)
    monkeypatch.chdir(workdir)
    load_manifest("flows.yaml")
    validated = _flowplan("validate", case)
    assert validated.code == 1
    assert validated.static_problems(), validated.err


def test_every_backend_check_of_the_issue_has_a_case() -> None:
    """Sensitive values on files, events_role_arn, concurrency: forbid and sink credentials on Step Functions,
    sinks on Metaflow flows, and static problems on live backends that plan must find before the network."""
    names = {c.folder.name for c in PARITY_CASES}
    assert {
        "files-sensitive-env",
        "sfn-no-events-role",
        "sfn-concurrency-forbid",
        "sfn-sink-in-kubernetes-secret",
        "metaflow-sinks",
        "argo-live-static-problem",
        "sfn-live-static-problem",
    } <= names
    assert len(EXAMPLE_CASES) >= 6
    assert len(CORPUS_CASES) >= 40
