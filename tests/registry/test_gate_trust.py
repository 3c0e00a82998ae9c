"""A gate that cannot trust its baseline blocks, and a promotion needs a passing gate by default.

Real git repos, a real bare remote and a real DVC directory remote (tests/registry/conftest.py).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from tests.registry.conftest import adopt_policy, git, local_tags

from calibgate.cli import cli
from calibgate.errors import IntegrityError, RegistryError
from calibgate.pipeline.gate import gate_run
from calibgate.registry import api

APPROVED = ["alice", "bob"]


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _promote_a(project):
    api.register("runs/a")
    api.promote("router@v1.0.0", approved_by=APPROVED)


def _stored_object(project, content: bytes):
    md5 = __import__("hashlib").md5(content).hexdigest()
    return project.parent / "dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]


def test_a_tampered_production_artifact_blocks_the_gate(project):
    """Before: the baseline was read from git evidence only, so a tampered stored artifact was still trusted."""
    _promote_a(project)
    assert gate_run("runs/b").decision == "promote"
    obj = _stored_object(project, (project / "runs" / "a" / "encoder" / "model.safetensors").read_bytes())
    obj.chmod(0o644)
    obj.write_bytes(b"evil")
    result = run("gate", "--candidate", "runs/b", "--json")
    decision = json.loads(result.stdout)
    assert result.exit_code == 3 and decision["decision"] == "error", result.output
    integrity = [c for c in decision["checks"] if c["id"] == "baseline_integrity"]
    assert integrity and integrity[0]["status"] == "ERROR" and "tampered" in integrity[0]["message"]
    obj.unlink()  # a missing artifact cannot be verified either: never a pass
    assert gate_run("runs/b").decision == "error"


def test_a_production_store_that_is_gone_blocks_the_gate_as_untrusted(project):
    """Before: with the whole DVC remote gone the gate said 'bad input' (exit 2) and advised --baseline none, which
    drops every comparison with production; one missing object was already an ERROR check (exit 3)."""
    _promote_a(project)
    remote = project.parent / "dvc-remote"
    remote.rename(project.parent / "dvc-gone")
    result = run("gate", "--candidate", "runs/b", "--json")
    decision = json.loads(result.stdout)
    assert result.exit_code == 3 and decision["decision"] == "error", result.output
    (integrity,) = [c for c in decision["checks"] if c["id"] == "baseline_integrity"]
    assert integrity["status"] == "ERROR" and "cannot be read" in integrity["message"] and "--baseline none" not in result.output
    verify = run("registry", "verify", "router@v1.0.0")
    assert verify.exit_code == 2 and "cannot be read" in verify.stderr  # for verify: a configuration to fix


def _repoint_version_tag(project, edit) -> None:
    """Rewrite router@v1.0.0's evidence commit as an attacker with push access would: same record, edited evaluation."""
    info = api.show_version("router@v1.0.0")
    work = project.parent / "forge"
    git(project.parent, "clone", "-q", str(project), str(work))
    git(work, "checkout", "-q", info.commit)
    path = work / ".calibgate-registry" / "router" / "v1.0.0" / "evaluation.json"
    path.write_text(edit(path.read_text()))
    git(work, "commit", "-qam", "evidence")
    forged = git(work, "rev-parse", "HEAD").strip()
    git(project, "fetch", "-q", str(work), forged)
    message = git(project, "tag", "-l", "--format=%(contents)", "router@v1.0.0")
    git(project, "tag", "-f", "-a", "router@v1.0.0", forged, "-m", message)
    git(project, "push", "-q", "-f", "origin", "refs/tags/router@v1.0.0")


def _worse_metrics(text: str) -> str:
    record = json.loads(text)
    record["metrics"]["accuracy"] = 0.1
    return json.dumps(record, indent=2)


def test_tampered_baseline_evidence_blocks_the_gate_and_refuses_promotion(project):
    _promote_a(project)
    api.register("runs/worse")
    # make production look worse than it is, so that a regression slips past the paired test
    _repoint_version_tag(project, _worse_metrics)
    decision = gate_run("runs/worse")
    assert decision.decision == "error"
    assert any(c.id == "baseline_integrity" and "evaluation.json hashes to" in c.message for c in decision.checks)
    with pytest.raises(IntegrityError, match="evidence was tampered"):
        api.promote("router@v1.1.0", approved_by=APPROVED)
    assert {t for t in local_tags(project) if "#" in t} == {"router#production#1"}


def test_promotion_refuses_a_blocked_version_without_needing_gate(project):
    """Before: the default policy (no require_gate) let 'registry promote' ship a version whose gate said block."""
    _promote_a(project)
    api.register("runs/worse")
    assert gate_run("runs/worse").decision == "block"
    result = run("registry", "promote", "router@v1.1.0", "--approved-by", "alice", "--approved-by", "bob")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "says 'block'" in result.stderr and "regression" in result.stderr
    assert {t for t in local_tags(project) if "#" in t} == {"router#production#1"}
    # the gate is not skipped without the policy's leave, and never silently
    no_leave = run("registry", "promote", "router@v1.1.0", "--approved-by", "alice", "--approved-by", "bob",
                   "--override-gate", "--reason", "hotfix")
    assert no_leave.exit_code == 2 and "does not allow overriding the gate" in no_leave.stderr
    policy = project / "policies" / "gate.yaml"
    policy.write_text(policy.read_text().replace("approvers: [alice, bob, carol]}", "approvers: [alice, bob, carol], allow_gate_override: true}"))
    uncommitted = run("registry", "promote", "router@v1.1.0", "--approved-by", "alice", "--approved-by", "bob",
                      "--override-gate", "--reason", "hotfix")
    assert uncommitted.exit_code == 2 and "allow_gate_override False -> True" in uncommitted.stderr  # not reviewed yet
    adopt_policy(project)
    no_reason = run("registry", "promote", "router@v1.1.0", "--approved-by", "alice", "--approved-by", "bob", "--override-gate")
    assert no_reason.exit_code == 2 and "needs a reason" in no_reason.stderr
    done = api.promote("router@v1.1.0", approved_by=APPROVED, override_gate=True, reason="known regression, hotfix")
    assert done.record.gate["decision"] == "override" and "known regression, hotfix" in done.record.gate["summary"]
    message = git(project, "tag", "-l", "--format=%(contents)", done.tag)
    assert json.loads(message.split("\n\n", 1)[1])["gate"]["decision"] == "override"


def test_a_passing_version_is_promoted_with_the_gate_recorded(project):
    api.register("runs/a")
    first = api.promote("router@v1.0.0", approved_by=APPROVED)  # the registry is read: nothing holds production
    assert first.record.gate["decision"] == "promote" and first.record.gate["baseline"] is None
    assert first.record.gate["source"] == "registry evidence"
    api.register("runs/b")
    second = api.promote("router@v1.1.0", approved_by=APPROVED)
    assert second.record.gate["baseline"] == "router@v1.0.0" and "passed" in second.record.gate["summary"]


def test_a_presented_block_decision_is_refused(project):
    _promote_a(project)
    api.register("runs/worse")
    with pytest.raises(RegistryError, match="says 'block'"):
        api.promote("router@v1.1.0", approved_by=APPROVED, gate=gate_run("runs/worse"))


def test_a_report_refuses_a_plan_the_decision_did_not_read(project, tmp_path):
    """Before: 'report --decision d.json --plan other.json' showed another plan's signals and suspects under a
    decision whose signal checks had read a different plan, with exit 0. The decision now names its plan's digest."""
    from tests.policy.gate_records import plan

    from calibgate.records.plan import Plan

    decision = gate_run("runs/a", baseline=None)
    own = Plan.model_validate_json((project / "runs" / "a" / "plan.json").read_text())
    assert decision.plan_sha256 == own.content_sha256()
    assert gate_run("runs/b", baseline=None).plan_sha256 is None  # no plan read, none named
    (tmp_path / "d.json").write_text(decision.model_dump_json(indent=2))
    relaid = tmp_path / "relaid.json"  # the same plan, laid out differently, is the same plan
    relaid.write_text(json.dumps(json.loads(own.model_dump_json()), indent=4, sort_keys=True))
    assert run("report", "--decision", str(tmp_path / "d.json"), "--plan", str(relaid)).exit_code == 0
    # dict fields in another key order (ci writes the plan it made, train a plan it read) are the same content
    assert own.model_copy(update={"timings": {"b": 1.0, "a": 2.0}}).content_sha256() == \
        own.model_copy(update={"timings": {"a": 2.0, "b": 1.0}}).content_sha256()
    other = tmp_path / "other.json"
    other.write_text(plan().model_copy(update={"created_at": "2026-01-01T00:00:00Z"}).model_dump_json())
    result = CliRunner().invoke(cli, ["report", "--decision", str(tmp_path / "d.json"), "--plan", str(other)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "other.json is not the plan the decision's checks read" in result.stderr and "fix: " in result.stderr
    result = CliRunner().invoke(cli, ["report", "--decision", str(tmp_path / "d.json"), "--plan", "runs/a/plan.json"])
    assert result.exit_code == 0, result.output  # the run's own plan is the one it read


@pytest.mark.parametrize("baseline", ["runs/worse", "runs/worse-copy", "production"])
def test_a_run_gated_against_itself_is_refused(project, baseline):
    """Before: 'gate --candidate runs/worse --baseline runs/worse' (or a copy of the directory, or the run that is the
    version in production) said PROMOTE with exit 0: no drop, no regression and a latency ratio of 1, by construction."""
    import shutil

    shutil.copytree(project / "runs" / "worse", project / "runs" / "worse-copy")
    api.register("runs/worse")
    api.promote("router@v1.0.0", approved_by=APPROVED)
    result = run("gate", "--candidate", "runs/worse", "--baseline", baseline)
    assert result.exit_code == 2, result.output
    assert "a model compared with itself" in result.stderr and "--baseline none" in result.stderr
    assert run("gate", "--candidate", "runs/worse", "--baseline", "runs/a").exit_code == 1  # against another run: blocked


def test_the_pure_gate_errs_on_a_baseline_that_is_the_candidate():
    from tests.policy.gate_records import evaluation, flip, truth

    from calibgate.policy.api import gate
    from calibgate.policy.loader import parse_policy

    labels = truth(200)
    record = evaluation(labels, flip(labels, 0.1, seed=1), run_id="same")
    decision = gate(parse_policy(b"checks:\n  regression: {}\n", "p.yaml"), record, baseline=record)
    assert decision.decision == "error"
    assert [c.id for c in decision.checks if c.status == "ERROR"] == ["baseline_integrity"]
