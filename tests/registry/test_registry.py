"""Registry on real git repos, a bare remote and a DVC directory remote: lineage, approvals, rollback, integrity."""

from __future__ import annotations

import json

import pytest
from tests.registry.conftest import git, local_tags, remote_tags

from calibgate.errors import IntegrityError, ModelError, PolicyError, RegistryError
from calibgate.policy.api import load_policy
from calibgate.registry import api
from calibgate.runs import read_manifest

APPROVED = ["alice", "bob"]


def test_register_records_lineage_and_evidence(project):
    head = git(project, "rev-parse", "HEAD").strip()
    info = api.register("runs/a")
    assert info.tag == "router@v1.0.0" and info.version == "v1.0.0"
    r = info.record
    assert r.run_id == "a" and r.lineage.git_commit == head
    assert r.lineage.data_dvc_md5 == "0fa66f6ecc5059f38edaafb1c423c0d7.dir"
    assert r.lineage.policy == "policies/gate.yaml"
    assert r.lineage.policy_sha256 == load_policy(project / "policies" / "gate.yaml").sha256
    assert r.lineage.train_config == {"epochs": 3, "lr": 0.001} and r.lineage.plan_summary["label_noise"] == 0.02
    assert r.metrics["accuracy"] == pytest.approx(0.9) and r.exports[0].p95_ms == 10
    manifest = read_manifest("runs/a")
    assert set(r.artifacts.files) == set(manifest.files) | {"calibgate-run.json"}
    assert r.artifacts.backend == "dvc" and r.artifacts.remote == "store"
    dir_obj = project.parent / "dvc-remote" / "files" / "md5" / r.artifacts.dir_md5[:2] / r.artifacts.dir_md5[2:]
    assert dir_obj.exists()
    # the tag is on an evidence commit whose parent is HEAD; HEAD, branch and work tree untouched
    assert git(project, "rev-parse", f"{info.commit}^").strip() == head
    assert git(project, "rev-parse", "HEAD").strip() == head and git(project, "status", "--porcelain") == ""
    tree = git(project, "ls-tree", "-r", "--name-only", info.commit).split()
    assert {".calibgate-registry/router/v1.0.0/record.json", ".calibgate-registry/router/v1.0.0/evaluation.json",
            ".calibgate-registry/router/v1.0.0/export.json", ".calibgate-registry/router/v1.0.0/plan.json"} <= set(tree)
    assert "router@v1.0.0" in remote_tags(project.parent / "origin.git")
    # the next version bumps minor; versions on the same source commit still get distinct commits (gto's rule)
    second = api.register("runs/b")
    assert second.version == "v1.1.0" and second.commit != info.commit
    assert api.register("runs/c", bump_part="major").version == "v2.0.0"


def test_nothing_registered_on_bad_input(project):
    (project / "runs" / "a" / "head.safetensors").write_bytes(b"tampered")
    with pytest.raises(IntegrityError):
        api.register("runs/a")
    (project / "runs" / "b" / "evaluation.json").unlink()
    with pytest.raises(IntegrityError):  # a file the manifest lists is gone
        api.register("runs/b")
    with pytest.raises(ModelError):
        api.register("runs/nope")
    with pytest.raises(RegistryError, match="not 'v' \\+ semver"):
        api.register("runs/c", version="1.0")
    with pytest.raises(RegistryError, match="not valid for gto"):
        api.register("runs/c", name="bad name")
    assert local_tags(project) == set() and remote_tags(project.parent / "origin.git") == set()
    api.register("runs/c", version="v3.0.0")
    with pytest.raises(RegistryError, match="already registered"):
        api.register("runs/worse", version="v3.0.0")
    assert local_tags(project) == {"router@v3.0.0"}


def test_promotion_needs_the_policy_s_approvals(project):
    api.register("runs/a")
    with pytest.raises(RegistryError, match="needs 2 approval\\(s\\), got 1") as info:
        api.promote("router@v1.0.0", approved_by=["alice"])
    assert info.value.exit_code == 2 and "--approved-by" in info.value.fix
    with pytest.raises(RegistryError, match="mallory may not approve"):
        api.promote("router@v1.0.0", approved_by=["alice", "mallory"])
    with pytest.raises(RegistryError, match="needs 2"):
        api.promote("router@v1.0.0", approved_by=["alice", "alice"])  # one person counts once
    with pytest.raises(RegistryError, match="not registered"):
        api.promote("router@v9.0.0", approved_by=APPROVED)
    with pytest.raises(PolicyError):
        api.promote("router@v1.0.0", approved_by=APPROVED, policy="policies/missing.yaml")
    assert local_tags(project) == {"router@v1.0.0"}
    staged = api.promote("router@v1.0.0", stage="staging")  # staging needs none
    done = api.promote("router@v1.0.0", approved_by=["bob", "alice"], reason="gate passed")
    assert staged.tag == "router#staging#1" and done.tag == "router#production#2" and done.pushed_to == "origin"
    assert done.record.approved_by == ["alice", "bob"] and done.record.required_approvals == 2
    assert done.record.policy == "policies/gate.yaml"
    assert done.record.policy_sha256 == load_policy("policies/gate.yaml").sha256
    message = git(project, "tag", "-l", "--format=%(contents)", done.tag)
    assert json.loads(message.split("\n\n", 1)[1])["approved_by"] == ["alice", "bob"]
    with pytest.raises(RegistryError, match="already in production"):
        api.promote("router@v1.0.0", approved_by=APPROVED)


def test_rollback_reassigns_previous_production_and_keeps_history(project):
    for run in ("a", "b", "c"):
        api.register(f"runs/{run}")
    with pytest.raises(RegistryError, match="no earlier production version"):
        api.rollback("router")
    api.promote("router@v1.0.0", approved_by=APPROVED)
    api.promote("router@v1.1.0", approved_by=APPROVED)
    back = api.rollback("router", reason="latency")
    assert back.record.action == "rollback" and back.record.version == "v1.0.0" and back.record.previous == "v1.1.0"
    assert {v.version: v.stages for v in api.list_versions("router")} == {"v1.0.0": ["production"], "v1.1.0": [], "v1.2.0": []}
    with pytest.raises(RegistryError, match="no earlier"):
        api.rollback("router")  # v1.0.0 was the first production version
    api.promote("router@v1.2.0", approved_by=APPROVED)
    assert api.rollback("router").record.version == "v1.0.0"
    history = api.show_version("router@v1.0.0").history
    assert [(e.counter, e.version, e.action) for e in history] == [
        (1, "v1.0.0", "promote"), (2, "v1.1.0", "promote"), (3, "v1.0.0", "rollback"), (4, "v1.2.0", "promote"),
        (5, "v1.0.0", "rollback")]
    assert {t for t in local_tags(project) if "#" in t} == {f"router#production#{i}" for i in range(1, 6)}


def test_deprecate_uses_gto_deregistration(project):
    api.register("runs/a")
    api.register("runs/b")
    api.promote("router@v1.0.0", approved_by=APPROVED)
    with pytest.raises(RegistryError, match="is in production"):
        api.deprecate("router@v1.0.0")
    record = api.deprecate("router@v1.1.0", reason="leaked test data")
    assert record.reason == "leaked test data" and "router@v1.1.0!" in local_tags(project)
    assert "router@v1.1.0!" in remote_tags(project.parent / "origin.git")
    with pytest.raises(RegistryError, match="deprecated and cannot be promoted"):
        api.promote("router@v1.1.0", approved_by=APPROVED)
    assert [v.deprecated for v in api.list_versions("router")] == [False, True]
    with pytest.raises(RegistryError, match="already deprecated"):
        api.deprecate("router@v1.1.0")


def test_a_model_gto_deprecated_as_a_whole_is_gone_for_calibgate_too(project):
    """Before: after 'gto deprecate router' (tag router@deprecated) gto showed nothing, while calibgate still listed
    v1.0.0 in production, gated PROMOTE against it and allowed promotions."""
    from gto.api import deprecate as gto_deprecate, show

    from calibgate.pipeline.gate import gate_run

    import time

    api.register("runs/a")
    api.promote("router@v1.0.0", approved_by=APPROVED)
    time.sleep(1.1)  # tag dates have 1 s resolution, and gto reads the model deprecated only if that is its last event
    gto_deprecate(str(project), "router")
    assert "router@deprecated" in local_tags(project) and not show(str(project))
    versions = api.list_versions("router")
    assert [(v.version, v.deprecated, v.stages) for v in versions] == [("v1.0.0", True, [])]
    for attempt in (lambda: gate_run("runs/b"), lambda: api.promote("router@v1.0.0", stage="staging", approved_by=APPROVED),
                    lambda: api.register("runs/b")):
        with pytest.raises(RegistryError, match="router is deprecated as a whole") as err:
            attempt()
        assert "git tag -d router@deprecated" in err.value.fix
    assert {t for t in local_tags(project) if "#" in t} == {"router#production#1"}  # nothing new was tagged


def test_a_deprecation_tag_with_nothing_else_of_its_model_reads_as_deprecated(project):
    """A hand-made 'name@deprecated' with no version or stage tag of that model made reading the registry fail
    (max() of no dates: an internal error, exit 3) for every command."""
    from calibgate.registry.common import open_repo
    from calibgate.registry.state import read_state

    git(project, "tag", "-a", "ghost@deprecated", "-m", "Deprecating artifact 'ghost'")
    state = read_state(open_repo(project))
    assert state["ghost"].deprecated and state["ghost"].current("production") is None
    with pytest.raises(RegistryError, match="ghost is deprecated as a whole"):
        state["ghost"].refuse_if_deprecated()


def test_one_run_is_registered_once(project):
    """Before: registering a run twice made router@v1.1.0 of the same artifact, and either copy could hold stages."""
    api.register("runs/a")
    tags = local_tags(project)
    with pytest.raises(RegistryError, match="run a is already registered as router@v1.0.0") as err:
        api.register("runs/a")
    assert "promote router@v1.0.0" in err.value.fix and local_tags(project) == tags
    # nor under a second name: the run could then shadow itself, and its lineage would split in two
    with pytest.raises(RegistryError, match="run a is already registered as router@v1.0.0"):
        api.register("runs/a", name="team/router")
    assert local_tags(project) == tags


def test_verify_rehashes_the_stored_artifacts(project):
    info = api.register("runs/a")
    result = api.verify_version("router@v1.0.0")
    assert result.ok and result.files == len(info.record.artifacts.files) and result.backend == "dvc"
    # tamper with the weights' object in the DVC remote
    weights_md5 = __import__("hashlib").md5((project / "runs" / "a" / "encoder" / "model.safetensors").read_bytes()).hexdigest()
    obj = project.parent / "dvc-remote" / "files" / "md5" / weights_md5[:2] / weights_md5[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"evil")
    with pytest.raises(IntegrityError, match="encoder/model.safetensors in DVC remote .*tampered") as err:
        api.verify_version("router@v1.0.0")
    assert err.value.exit_code == 2
    obj.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        api.verify_version("router@v1.0.0")
    with pytest.raises(RegistryError, match="not registered"):
        api.verify_version("router@v4.0.0")


def test_restore_a_version_from_the_store(project, tmp_path):
    api.register("runs/a")
    out = api.fetch_version("router@v1.0.0", tmp_path / "restored")
    from calibgate.runs import verify_run

    assert verify_run(out).run_id == "a"


def test_directory_store_without_dvc(tmp_path, monkeypatch):
    from tests.registry.conftest import evaluation, init_project, make_run, truth

    root = init_project(tmp_path / "plain", dvc=False)
    monkeypatch.chdir(root)
    labels = truth(50)
    make_run(root / "runs" / "a", evaluation(labels, labels, run_id="a"))
    with pytest.raises(RegistryError, match="no artifact store") as err:
        api.register("runs/a")
    assert "--store" in err.value.fix
    info = api.register("runs/a", store="../artifacts")  # no git remote: local tags only
    assert info.record.artifacts.backend == "dir" and api.verify_version("router@v1.0.0").files == 4
    objects = sorted((tmp_path / "artifacts" / "files" / "sha256").rglob("*"))
    victim = next(p for p in objects if p.is_file())
    victim.write_bytes(b"x")
    with pytest.raises(IntegrityError):
        api.verify_version("router@v1.0.0")


def test_promotion_with_a_required_gate_decision(project, tmp_path):
    from calibgate.pipeline.gate import gate_run

    policy = project / "policies" / "gate.yaml"
    policy.write_text(policy.read_text().replace("approvers: [alice, bob, carol]}", "approvers: [alice, bob, carol], require_gate: true}"))
    api.register("runs/a")
    api.register("runs/worse")
    with pytest.raises(RegistryError, match="needs a passing gate decision"):
        api.promote("router@v1.0.0", approved_by=APPROVED)
    passed = gate_run("runs/a", baseline="none")
    assert passed.decision == "promote"
    done = api.promote("router@v1.0.0", approved_by=APPROVED, gate=passed)
    assert done.record.gate["decision"] == "promote" and done.record.gate["baseline"] is None
    with pytest.raises(RegistryError, match="not about router@v1.1.0's files"):  # a decision about another run
        api.promote("router@v1.1.0", approved_by=APPROVED, gate=passed)
    unbound = passed.model_copy(update={"candidate": "worse", "candidate_manifest_sha256": None})
    with pytest.raises(RegistryError, match="not about router@v1.1.0's files"):  # run ids are names anyone can reuse
        api.promote("router@v1.1.0", approved_by=APPROVED, gate=unbound)
    blocked = gate_run("runs/worse")
    assert blocked.decision == "block" and blocked.baseline == "router@v1.0.0"
    decision_file = tmp_path / "gate.json"
    decision_file.write_text(blocked.model_dump_json())
    with pytest.raises(RegistryError, match="says 'block'"):
        api.promote("router@v1.1.0", approved_by=APPROVED, gate=decision_file)
    forged = blocked.model_dump(mode="json")  # the verdict edited to 'promote' over its failing checks
    forged["decision"] = "promote"
    decision_file.write_text(json.dumps(forged))
    with pytest.raises(ModelError, match="decision 'promote' contradicts its checks, which say 'block'"):
        api.promote("router@v1.1.0", approved_by=APPROVED, gate=decision_file)
    assert api.list_versions("router")[1].stages == []


def test_a_gate_decision_against_an_older_production_is_stale(project):
    from calibgate.pipeline.gate import gate_run

    api.register("runs/a")
    api.register("runs/b")
    first_b = gate_run("runs/b", baseline="none")  # nothing in production yet
    api.promote("router@v1.0.0", approved_by=APPROVED, gate=gate_run("runs/a", baseline="none"))
    with pytest.raises(RegistryError, match="compared against no baseline, but router@v1.0.0 is in production"):
        api.promote("router@v1.1.0", approved_by=APPROVED, gate=first_b)
    fresh = gate_run("runs/b")
    assert fresh.baseline == "router@v1.0.0"
    assert api.promote("router@v1.1.0", approved_by=APPROVED, gate=fresh).record.gate["baseline"] == "router@v1.0.0"


def test_verify_without_the_dvc_remote_is_a_clear_error(project):
    api.register("runs/a")
    (project / ".dvc" / "config").write_text("")
    with pytest.raises(RegistryError, match="cannot open DVC remote 'store'") as err:
        api.verify_version("router@v1.0.0")
    assert "dvc remote add store ../dvc-remote" in err.value.fix


def test_a_decision_edited_to_pass_is_refused_by_the_version_s_own_evidence(project):
    """A gate JSON is a file anyone can write: the registry re-runs what the version's recorded evidence decides alone."""
    from calibgate.pipeline.gate import gate_run
    from calibgate.records.decision import GateDecision

    policy = project / "policies" / "gate.yaml"
    policy.write_text(policy.read_text().replace("min: 0.5", "min: 0.85")
                      .replace("approvers: [alice, bob, carol]}", "approvers: [alice, bob, carol], require_gate: true}"))
    api.register("runs/worse")
    blocked = gate_run("runs/worse", baseline="none")
    assert blocked.decision == "block"
    forged = blocked.model_dump(mode="json")
    for check in forged["checks"]:
        check["status"] = "PASS" if check["status"] == "FAIL" else check["status"]
    forged["decision"] = "promote"
    with pytest.raises(RegistryError, match="recorded evidence gives FAIL on accuracy_floor"):
        api.promote("router@v1.0.0", approved_by=APPROVED, gate=GateDecision.model_validate(forged))
    policy.write_text(policy.read_text().replace("min: 0.85", "min: 0.5"))
    passed = gate_run("runs/worse", baseline="none").model_dump(mode="json")
    assert passed["decision"] == "promote"
    next(c for c in passed["checks"] if c["id"] == "accuracy_floor")["value"] = 0.999
    with pytest.raises(RegistryError, match="shows accuracy_floor = 0.999"):
        api.promote("router@v1.0.0", approved_by=APPROVED, gate=GateDecision.model_validate(passed))
    assert api.list_versions("router")[0].stages == []


def test_a_project_in_a_subdirectory_of_the_repo_is_read_from_where_the_command_runs(tmp_path, monkeypatch):
    """Found from the repo's root, the registry read no calibgate.yaml for a project in repo/sub (or the root's), and
    tagged 'model@v1.0.0' while plan, train and gate used sub/calibgate.yaml's name."""
    from calibgate.registry.common import default_name, open_repo, project_config

    repo = tmp_path / "mono"
    (repo / "sub" / "deeper").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "sub" / "calibgate.yaml").write_text("name: sub-router\n")
    monkeypatch.chdir(repo / "sub" / "deeper")
    handle = open_repo(repo)
    assert default_name(None, handle) == "sub-router" and project_config(handle).root == (repo / "sub").resolve()
    monkeypatch.chdir(tmp_path)  # outside the repo (--repo given): its root's config, here none
    assert default_name(None, handle) == "model"


@pytest.mark.parametrize("approved_by", ["alice", b"alice", [1], None])
def test_approvers_given_as_one_string_are_refused_not_spelled_out(project, approved_by):
    """api.promote(approved_by='alice') counted a, c, e, i and l: five approvers, and a production tag on one word."""
    api.register("runs/a")
    tags = local_tags(project)
    with pytest.raises(RegistryError, match="approved_by must be a list of names|is int, not a name"):
        api.promote("router@v1.0.0", stage="production", approved_by=approved_by)
    with pytest.raises(RegistryError, match="approved_by must be a list"):
        api.rollback("router", approved_by="alice")
    with pytest.raises(RegistryError, match="evidence must be a list"):
        api.promote("router@v1.0.0", stage="production", approved_by=["alice", "bob"], evidence="shadow.json")
    assert local_tags(project) == tags


def test_a_baseline_stage_nobody_declared_is_refused_not_read_as_empty(project):
    """production_baseline(stage='prodution') returned None, 'nothing in production': a caller then gated in
    first-model mode, on absolute thresholds only."""
    api.register("runs/a")
    with pytest.raises(RegistryError, match="stage 'prodution' is neither declared.*did you mean 'production'"):
        api.production_baseline(project, "router", stage="prodution")
    assert api.production_baseline(project, "router") is None  # declared, and nothing holds it yet


@pytest.mark.parametrize("name", ["../../etc", "router@v1.0.0", "a//b"])
def test_listing_a_malformed_model_name_is_refused_not_empty(project, name):
    """registry list --name '../../etc' printed 'no versions registered' (exit 0) where show, pull and rollback refuse."""
    with pytest.raises(RegistryError, match="is not valid for gto"):
        api.list_versions(name, repo=project)


def test_a_ref_and_a_name_that_disagree_are_refused(project):
    """registry show router@v1.0.0 --name other ignored --name without a word."""
    api.register("runs/a")
    with pytest.raises(RegistryError, match="names model router, but --name says other"):
        api.show_version("router@v1.0.0", name="other")
    assert api.show_version("router@v1.0.0", name="router").version == "v1.0.0"


# a signing program as git calls it ('gpg --status-fd=2 -bsau KEY'): a real, if worthless, detached signature
FAKE_GPG = """#!/bin/sh
cat >/dev/null
printf '[GNUPG:] BEGIN_SIGNING H8\\n[GNUPG:] SIG_CREATED D 22 8 00 1700000000 ABCDEF\\n' >&2
printf -- '-----BEGIN PGP SIGNATURE-----\\n\\nZmFrZSBzaWduYXR1cmU=\\n-----END PGP SIGNATURE-----\\n'
"""


def test_signed_tags_keep_their_records(project):
    """SECURITY.md suggests signed tags. Before: with tag.gpgSign the signature ended each tag's message, the
    record after the headline no longer parsed, and every version read as registered by plain gto (no run, no
    metrics; verify refused it) and a signed rollback as a promotion, so a second rollback went back to the
    version rolled back from."""
    from gto.api import show

    program = project.parent / "fake-gpg"
    program.write_text(FAKE_GPG)
    program.chmod(0o755)
    git(project, "config", "tag.gpgSign", "true")
    git(project, "config", "gpg.program", str(program))
    for run in ("a", "b"):
        api.register(f"runs/{run}")
    assert "BEGIN PGP SIGNATURE" in git(project, "cat-file", "-p", "router@v1.0.0")
    assert [(v.run_id, bool(v.metrics)) for v in api.list_versions("router")] == [("a", True), ("b", True)]
    api.verify_version("router@v1.1.0")
    api.promote("router@v1.0.0", approved_by=APPROVED)
    api.promote("router@v1.1.0", approved_by=APPROVED)
    api.rollback("router", reason="latency")
    history = api.show_version("router@v1.0.0").history
    assert [(e.version, e.action) for e in history] == [("v1.0.0", "promote"), ("v1.1.0", "promote"), ("v1.0.0", "rollback")]
    assert history[0].approved_by == APPROVED
    with pytest.raises(RegistryError, match="no earlier production version"):
        api.rollback("router")
    assert show(str(project))["router"]["stage"]["production"] == "v1.0.0"


def test_a_repository_that_signs_tags_without_a_usable_key_is_refused_before_anything_is_stored(project):
    """Before: the tag is the last step, so 'unable to sign the tag' came after the run was pushed to the DVC
    remote, as git's line with no fix."""
    from tests.registry.test_refusals import one_line_refusal, remote_objects, run_cli

    git(project, "config", "tag.gpgSign", "true")
    git(project, "config", "gpg.program", "false")
    result = run_cli("registry", "register", "runs/a")
    one_line_refusal(result, "tag.gpgSign", "cannot sign", "git config tag.gpgSign false")
    assert remote_objects(project) == set() and local_tags(project) == set()
