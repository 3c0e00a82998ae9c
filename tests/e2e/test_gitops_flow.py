"""The GitOps flow end to end, as a team would run it: real git, real DVC, the real MiniLM, ONNX, gto.

A temporary project with a DVC directory remote and a bare git origin:
1. main: `calibgate ci` refuses to guess that nothing is in production; with
   `--baseline none` it judges the first model on absolute thresholds; it is
   registered as v1.0.0 and promoted to production only with an approval;
2. a PR that flips 30% of the labels is blocked with the right failed checks;
3. a PR that adds good data is promote-able; it becomes v1.1.0 in production;
4. rollback restores v1.0.0; `gto show` agrees with our registry;
5. a tampered artifact in the DVC remote is refused;
6. the report is posted as one PR comment and updated in place on a re-run.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from tests.conftest import demo_data_dir, read_jsonl
from tests.github.fake_github import REPO, TOKEN, FakeGitHub

pytestmark = pytest.mark.slow

POLICY = """\
schema_version: 1
checks:
  accuracy_floor: {min: 0.75}
  macro_f1_floor: {min: 0.70}
  class_recall_floor: {min: 0.30}
  regression: {metric: accuracy, test: mcnemar, max_drop: 0.0, alpha: 0.05}
  label_validity_floor: {min: 0.99}
  latency_ceiling: {max: 2000}
  label_noise_ceiling: {max: 0.12}
planner:
  tolerance: 5.0   # the flow, not the recipe, is under test: a cheap candidate keeps this test fast
approvals:
  staging: {required: 0}
  production: {required: 1, approvers: [alice]}
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def dvc_commit(root: Path, message: str) -> None:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        repo.add(str(root / "datasets"))
        repo.push()
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kwargs)


def new_project(tmp: Path) -> Path:
    """``tmp/project``: a git repo with a bare ``origin`` and DVC with the directory remote ``tmp/dvc-remote``."""
    from dvc.repo import Repo

    root = tmp / "project"
    root.mkdir()
    git(tmp, "init", "-q", "--bare", "origin.git")
    git(root, "init", "-q")
    git(root, "remote", "add", "origin", str(tmp / "origin.git"))
    Repo.init(str(root)).close()
    (root / ".dvc" / "config").write_text(f"[core]\n    remote = store\n['remote \"store\"']\n    url = {tmp / 'dvc-remote'}\n")
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = new_project(tmp_path_factory.mktemp("gitops"))
    demo = demo_data_dir()
    train = read_jsonl(demo / "train.jsonl")
    by_label: dict[str, list[dict]] = {}
    for row in train:
        by_label.setdefault(row["label"], []).append(row)
    first = [r for rows in by_label.values() for r in rows[:20]]
    (root / "datasets").mkdir()
    write(root / "datasets" / "train.jsonl", first)
    write(root / "datasets" / "calibration.jsonl", first)
    write(root / "datasets" / "test.jsonl", read_jsonl(demo / "test.jsonl")[:225])
    write(root / "datasets" / "production.jsonl", read_jsonl(demo / "production.jsonl")[:100])
    (root / "calibgate.yaml").write_text("name: router\npolicy: policies/gate.yaml\nseed: 0\n")
    (root / "policies").mkdir()
    (root / "policies" / "gate.yaml").write_text(POLICY)
    (root / ".gitignore").write_text("/runs\n/out*\n")
    dvc_commit(root, "data v1")
    git(root, "push", "-q", "origin", "HEAD:refs/heads/main")
    (root / "_by_label.json").write_text(json.dumps(by_label))  # the rest of the demo rows, for the good-data PR
    return root


def ci(root: Path, out: str, *extra: str):
    return invoke("ci", "--config", str(root / "calibgate.yaml"), "--out", str(root / out), "--json", "--no-summary",
                  "--no-annotations", *extra)


def test_gitops_flow(project, monkeypatch):
    root = project
    monkeypatch.chdir(root)
    by_label = json.loads((root / "_by_label.json").read_text())
    (root / "_by_label.json").unlink()

    # 1. first model: declared, never inferred from an empty registry; absolute thresholds only,
    #    then register and promote with approval
    implicit = ci(root, "out1")
    assert implicit.exit_code == 2 and "--baseline none" in implicit.stderr, implicit.output
    assert not (root / "runs").exists()  # refused before training
    with monkeypatch.context() as runner:  # production exported on a runner of 3 CPUs, the PRs below on this one
        import os

        runner.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
        first = ci(root, "out1", "--baseline", "none")
    assert first.exit_code == 0, first.output
    decision = json.loads((root / "out1" / "decision.json").read_text())
    assert decision["decision"] == "promote" and decision["baseline"] is None
    assert "first model" in decision["summary"].lower() or "no baseline" in decision["summary"].lower()
    run1 = sorted((root / "runs").glob("2*"))[-1]
    assert invoke("registry", "register", str(run1)).exit_code == 0
    refused = invoke("registry", "promote", "router@v1.0.0", "--stage", "production")
    assert refused.exit_code == 2 and "approv" in refused.stderr
    assert "router#production#1" not in git(root, "tag")
    assert invoke("registry", "promote", "router@v1.0.0", "--stage", "production", "--approved-by", "alice").exit_code == 0

    # 2. a PR that flips 30% of the labels is blocked, with the failed checks named
    git(root, "checkout", "-q", "-b", "noisy")
    rng = random.Random(0)
    labels = sorted(by_label)
    rows = [json.loads(line) for line in (root / "datasets" / "train.jsonl").read_text().splitlines()]
    for row in rng.sample(rows, int(0.3 * len(rows))):
        row["label"] = rng.choice([l for l in labels if l != row["label"]])
    write(root / "datasets" / "train.jsonl", rows)
    write(root / "datasets" / "calibration.jsonl", rows)
    dvc_commit(root, "data: relabelled by a new vendor")
    blocked = ci(root, "out2")
    assert blocked.exit_code == 1, blocked.output
    decision = json.loads((root / "out2" / "decision.json").read_text())
    failed = {c["id"].split(":")[0] for c in decision["checks"] if c["status"] == "FAIL"}
    assert "label_noise_ceiling" in failed, decision["checks"]
    assert decision["baseline"] == "router@v1.0.0"
    report = (root / "out2" / "report.md").read_text()
    assert report.startswith("<!-- calibgate-report:router -->") and "label_noise_ceiling" in report

    # 3. a PR that adds good data is promote-able and becomes v1.1.0 in production
    git(root, "checkout", "-q", "main")
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        repo.checkout(force=True)
    git(root, "checkout", "-q", "-b", "more-data")
    more = [r for rows_ in by_label.values() for r in rows_[:45]]
    write(root / "datasets" / "train.jsonl", more)
    dvc_commit(root, "data: 25 more examples per intent")
    good = ci(root, "out3")
    assert good.exit_code == 0, good.output
    decision = json.loads((root / "out3" / "decision.json").read_text())
    assert decision["decision"] == "promote" and decision["baseline"] == "router@v1.0.0"
    assert any(c["id"] == "regression" and c["status"] in ("PASS", "WARN") for c in decision["checks"])
    # the candidate is timed as production was (3 threads), not on this runner's CPUs: a latency max_ratio of two
    # thread counts is an ERROR, which blocked every PR from a runner of another size
    timed = {a["latency"]["threads"] for a in json.loads((root / "out3" / "export.json").read_text())["artifacts"]}
    assert timed == {3}, timed
    run3 = sorted((root / "runs").glob("2*"))[-1]
    assert invoke("registry", "register", str(run3)).exit_code == 0
    assert invoke("registry", "promote", "router@v1.1.0", "--approved-by", "alice").exit_code == 0

    # 4. rollback restores v1.0.0, and gto reads the same registry
    assert invoke("registry", "rollback", "router", "--reason", "p95 latency doubled").exit_code == 0
    listed = json.loads(invoke("registry", "list", "--json").stdout)
    stages = {v["version"]: v["stages"] for v in (listed if isinstance(listed, list) else listed["versions"])}
    assert stages["v1.0.0"] == ["production"] and stages["v1.1.0"] == []
    from gto.api import show

    gto_state = show(str(root))
    assert gto_state["router"]["version"] == "v1.1.0"
    assert gto_state["router"]["stage"]["production"] == "v1.0.0"
    assert "router#production#" in git(root, "ls-remote", "--tags", "origin")

    # 5. a tampered artifact in the remote is refused
    assert invoke("registry", "verify", "router@v1.0.0").exit_code == 0
    shown = json.loads(invoke("registry", "show", "router@v1.0.0", "--json").stdout)
    remote = Path(str(root.parent / "dvc-remote"))
    victims = sorted(p for p in remote.rglob("*") if p.is_file() and not p.name.endswith(".dir") and p.stat().st_size > 1000)
    assert victims and shown
    for victim in victims:  # the remote is content-addressed: change every stored object in place, sizes kept
        victim.chmod(0o644)
        with victim.open("r+b") as fh:
            fh.seek(100)
            fh.write(b"tampered")
    tampered = invoke("registry", "verify", "router@v1.0.0")
    assert tampered.exit_code == 2 and "sha256" in tampered.stderr.lower()

    # 6. the report is one PR comment, updated in place on a re-run
    with FakeGitHub() as gh:
        env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": gh.url}
        for out in ("out2", "out3"):
            posted = invoke("report", "--records", str(root / out), "--post", "--repo", REPO, "--pr", "7", env=env)
            assert posted.exit_code == 0, posted.output
        comments = gh.state.comments[7]
        assert len(comments) == 1 and comments[0]["body"].startswith("<!-- calibgate-report:router -->")
        assert "label_noise_ceiling" not in comments[0]["body"].split("###")[1], "the comment shows the latest run"
