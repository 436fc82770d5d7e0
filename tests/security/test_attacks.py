"""Attacks on flowplan's trust boundaries, each tried for real (issue 19).

Who controls what (docs/security.md): a pull request's author writes the manifest, var files,
``deploy/``, ``.flowplan/`` and any path they name; the CI operator owns the environment and the
credentials. ``plan`` runs on every pull request, so it must read only, run nothing the repository
names, follow no link out of its roots and print no secret in any encoding.

Each test names the bullet of issue 19 it covers in its ``xfail`` reason while the hole is open;
the fix that closes it removes the mark in the same commit. ``tests/security/report.py`` turns
this file into the table of attacks in docs/security.md.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import pytest

from planner.plan import plan_file_checksum
from tests.planner.loop import Project
from tests.security.conftest import attack, flowplan_argv, flowplan_env

#: Seconds a hostile-file plan may take before it counts as hung.
HANG = 10


MANIFEST = """\
version: 1
project: {project}
vars:
  token: {{sensitive: true, default: unused-default-1}}
backends:
  local: {{type: files}}
flows:
  {flow}:
    image: busybox
    steps:
      start:
        command: {command}
"""


def _project(tmp_path: Path, *, project: str = "sec", flow: str = "greet", command: str = "[echo, hi]") -> Project:
    source = tmp_path / "source.yaml"
    source.write_text(MANIFEST.format(project=project, flow=flow, command=command))
    root = tmp_path / "repo"
    root.mkdir()
    return Project(root, source)


def _cli(root: Path, *args: str, timeout: float = HANG, memory: int | None = None) -> subprocess.CompletedProcess[str]:
    """``flowplan ARGS`` as its own process (a hostile file may hang it or eat memory: bounded here)."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        flowplan_argv(*args),
        cwd=root,
        env=flowplan_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
        check=False,
    )


def _spellings(secret: str) -> set[str]:
    """The ways a rendering may carry ``secret``: raw, JSON-escaped (both ways), YAML double-quoted."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        secret.replace("\\", "\\\\").replace('"', '\\"'),
    }


def _everything_written(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


# --------------------------------------------------------------------------- secrets


@attack(
    "secrets: a sensitive value with a quote, a backslash or non-ASCII must not reach deploy/ in any encoding",
    fixed=True,
)
@pytest.mark.parametrize("secret", ['pa"ss-word-1', "pa\\ss-word-1", "pässwörd-123"])
def test_a_sensitive_value_never_reaches_deploy_in_any_encoding(tmp_path: Path, secret: str) -> None:
    project = _project(tmp_path, command='[echo, "{{ vars.token }}"]')
    applied = project.run("apply", "--auto-approve", "--var", f"token={secret}")
    written = _everything_written(project.root / "deploy") if (project.root / "deploy").exists() else ""
    assert not any(spelling in written for spelling in _spellings(secret))
    assert applied.code == 1 and "sensitive" in applied.err


@attack("secrets: a short, common secret (`risk`) must be refused, not mask parts of names and addresses", fixed=True)
def test_a_secret_too_short_to_mask_is_refused_and_names_stay_intact(tmp_path: Path) -> None:
    project = _project(tmp_path, project="ml", flow="risk-scores")
    result = project.run("plan", "--var", "token=risk")
    assert "(sensitive)-scores" not in result.out + result.err
    assert result.code == 1 and "too short" in result.err


@attack(
    "secrets: a sensitive value in a list parameter's default (JSON text, `\\u` escapes) must not reach deploy/",
    fixed=True,
)
def test_a_secret_in_a_list_parameter_default_never_reaches_deploy(tmp_path: Path) -> None:
    secret = "pässwörd-123"
    project = _project(tmp_path)
    project.edit(
        "    image: busybox\n",
        '    image: busybox\n    parameters:\n      regions: {default: [eu, "{{ vars.token }}"], type: list}\n',
    )
    applied = project.run("apply", "--auto-approve", "--var", f"token={secret}")
    written = _everything_written(project.root / "deploy") if (project.root / "deploy").exists() else ""
    assert not any(spelling in written for spelling in _spellings(secret) | {json.dumps(json.dumps(secret))[1:-1]})
    assert applied.code == 1 and "sensitive" in applied.err


@attack(
    "secrets: a sensitive value in a sink URI (percent-encoded there) must not reach deploy/ or the plan", fixed=True
)
def test_a_secret_in_a_sink_uri_is_caught_percent_encoded(tmp_path: Path) -> None:
    secret = "p@ss/wörd-123"
    project = _project(tmp_path)
    text = project.manifest.read_text().replace(
        "flows:\n", "sinks:\n  out: {type: cache, uri: 'redis://cache/{{ vars.token }}', key_prefix: x/}\nflows:\n", 1
    )
    project.manifest.write_text(text.replace("    image: busybox\n", "    image: busybox\n    sinks: [out]\n"))
    from urllib.parse import quote

    for encoded in (quote(secret, safe=""), quote(secret)):
        result = project.run("plan", "--var", f"token={encoded}")
        assert secret not in result.out + result.err and encoded not in result.out + result.err
    applied = project.run("apply", "--auto-approve", "--var", f"token={quote(secret, safe='')}")
    written = _everything_written(project.root / "deploy") if (project.root / "deploy").exists() else ""
    assert quote(secret, safe="") not in written and secret not in written
    assert applied.code == 1


@attack("secrets: a sensitive value quoted in an error message or a --debug traceback must be masked", fixed=True)
def test_a_secret_in_an_error_message_is_masked(tmp_path: Path) -> None:
    secret = 'pa"ss-wörd-1'
    project = _project(tmp_path, command='[echo, "{{ vars.token }}"]')
    for args in (("apply", "--auto-approve"), ("--debug", "apply", "--auto-approve")):
        result = _cli(project.root, *args, "--var", f"token={secret}")
        assert result.returncode == 1
        assert not any(spelling in result.stdout + result.stderr for spelling in _spellings(secret))


@attack("secrets: FLOWPLAN_VAR_<name> sets a var (below var files and --var) and is held to the same rules", fixed=True)
def test_a_secret_from_the_environment_is_used_checked_and_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, flow="risk-scores")
    monkeypatch.setenv("FLOWPLAN_VAR_token", "risk")
    short = project.run("plan")
    assert short.code == 1 and "too short" in short.err and "token" in short.err
    assert project.run("plan", "--var", "token=long-enough-1").code == 0
    monkeypatch.setenv("FLOWPLAN_VAR_token", "from-the-environment")
    project.edit("command: [echo, hi]", 'command: [echo, "{{ vars.token }}"]')
    applied = project.run("apply", "--auto-approve")
    assert applied.code == 1 and "from-the-environment" not in applied.out + applied.err


# --------------------------------------------------------------------------- hostile files


@attack("hostile files: a symlinked deploy/ must not send writes outside the repository", fixed=True)
def test_a_symlinked_deploy_folder_is_refused_and_nothing_is_written_outside(tmp_path: Path) -> None:
    project = _project(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.root / "deploy").symlink_to(outside)
    result = project.run("apply", "--auto-approve")
    assert list(outside.iterdir()) == []
    assert result.code == 1 and "deploy" in result.err


@attack("hostile files: a .yaml symlink to /dev/zero in deploy/ must not run plan out of memory", fixed=True)
def test_a_device_in_deploy_is_refused_with_its_path(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project.root / "deploy").mkdir()
    (project.root / "deploy" / "evil.yaml").symlink_to("/dev/zero")
    result = _cli(project.root, "plan", memory=2 * 1024**3)
    assert result.returncode == 1 and "evil.yaml" in result.stderr and "Traceback" not in result.stderr


@attack("hostile files: a FIFO in deploy/ must not hang plan", fixed=True)
def test_a_fifo_in_deploy_is_refused_at_once(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project.root / "deploy").mkdir()
    os.mkfifo(project.root / "deploy" / "pipe.yaml")
    result = _cli(project.root, "plan")
    assert result.returncode == 1 and "pipe.yaml" in result.stderr


@attack("hostile files: a FIFO as flows.yaml must not hang validate", fixed=True)
def test_a_fifo_as_the_manifest_is_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "flows.yaml")
    result = _cli(tmp_path, "validate")
    assert result.returncode == 1 and "flows.yaml" in result.stderr and "regular file" in result.stderr


@attack("hostile files: a symlink at a desired name must not print the file it points to (plan --adopt)", fixed=True)
def test_a_symlink_at_a_desired_name_is_never_followed(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    secret_file = tmp_path / "operator-secret.txt"
    secret_file.write_text("apiVersion: v1\nkind: Secret\ndata: {password: c3VwZXJzZWNyZXQ=}\n")
    (target,) = [p for p in (project.root / "deploy").rglob("*.yaml") if "WorkflowTemplate" in p.read_text()]
    target.unlink()
    target.symlink_to(secret_file)
    result = project.run("plan", "--adopt")
    assert "c3VwZXJzZWNyZXQ=" not in result.out + result.err


@attack("hostile files: plan --out must not follow a planted symlink or leave the plan world-readable", fixed=True)
def test_plan_out_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    project = _project(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("operator data\n")
    victim.chmod(0o644)
    (project.root / "plan.bin").symlink_to(victim)
    project.run("plan", "--out", "plan.bin")
    assert victim.read_text() == "operator data\n"
    saved = project.root / "plan.bin"
    assert not saved.is_symlink() and (saved.stat().st_mode & 0o077) == 0


@attack("hostile files: a var file that is a FIFO or /dev/zero must be refused at once, naming it", fixed=True)
@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_var_file_that_is_a_fifo_or_a_device_is_refused(tmp_path: Path, kind: str) -> None:
    project = _project(tmp_path)
    var_file = project.root / "prod.yaml"
    if kind == "fifo":
        os.mkfifo(var_file)
    else:
        var_file.symlink_to("/dev/zero")
    result = _cli(project.root, "plan", "--var-file", "prod.yaml", memory=2 * 1024**3)
    assert result.returncode == 1 and "prod.yaml" in result.stderr and "Traceback" not in result.stderr


@attack("hostile files: a symlink in deploy/'s folder chain must not send an apply's writes outside", fixed=True)
def test_a_symlinked_folder_inside_deploy_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder,) = {p.parent for p in (project.root / "deploy").rglob("*.yaml")}
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    folder.symlink_to(outside)
    result = project.run("apply", "--auto-approve")
    assert list(outside.iterdir()) == []
    assert result.code == 1 and folder.name in result.err and "symbolic link" in result.err


@attack("hostile files: a hard link in deploy/ to a file outside must not let apply change that file", fixed=True)
def test_a_hard_link_in_deploy_is_replaced_not_written_through(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    (target,) = [p for p in (project.root / "deploy").rglob("*.yaml") if "WorkflowTemplate" in p.read_text()]
    outside = tmp_path / "operator.yaml"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    os.link(outside, target)
    before = outside.read_bytes()
    project.edit("image: busybox", "image: busybox:2")
    assert project.run("apply", "--auto-approve").code == 0
    assert outside.read_bytes() == before and b"busybox:2" in target.read_bytes()


@attack("hostile files: a folder at a desired file's name must be refused with its path, not a traceback", fixed=True)
def test_a_folder_at_a_desired_name_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    (target,) = [p for p in (project.root / "deploy").rglob("*.yaml") if "WorkflowTemplate" in p.read_text()]
    target.unlink()
    target.mkdir()
    result = project.run("plan")
    assert result.code == 1 and target.name in result.err and "Traceback" not in result.err


@attack(
    "hostile files: a files backend path that climbs out of the repository (`path: ../x`) must be refused", fixed=True
)
@pytest.mark.parametrize("path", ["../outside", "/tmp/flowplan-outside", "deploy/../../outside"])
def test_a_deploy_path_that_climbs_out_is_refused(tmp_path: Path, path: str) -> None:
    project = _project(tmp_path)
    project.edit("{type: files}", f"{{type: files, path: {json.dumps(path)}}}")
    result = project.run("apply", "--auto-approve")
    assert result.code == 1 and "backends.local.path" in result.err
    assert not (tmp_path / "outside").exists() and not Path("/tmp/flowplan-outside").exists()


@attack("hostile files: a FIFO planted as .flowplan/'s inventory file must not hang plan")
def test_a_fifo_as_the_inventory_is_refused_at_once(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    (inventory,) = (project.root / ".flowplan").rglob("*.json")
    inventory.unlink()
    os.mkfifo(inventory)
    result = _cli(project.root, "plan")
    assert result.returncode == 1 and inventory.name in result.stderr


@attack("hostile files: an inventory symlinked to a file outside must not be read through the link")
def test_a_symlinked_inventory_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    (inventory,) = (project.root / ".flowplan").rglob("*.json")
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes(inventory.read_bytes())
    inventory.unlink()
    inventory.symlink_to(outside)
    result = project.run("plan")
    assert result.code == 1 and inventory.name in result.err and "symbolic link" in result.err


@attack("hostile files: a symlinked .flowplan/ must not send the inventory and lock writes outside")
def test_a_symlinked_state_folder_is_refused_and_nothing_is_written_outside(tmp_path: Path) -> None:
    project = _project(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.root / ".flowplan").symlink_to(outside)
    result = project.run("apply", "--auto-approve")
    assert list(outside.iterdir()) == []
    assert result.code == 1 and ".flowplan" in result.err


# --------------------------------------------------------------------------- names and scopes


@attack(
    "names and scopes: a flow name with a trailing newline must be refused (Python's `$` matches before it)", fixed=True
)
def test_a_flow_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path, flow='"greet\\n"')
    result = project.run("validate")
    assert result.code == 1 and "greet" in result.err


@attack("names and scopes: a --branch with a trailing newline must be refused as a branch", fixed=True)
def test_a_branch_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path)
    result = project.run("plan", "--branch", "pr-1\n")
    assert result.code == 1 and "branch" in result.err


@attack(
    "names and scopes: project `a` branch `b-prod` and project `a-b` branch `prod` must not share an inventory",
    fixed=True,
)
def test_inventories_of_different_scopes_never_share_a_name(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    for name, project in (("one.yaml", "a"), ("two.yaml", "a-b")):
        text = MANIFEST.format(project=project, flow="greet", command="[echo, hi]")
        (root / name).write_text(text.replace("{type: files}", f"{{type: files, path: deploy-{project}}}"))
    first = Project.__new__(Project)
    first.root, first.manifest = root, root / "one.yaml"
    assert first.run("apply", "--auto-approve", "--file", "one.yaml", "--branch", "b-prod").code == 0
    assert first.run("apply", "--auto-approve", "--file", "two.yaml").code == 0
    inventories = sorted(p.name for p in (root / ".flowplan" / "local").glob("*.json"))
    assert len(inventories) == 2, inventories


# --------------------------------------------------------------------------- saved plans


@attack(
    "saved plans: `show` of a tampered plan (field diffs edited, checksum recomputed) must display what apply writes",
    fixed=True,
)
def test_show_renders_what_apply_would_write_not_stored_diffs(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    project.edit("image: busybox", "image: busybox:2")
    assert project.run("plan", "--out", "plan.bin").code == 0
    document = json.loads((project.root / "plan.bin").read_text())
    tampered = 0
    for change in document["payload"]["plan"]["changes"]:
        for diff in change.get("field_diffs", []):
            diff["after"] = "EVIL-DISPLAY"
            tampered += 1
    assert tampered
    document["checksum"] = plan_file_checksum(document["payload"])
    (project.root / "plan.bin").write_text(json.dumps(document))
    shown = project.run("show", "plan.bin")
    assert "EVIL-DISPLAY" not in shown.out


# --------------------------------------------------------------------------- what the repository may decide


EXEC_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:9"}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: sh
      args: ["-c", "touch {marker}; echo '{{\\"kind\\":\\"ExecCredential\\"}}'"]
"""


@attack("what the repository decides: a committed kubeconfig's exec plugin must not run during plan", fixed=True)
def test_a_kubeconfig_named_by_the_manifest_never_runs_its_exec_plugin(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    root = tmp_path / "repo"
    root.mkdir()
    (root / "kubeconfig.yaml").write_text(EXEC_KUBECONFIG.format(marker=marker))
    (root / "flows.yaml").write_text(
        "version: 1\nproject: sec\nbackends:\n  cluster:\n    type: argo\n    kubeconfig: kubeconfig.yaml\n"
        "    argo: {namespace: ml}\nflows:\n  greet:\n    image: busybox\n    steps:\n"
        "      start: {command: [echo, hi]}\n"
    )
    os.environ.pop("FLOWPLAN_ALLOW_REPO_KUBECONFIG", None)
    _cli(root, "plan", timeout=60)
    assert not marker.exists()


# --------------------------------------------------------------------------- output that lies


@attack(
    "output: bidirectional overrides and zero-width characters must print escaped (text, Markdown, JSON)", fixed=True
)
@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u2066"])
def test_invisible_and_bidi_characters_are_shown_escaped(tmp_path: Path, char: str) -> None:
    project = _project(tmp_path, command=f'[echo, "safe{char}evil"]')
    for fmt in ("text", "markdown", "json"):
        result = project.run("plan", "--format", fmt)
        assert result.code == 0, result.err
        assert char not in result.out, fmt


@attack(
    "output: an RTL override in a flow description, saved plan, graph or drift report must show escaped", fixed=True
)
def test_bidi_characters_are_escaped_in_every_other_rendering(tmp_path: Path) -> None:
    project = _project(tmp_path, command='[echo, "safe\u202eevil"]')
    project.edit("    image: busybox\n", '    image: busybox\n    description: "ok \u2067\u202e gnp.exe\u2069"\n')
    outputs = {}
    for fmt in ("text", "markdown", "json"):
        outputs[f"plan {fmt}"] = project.run("plan", "--format", fmt)
    outputs["plan --out"] = project.run("plan", "--out", "plan.bin")
    for fmt in ("text", "markdown", "json"):
        outputs[f"show {fmt}"] = project.run("show", "plan.bin", "--format", fmt)
    for fmt in ("mermaid", "dot"):
        outputs[f"graph {fmt}"] = project.run("graph", "--format", fmt)
    assert project.run("apply", "--auto-approve").code == 0
    project.edit("image: busybox", "image: busybox:2")
    (written,) = (project.root / "deploy").rglob("*workflowtemplate*/*.yaml") or [
        p for p in (project.root / "deploy").rglob("*.yaml") if "WorkflowTemplate" in p.read_text()
    ]
    written.write_text(written.read_text().replace("busybox", "busy\u202ebox"))
    for fmt in ("text", "markdown", "json"):
        outputs[f"drift {fmt}"] = project.run("drift", "--format", fmt)
    json.loads(outputs["plan json"].out)
    for name, result in outputs.items():
        text = result.out + result.err
        assert not any(c in text for c in "\u202e\u2067\u2069"), name
        assert "Traceback" not in text, name
        assert result.code == (2 if name.startswith("drift") else 0), name


@attack("output: a bidi override in a value quoted by an error message must show escaped", fixed=True)
def test_bidi_characters_in_an_error_message_are_escaped(tmp_path: Path) -> None:
    project = _project(tmp_path)
    result = project.run("plan", "--var", "nope\u202e=1")
    assert result.code == 1 and "\u202e" not in result.err and "\\u202e" in result.err


@attack(
    "output: Argo template syntax (`{{workflow.uid}}`) arriving through --var must not reach Argo unescaped", fixed=True
)
def test_argo_template_syntax_from_a_value_never_reaches_argo_unescaped(tmp_path: Path) -> None:
    project = _project(tmp_path, command='[echo, "{{ vars.token }}"]')
    project.manifest.write_text(project.manifest.read_text().replace("sensitive: true", "sensitive: false"))
    result = project.run("apply", "--auto-approve", "--var", "token={{workflow.uid}}")
    written = _everything_written(project.root / "deploy") if (project.root / "deploy").exists() else ""
    assert "{{workflow.uid}}" not in written
    assert result.code == 1 or written


@attack(
    "output: Argo syntax from a var file, `{% raw %}`, `{{ '{{' }}` or `{{=expr}}` must be refused naming the field",
    fixed=True,
)
@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("command", '[echo, "{{ vars.token }}"]'),
        ("command", '[echo, "{% raw %}{{workflow.uid}}{% endraw %}"]'),
        ("command", "[echo, \"{{ '{{' }}=sprig.env('HOME') }}\"]"),
        ("env", "{X: '{{ vars.token }}'}"),
        ("description", "'{{ vars.token }}'"),
    ],
)
def test_argo_template_syntax_is_refused_by_validate_naming_the_field(tmp_path: Path, where: str, text: str) -> None:
    project = _project(tmp_path)
    project.manifest.write_text(project.manifest.read_text().replace("sensitive: true", "sensitive: false"))
    (project.root / "vars.yaml").write_text("token: \"{{=sprig.env('AWS_SECRET_ACCESS_KEY')}}\"\n")
    if where == "command":
        project.edit("command: [echo, hi]", f"command: {text}")
    else:
        project.edit("        command: [echo, hi]\n", f"        command: [echo, hi]\n        {where}: {text}\n")
    result = project.run("validate", "--var-file", "vars.yaml")
    assert result.code == 1 and "{{" in result.err and f"steps.start.{where}" in result.err, result.err
    applied = project.run("apply", "--auto-approve", "--var-file", "vars.yaml")
    assert applied.code == 1 and not (project.root / "deploy").exists()


# --------------------------------------------------------------------------- ownership


def _untracked_template(tmp_path: Path) -> tuple[Project, str]:
    """An applied project whose WorkflowTemplate was dropped from the inventory (its markers stay), then edited."""
    project = _project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    (inventory,) = (project.root / ".flowplan" / "local").glob("*.json")
    data = json.loads(inventory.read_text())
    template = next(a for a in data["entries"] if "WorkflowTemplate" in a)
    del data["entries"][template]
    inventory.write_text(json.dumps(data))
    project.edit("image: busybox", "image: busybox:2")
    return project, template


@attack(
    "ownership: an object with flowplan's markers but absent from the inventory must be a conflict, not updated",
    fixed=True,
)
def test_a_marked_object_missing_from_the_inventory_is_a_conflict_not_an_update(tmp_path: Path) -> None:
    project, _ = _untracked_template(tmp_path)
    before = project.snapshot()
    result = project.run("apply", "--auto-approve")
    path = next(k for k in before if "WorkflowTemplate" in before[k][2].decode())
    assert project.snapshot()[path] == before[path]
    assert result.code == 1 and "conflict" in (result.out + result.err).lower()


@attack("ownership: a marked object absent from the inventory is taken over only when asked (--adopt)", fixed=True)
def test_a_marked_object_missing_from_the_inventory_is_adopted_only_when_asked(tmp_path: Path) -> None:
    project, template = _untracked_template(tmp_path)
    planned = project.run("plan", "--adopt", "--format", "json")
    assert planned.code == 0, planned.err
    actions = {c["address"]: c["action"] for c in json.loads(planned.out)["changes"]}
    assert actions.get(template) == "adopt"
    assert project.run("apply", "--auto-approve", "--adopt").code == 0
    (inventory,) = (project.root / ".flowplan" / "local").glob("*.json")
    assert template in json.loads(inventory.read_text())["entries"]
    assert project.run("plan", "--detailed-exitcode").code == 0
