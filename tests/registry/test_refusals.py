"""Registry refusals: each leaves no tag and no object in the DVC remote, and says what to do in one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from tests.registry.conftest import local_tags

from calibgate.cli import cli
from calibgate.errors import ModelError, RegistryError
from calibgate.registry import api
from calibgate.runs import MANIFEST, manifest_digest, read_manifest


def remote_objects(project) -> set[str]:
    root = project.parent / "dvc-remote"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_refusal(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("stage", ["prodution", "PROD", "a/b", "canary"])
def test_promotion_to_a_stage_the_policy_does_not_declare_is_refused(project, stage):
    api.register("runs/a", push=False)
    before = local_tags(project)
    result = run_cli("registry", "promote", "router@v1.0.0", "--stage", stage, "--approved-by", "alice", "--no-push")
    one_line_refusal(result, f"stage '{stage}' is not declared", "staging, production")
    assert local_tags(project) == before
    if stage == "prodution":
        assert "did you mean 'production'?" in result.stderr


def test_a_policy_without_stages_allows_no_promotion(project):
    api.register("runs/a", push=False)
    policy = project / "policies" / "gate.yaml"
    text = policy.read_text()
    policy.write_text(text[: text.index("approvals:")])
    with pytest.raises(RegistryError, match="declares no stages"):
        api.promote("router@v1.0.0", stage="production", approved_by=["alice"], push=False)


def test_rollout_order_declares_its_stages(project):
    api.register("runs/a", push=False)
    policy = project / "policies" / "gate.yaml"
    policy.write_text(policy.read_text() + "rollout:\n  order: [shadow, staging, production]\n")
    done = api.promote("router@v1.0.0", stage="shadow", push=False)
    assert done.record.stage == "shadow"


@pytest.mark.parametrize("args", [
    ["registry", "register", "runs/a", "--name", "", "--no-push"],
    ["registry", "register", "runs/a", "--name", "-bad", "--no-push"],
    ["registry", "rollback", "", "--no-push"],
    ["registry", "show", "v1.0.0", "--name", ""],
])
def test_an_empty_or_malformed_name_is_refused_not_replaced_by_the_config_name(project, args):
    objects = remote_objects(project)
    one_line_refusal(run_cli(*args), "model name")
    assert local_tags(project) == set() and remote_objects(project) == objects


def test_a_name_git_cannot_store_as_a_tag_is_refused_before_anything_is_stored(project):
    objects = remote_objects(project)
    result = run_cli("registry", "register", "runs/a", "--name", "m" * 300, "--no-push")
    one_line_refusal(result, "bytes", "shorter model name")
    assert local_tags(project) == set() and remote_objects(project) == objects


def test_a_manifest_whose_data_record_has_the_wrong_type_stores_nothing(project):
    manifest = read_manifest(project / "runs" / "a")
    forged = manifest.model_construct(**{**dict(manifest), "data": {**manifest.data, "dvc_md5": ["x"]}})
    forged = forged.model_construct(**{**dict(forged), "manifest_sha256": manifest_digest(forged)})
    (project / "runs" / "a" / MANIFEST).write_text(json.dumps(forged.model_dump(mode="json")))
    objects = remote_objects(project)
    with pytest.raises(ModelError, match=r"data.*must be a string"):
        api.register("runs/a", push=False)
    assert local_tags(project) == set() and remote_objects(project) == objects


def test_pull_into_a_path_through_a_file_is_a_clear_refusal(project):
    api.register("runs/a", push=False)
    (project / "afile").write_text("x")
    result = run_cli("registry", "pull", "router@v1.0.0", "--to", "afile/sub")
    one_line_refusal(result, "afile", "exists and is not a directory")
