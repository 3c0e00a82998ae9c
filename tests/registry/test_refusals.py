"""Registry refusals: each leaves no tag and no object in the DVC remote, and says what to do in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


@pytest.mark.parametrize("args, needle", [
    (["registry", "register", "runs/a", "--name", "", "--no-push"], "'--name': is empty"),
    (["registry", "register", "runs/a", "--name", "-bad", "--no-push"], "model name '-bad' is not valid"),
    # git refuses an empty path part: the artifacts were stored before 'git update-index' failed
    (["registry", "register", "runs/a", "--name", "a//b", "--no-push"], "model name 'a//b' is not valid"),
    (["registry", "rollback", "", "--no-push"], "NAME]': is empty"),
    (["registry", "show", "v1.0.0", "--name", ""], "'--name': is empty"),
    (["registry", "register", "runs/a", "--dvc-remote", "", "--no-push"], "'--dvc-remote': is empty"),
])
def test_an_empty_or_malformed_name_is_refused_not_replaced_by_a_default(project, args, needle):
    objects = remote_objects(project)
    one_line_refusal(run_cli(*args), needle)
    assert local_tags(project) == set() and remote_objects(project) == objects


def test_the_api_refuses_an_empty_name_too(project):
    with pytest.raises(RegistryError, match="model name '' is not valid"):
        api.register("runs/a", name="", push=False)


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


def test_pull_into_a_sealed_run_is_refused_and_that_run_stays_loadable(project):
    from calibgate.runs import load_run

    api.register("runs/a", push=False)
    before = sorted(p.relative_to(project) for p in (project / "runs" / "a").rglob("*"))
    result = run_cli("registry", "pull", "router@v1.0.0", "--to", "runs/a/restored")
    one_line_refusal(result, "--to runs/a/restored", "inside the sealed run")
    assert sorted(p.relative_to(project) for p in (project / "runs" / "a").rglob("*")) == before
    load_run(project / "runs" / "a")


@pytest.mark.parametrize("second", ["Alice", "alice\u200b", " ALICE ", "\uff41lice"])
def test_one_person_spelled_twice_is_one_approval(project, second):
    api.register("runs/a", push=False)
    with pytest.raises(RegistryError, match="needs 2 approval"):
        api.promote("router@v1.0.0", approved_by=["alice", second], push=False)
    assert api.promote("router@v1.0.0", approved_by=["alice", "Bob"], push=False).record.approved_by == ["Bob", "alice"]


@pytest.mark.parametrize("second", ["Alice  Smith", "Alice\tSmith", "alice\u00a0smith", " alice smith\n"])
def test_one_full_name_spaced_twice_is_one_approval(project, second):
    """Before: with anyone allowed to approve, 'Alice Smith' and 'Alice  Smith' were two approvals (and against a
    list naming 'Alice Smith', the second spelling was refused as someone else)."""
    from tests.registry.conftest import adopt_policy

    policy = project / "policies" / "gate.yaml"
    policy.write_text(policy.read_text().replace("required: 2, approvers: [alice, bob, carol]", "required: 2"))
    adopt_policy(project)
    api.register("runs/a", push=False)
    with pytest.raises(RegistryError, match="needs 2 approval"):
        api.promote("router@v1.0.0", approved_by=["Alice Smith", second], push=False)
    policy.write_text(policy.read_text().replace("required: 2", "required: 1, approvers: ['Alice Smith']"))
    adopt_policy(project)
    assert api.promote("router@v1.0.0", approved_by=[second], push=False).record.approved_by == [second.strip()]


def test_a_policy_cannot_require_more_people_than_it_lists(project):
    from calibgate.errors import PolicyError
    from calibgate.policy.loader import load_policy

    policy = project / "policies" / "gate.yaml"
    policy.write_text(policy.read_text().replace("required: 2, approvers: [alice, bob, carol]", "required: 2, approvers: [alice, Alice]"))
    with pytest.raises(PolicyError, match="only 1 distinct approvers"):
        load_policy(policy)


def _hand_made_stage_tag(project, name: str, message: str, commit: str = "HEAD") -> None:
    from tests.registry.conftest import git

    git(project, "tag", "-a", name, commit, "-m", message)


def test_a_hand_made_stage_tag_makes_the_stage_unreadable_not_quietly_skipped(project):
    from tests.registry.conftest import git

    api.register("runs/a", push=False)
    api.promote("router@v1.0.0", approved_by=["alice", "bob"], push=False)
    # gto reads this as production = the HEAD commit; calibgate used to skip it and keep v1.0.0
    _hand_made_stage_tag(project, "router#production#9", "not a calibgate record")
    result = run_cli("registry", "list")
    one_line_refusal(result, "router#production#9", "git tag -d")
    git(project, "tag", "-d", "router#production#9")
    # a record naming a version never registered (gate and drift crashed with KeyError)
    message = git(project, "tag", "-l", "--format=%(contents)", "router#production#1")
    forged = message.replace('"version": "v1.0.0"', '"version": "v7.0.0"').replace('"counter": 1', '"counter": 9')
    _hand_made_stage_tag(project, "router#production#9", forged, api.show_version("router@v1.0.0").commit)
    with pytest.raises(RegistryError, match="records version v7.0.0, which is not registered"):
        api.list_versions("router")
    from calibgate.pipeline.gate import gate_run

    with pytest.raises(RegistryError, match="unreadable"):
        gate_run("runs/b")


def test_a_tag_message_cannot_forge_other_tags_or_break_the_registry(project):
    from tests.registry.conftest import git

    api.register("runs/a", push=False)
    api.promote("router@v1.0.0", approved_by=["alice", "bob"], push=False)
    record = git(project, "tag", "-l", "--format=%(contents)", "router#production#1")
    commit = api.show_version("router@v1.0.0").commit
    # the old record and field separators, then a whole fake stage tag's fields
    forged = "notes\x1e\nrouter#production#99\x1ftag\x1f" + commit + "\x1fdeadbeef\x1fmallory\x1f2026-01-01T00:00:00+00:00\x1f" + record
    (project / "msg.txt").write_text(forged)
    git(project, "tag", "-a", "zz-release", "HEAD", "-F", "msg.txt")
    (project / "bad.txt").write_bytes(b"bad \xff message\n")
    git(project, "tag", "-a", "zz-latin1", "HEAD", "-F", "bad.txt")
    git(project, "tag", "-a", "router@v5.0.0", "HEAD^{tree}", "-m", "a tree, not a commit")
    history = api.show_version("router@v1.0.0").history
    assert [e.tag for e in history] == ["router#production#1"]
    assert [v.version for v in api.list_versions("router")] == ["v1.0.0"]


def test_a_malformed_dvc_config_is_one_line_exit_2(project):
    (project / ".dvc" / "config").write_text("[core\n")
    one_line_refusal(run_cli("registry", "register", "runs/a", "--no-push"), "DVC configuration", ".dvc/config")
    assert local_tags(project) == set()


def test_no_git_identity_is_refused_before_anything_is_stored(project, tmp_path, monkeypatch):
    """A bare CI runner has no user.name/user.email: register used to push to the DVC remote, then fail at the tag."""
    from calibgate.errors import RegistryError
    from calibgate.registry import api

    remote = project.parent / "dvc-remote"
    before = sorted(p for p in remote.rglob("*")) if remote.exists() else []
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-config"))
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(key, raising=False)
    subprocess.run(["git", "config", "--unset", "user.name"], cwd=project, check=False)
    subprocess.run(["git", "config", "user.useConfigOnly", "true"], cwd=project, check=True)
    with pytest.raises(RegistryError, match="no identity"):
        api.register("runs/a")
    assert (sorted(p for p in remote.rglob("*")) if remote.exists() else []) == before


def test_git_failing_on_the_machine_is_exit_3_and_names_the_fault(project, tmp_path, monkeypatch):
    """A read-only or full disk under .git made 'git tag' fail; it was exit 2, the code of a wrong input. The real
    git runs here, behind a wrapper that makes 'git tag' fail as it does on a read-only file system."""
    import shutil

    from calibgate.errors import EnvironmentFailure
    from calibgate.registry import api

    real = shutil.which("git")
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f"""#!/bin/sh
if [ "$1" = tag ] && [ "$2" = -a ]; then
  echo "fatal: cannot lock ref 'refs/tags/x': Unable to create '.git/refs/tags/x.lock': Read-only file system" >&2
  exit 128
fi
exec {real} "$@"
""")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    with pytest.raises(EnvironmentFailure, match="git tag failed: .*Read-only file system") as info:
        api.register("runs/a", push=False)
    assert info.value.exit_code == 3 and "writable" in info.value.fix
    assert local_tags(project) == set()


def test_a_dvc_remote_that_cannot_take_the_objects_is_one_line(project):
    """DVC printed its own 'failed to transfer' line per object (ten lines) above calibgate's; the line now says why
    (the first cause DVC logged), alone, in a real process."""
    import hashlib

    remote = project.parent / "dvc-remote"
    for path in (project / "runs" / "a").rglob("*"):
        if path.is_file():  # where DVC 3 keeps each object: a directory in the way of every one
            digest = hashlib.md5(path.read_bytes()).hexdigest()
            (remote / "files" / "md5" / digest[:2] / digest[2:]).mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "calibgate", "registry", "register", "runs/a", "--no-push"],
                            cwd=project, capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "DVC" in lines[0] and "remote" in lines[0], lines[0]
    assert local_tags(project) == set()


def test_dvc_log_lines_are_kept_out_of_the_output_and_kept_for_the_error(capfd):
    """A full DVC remote printed DVC's own 'failed to transfer' line per object on the real stderr (its handler holds
    it, so redirecting sys.stderr missed them) above calibgate's line; the push's error now names the logged cause."""
    import errno
    import logging

    from calibgate.data.versions import quiet_dvc

    with quiet_dvc() as logged:
        logging.getLogger("dvc_data.hashfile.transfer").error(
            "failed to transfer '%s'", "ab12", exc_info=OSError(errno.ENOSPC, "No space left on device"))
        logging.getLogger("dvc").warning("To track the changes with git, run: git add datasets.dvc")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert [r.getMessage() for r in logged] == ["failed to transfer 'ab12'", "To track the changes with git, run: git add datasets.dvc"]
    assert logged[0].exc_info[1].errno == errno.ENOSPC


def test_a_tag_name_taken_by_a_tag_the_registry_cannot_read_is_refused_before_anything_is_stored(project):
    """Before: a lightweight 'router@v1.1.0' (or an annotated tag of a blob) is no version for calibgate or gto, so
    the next registration was named v1.1.0; git refused that tag only after the run was pushed to the DVC remote,
    and the advice was 'git fetch --tags, then retry', which could never succeed. A stage tag of a blob made the
    next promotion compute a taken name the same way."""
    from tests.registry.conftest import git

    api.register("runs/a")
    git(project, "tag", "router@v1.1.0", "HEAD")  # lightweight
    objects, tags = remote_objects(project), local_tags(project)
    result = run_cli("registry", "register", "runs/b")
    one_line_refusal(result, "router@v1.1.0", "no registry tag", "git tag -d 'router@v1.1.0'", "--version")
    assert remote_objects(project) == objects and local_tags(project) == tags
    assert api.register("runs/b", version="v1.2.0").tag == "router@v1.2.0"
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=project, input="x", text=True,
                          capture_output=True, check=True).stdout.strip()
    git(project, "tag", "-a", "-m", "not a commit", "router#production#1", blob)
    assert api.promote("router@v1.0.0", approved_by=["alice", "bob"]).tag == "router#production#2"
    git(project, "tag", "router@v1.2.0!", "HEAD")
    one_line_refusal(run_cli("registry", "deprecate", "router@v1.2.0"), "router@v1.2.0!", "no registry tag")
    assert not api.show_version("router@v1.2.0").deprecated


def test_a_remote_that_is_not_configured_is_a_typo_refused_before_anything_is_stored(project):
    """Before: '--remote orign' was an environment failure (exit 3) after the run was verified, whose message was
    the last line of git's advice: 'cannot fetch tags from 'orign' (git fetch failed: and the repository exists.)'."""
    from tests.registry.conftest import git

    result = run_cli("registry", "register", "runs/a", "--remote", "orign")
    one_line_refusal(result, "no remote named 'orign'", "remotes: origin")
    assert remote_objects(project) == set() and local_tags(project) == set()
    api.register("runs/a")
    one_line_refusal(run_cli("registry", "promote", "router@v1.0.0", "--approved-by", "alice", "--approved-by", "bob",
                             "--remote", "orign"), "no remote named 'orign'")
    git(project, "remote", "add", "gone", str(project.parent / "gone.git"))  # configured, but not there: the environment
    result = run_cli("registry", "promote", "router@v1.0.0", "--approved-by", "alice", "--approved-by", "bob", "--remote", "gone")
    assert result.exit_code == 3 and "does not appear to be a git repository" in result.stderr, result.output
    assert local_tags(project) == {"router@v1.0.0"}


def test_a_registry_lock_that_cannot_be_created_is_one_line_exit_3(project):
    """Before: a lock path that cannot be created (a read-only .git, or a directory in its place) was 'internal
    error: IsADirectoryError' or 'the output could not be written; redirect the output'."""
    lock = project / ".git" / "calibgate-registry.lock"
    lock.mkdir()
    result = run_cli("registry", "register", "runs/a")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 3 and len(lines) == 1 and "internal error" not in lines[0], result.output
    assert "cannot create the registry lock" in lines[0] and "git directory" in lines[0]
    assert remote_objects(project) == set() and local_tags(project) == set()
    lock.rmdir()


def test_promoting_from_a_checkout_with_no_commit_says_so(project, tmp_path, monkeypatch):
    """Before: a fresh 'git init' that fetched the registry's tags was told "--policy-base 'HEAD' is not a commit",
    an option promote does not have."""
    from tests.registry.conftest import git

    api.register("runs/a")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q")
    git(fresh, "fetch", "-q", str(project.parent / "origin.git"), "refs/tags/*:refs/tags/*")
    (fresh / "calibgate.yaml").write_text((project / "calibgate.yaml").read_text())
    (fresh / "policies").mkdir()
    (fresh / "policies" / "gate.yaml").write_text((project / "policies" / "gate.yaml").read_text())
    monkeypatch.chdir(fresh)
    result = run_cli("registry", "promote", "router@v1.0.0", "--approved-by", "alice", "--approved-by", "bob", "--no-push")
    one_line_refusal(result, "has no commits yet", "git commit")
    assert "policy-base" not in result.stderr and not any("#" in t for t in local_tags(fresh))
