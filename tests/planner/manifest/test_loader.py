"""The loader's rules beyond single messages: vars precedence, branches, sink scoping, defaults, the model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from planner.errors import ManifestError
from planner.manifest import DEFAULT_BACKEND, load_manifest
from tests.planner.manifest.conftest import REPO

Write = Callable[..., Path]

VARS_MANIFEST = """version: 1
project: shop
vars:
  tag: {default: from-default}
  registry: ghcr.io/acme
flows:
  f:
    image: "{{ vars.registry }}/shop:{{ vars.tag }}"
    steps:
      start: {command: [run]}
"""


def test_vars_precedence_default_then_var_files_then_cli(write_manifest: Write) -> None:
    path = write_manifest(VARS_MANIFEST, **{"a.yaml": "tag: from-a\n", "b.yaml": "tag: from-b\nregistry: quay.io/x\n"})
    assert load_manifest(path).flows["f"].image == "ghcr.io/acme/shop:from-default"
    assert load_manifest(path, var_files=[path.parent / "a.yaml"]).flows["f"].image == "ghcr.io/acme/shop:from-a"
    both = load_manifest(path, var_files=[path.parent / "a.yaml", path.parent / "b.yaml"])
    assert both.flows["f"].image == "quay.io/x/shop:from-b"  # the later file wins
    cli = load_manifest(path, var_files=[path.parent / "b.yaml"], cli_vars={"tag": "from-cli"})
    assert cli.flows["f"].image == "quay.io/x/shop:from-cli"
    assert cli.vars["tag"].value == "from-cli"


def test_vars_digest_changes_with_values(write_manifest: Write) -> None:
    path = write_manifest(VARS_MANIFEST)
    assert load_manifest(path).vars_digest != load_manifest(path, cli_vars={"tag": "x"}).vars_digest
    assert load_manifest(path).vars_digest == load_manifest(path).vars_digest


def test_unreadable_var_file_is_a_manifest_error(write_manifest: Write) -> None:
    path = write_manifest(VARS_MANIFEST)
    with pytest.raises(ManifestError, match="cannot read the var file"):
        load_manifest(path, var_files=[path.parent])


def test_var_file_values_must_be_scalars(write_manifest: Write) -> None:
    path = write_manifest(VARS_MANIFEST, **{"bad.yaml": "tag: [1, 2]\n"})
    with pytest.raises(ManifestError, match="a var's value is a string, number or boolean"):
        load_manifest(path, var_files=[path.parent / "bad.yaml"])


def test_repository_manifest_loads_into_the_model() -> None:
    manifest = load_manifest(REPO / "flows.yaml")
    assert manifest.project == "recsys" and manifest.branch == "prod"
    assert list(manifest.backends) == [DEFAULT_BACKEND]
    local = manifest.backends[DEFAULT_BACKEND]
    assert (local.type, local.settings["path"], local.renders) == ("files", "deploy", "argo")
    train = manifest.flows["train"]
    assert train.protect and train.schedule is not None and train.schedule.timezone == "Europe/Berlin"
    assert train.start == "start" and train.end == "end"
    assert train.topological_steps() == ["start", "train-gbdt", "train-nn", "evaluate", "end"]
    features = manifest.flows["features"]
    assert features.steps["build"].foreach is not None and features.steps["build"].foreach.parameter == "regions"
    assert features.steps["start"].shell and features.steps["start"].command == (
        "python -m features.plan --regions $FLOWPLAN_PARAM_REGIONS",
    )
    assert [t.after for t in features.triggers] == ["ingest"]
    assert manifest.downstream_of("ingest") == ["features"]
    assert manifest.schedules["hourly"].cron == "0 * * * *" and manifest.schedules["hourly"].every == "hourly"
    assert manifest.flows["ingest"].steps["start"].timeout == 900
    assert manifest.flows["ingest"].steps["start"].resources.cpu_millis == 500
    assert train.loc.line > 0 and train.steps["fit" if "fit" in train.steps else "start"].loc.line > 0


@pytest.mark.parametrize(
    ("branch", "enable", "enabled"),
    [("prod", False, True), ("dev", False, False), ("feature-x", True, True)],
)
def test_schedules_run_on_prod_only_unless_enabled(branch: str, enable: bool, enabled: bool) -> None:
    manifest = load_manifest(REPO / "flows.yaml", branch=branch, enable_schedules=enable)
    assert manifest.schedules_enabled() is enabled
    assert manifest.is_production is (branch == "prod")


def test_sink_objects_are_scoped_to_the_branch() -> None:
    prod = load_manifest(REPO / "flows.yaml")
    dev = load_manifest(REPO / "flows.yaml", branch="feature-x")
    assert prod.sinks["warehouse"].settings["table"] == "recommendations"
    assert dev.sinks["warehouse"].settings["table"] == "recommendations__feature_x"
    assert prod.sinks["feature-cache"].settings["key_prefix"] == "features/recsys/prod/"
    assert dev.sinks["feature-cache"].settings["key_prefix"] == "features/recsys/feature-x/"
    assert prod.sinks["ranker-endpoint"].settings["endpoint"] == "ranker"
    assert dev.sinks["ranker-endpoint"].settings["endpoint"] == "ranker-feature-x"
    assert dev.sinks["warehouse"].settings["uri"] == prod.sinks["warehouse"].settings["uri"]
    assert dev.sinks["warehouse"].credentials is not None
    assert dev.sinks["warehouse"].credentials.secret == "snowflake-writer"


def test_bad_branch_is_refused(write_manifest: Write) -> None:
    with pytest.raises(ManifestError, match="--branch feature-x"):
        load_manifest(REPO / "flows.yaml", branch="Feature_X")


BACKENDS = """version: 1
project: shop
backends:
  files:
    type: files
    path: out
  aws:
    type: stepfunctions
    stepfunctions:
      region: eu-west-1
      execution_role_arn: arn:aws:iam::123456789012:role/run
      job_queue: jobs
flows:
  a:
    backend: files
    image: python
    steps:
      start: {command: [run]}
  b:
    backend: aws
    image: python
    schedule: {every: weekly, timezone: Asia/Tokyo}
    steps:
      start: {command: "echo hi && sleep 1"}
"""


def test_declared_backends_replace_the_default(write_manifest: Write) -> None:
    manifest = load_manifest(write_manifest(BACKENDS))
    assert sorted(manifest.backends) == ["aws", "files"]
    assert manifest.backends["aws"].stepfunctions is not None
    assert manifest.backends["aws"].stepfunctions.account_id == "123456789012"
    assert manifest.backends["files"].argo is not None and manifest.backends["files"].argo.namespace == "argo"
    assert [f.name for f in manifest.flows_on("aws")] == ["b"]
    schedule = manifest.flows["b"].schedule
    assert schedule is not None and (schedule.name, schedule.cron, schedule.timezone) == (
        None,
        "0 0 * * 0",
        "Asia/Tokyo",
    )


def test_files_backend_stays_below_the_manifest(write_manifest: Write) -> None:
    with pytest.raises(ManifestError, match="writes below the manifest's directory"):
        load_manifest(write_manifest(BACKENDS.replace("path: out", "path: ../elsewhere")))


def test_single_backend_is_implied(write_manifest: Write) -> None:
    text = BACKENDS.replace("    backend: aws\n", "").replace("    backend: files\n", "")
    text = text.replace("  files:\n    type: files\n    path: out\n", "")
    manifest = load_manifest(write_manifest(text))
    assert {f.backend for f in manifest.flows.values()} == {"aws"}


def test_parameters_types_and_defaults(write_manifest: Write) -> None:
    path = write_manifest(
        "version: 1\nproject: shop\nflows:\n  f:\n    image: python\n    parameters:\n"
        "      date: '2024-01-01'\n      n: 3\n      rate: {default: 1, type: float}\n      flag: false\n"
        "      regions: {default: [eu, us]}\n    steps:\n      start: {command: [run], foreach: [a, b]}\n"
    )
    params = load_manifest(path).flows["f"].parameters
    assert {n: p.type for n, p in params.items()} == {
        "date": "string",
        "n": "int",
        "rate": "float",
        "flag": "bool",
        "regions": "list",
    }
    assert params["regions"].default_text == '["eu","us"]' and params["flag"].default_text == "false"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{default: false, type: list}", "default False is not of type list"),
        ("{default: [a, [b]], type: list}", "a list parameter holds strings, numbers or booleans"),
        ("{default: 1.5, type: int}", "default 1.5 is not of type int"),
        ("{default: {a: 1}}", "a parameter's default is a string, number, boolean or list"),
        ("{default: [a], type: ''}", "must be one of string, int, float, bool, list"),
    ],
)
def test_parameter_defaults_must_fit(write_manifest: Write, spec: str, message: str) -> None:
    """Found by the fuzzer: a declared type that does not fit its default once crashed the loader."""
    path = write_manifest(
        f"version: 1\nproject: shop\nflows:\n  f:\n    image: python\n    parameters:\n      p: {spec}\n"
        "    steps:\n      start: {command: [run]}\n"
    )
    with pytest.raises(ManifestError, match=message):
        load_manifest(path)


def test_parameter_names_that_collide_as_environment_variables(write_manifest: Write) -> None:
    path = write_manifest(
        "version: 1\nproject: shop\nflows:\n  f:\n    image: python\n    parameters:\n"
        "      date: a\n      DATE: b\n    steps:\n      start: {command: [run]}\n"
    )
    with pytest.raises(ManifestError, match="FLOWPLAN_PARAM_DATE"):
        load_manifest(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load_manifest(tmp_path / "nope.yaml")
    with pytest.raises(ManifestError, match="directory"):
        load_manifest(tmp_path)


def test_raw_bytes_can_be_given(tmp_path: Path) -> None:
    raw = (REPO / "flows.yaml").read_bytes()
    assert load_manifest(tmp_path / "virtual.yaml", raw=raw).project == "recsys"
