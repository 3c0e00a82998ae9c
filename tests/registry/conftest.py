"""Registry fixtures: a real git project with DVC and a local DVC remote, a bare git remote, and runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


from tests.policy.gate_records import evaluation, export, flip, make_run, plan, truth

POLICY = """\
checks:
  accuracy_floor: {min: 0.5}
  regression: {test: mcnemar}
approvals:
  staging: {required: 0}
  production: {required: 2, approvers: [alice, bob, carol]}
"""


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def init_project(root: Path, *, dvc: bool = True, remote: Path | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    if dvc:
        from dvc.repo import Repo

        Repo.init(str(root)).close()
        (root / ".dvc" / "config").write_text("[core]\n    remote = store\n['remote \"store\"']\n    url = ../../dvc-remote\n")
    (root / "calibgate.yaml").write_text("name: router\npolicy: policies/gate.yaml\n")
    (root / "policies").mkdir()
    (root / "policies" / "gate.yaml").write_text(POLICY)
    (root / ".gitignore").write_text("/runs\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "project")
    if remote is not None:
        git(remote.parent, "init", "-q", "--bare", remote.name)
        git(root, "remote", "add", "origin", str(remote))
        git(root, "push", "-q", "origin", "HEAD:refs/heads/main")
    return root


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """tmp/project (git + DVC, default DVC remote tmp/dvc-remote) with origin = tmp/origin.git, as cwd; runs a, b, worse."""
    root = init_project(tmp_path / "project", remote=tmp_path / "origin.git")
    monkeypatch.chdir(root)
    labels = truth(400)
    base = flip(labels, 0.10, seed=1)
    better = flip(labels, 0.06, seed=2)
    worse = base.copy()
    right = [i for i in range(len(labels)) if base[i] == labels[i]][:40]
    worse[right] = (labels[right] + 1) % 3
    make_run(root / "runs" / "a", evaluation(labels, base, run_id="a"), export_record=export(10), plan_record=plan())
    make_run(root / "runs" / "b", evaluation(labels, better, run_id="b"), export_record=export(11), weights=b"weights-b")
    make_run(root / "runs" / "c", evaluation(labels, better, run_id="c"), weights=b"weights-c")
    make_run(root / "runs" / "worse", evaluation(labels, worse, run_id="worse"), weights=b"weights-worse")
    return root


def adopt_policy(root: Path, rel: str | None = None, message: str = "policy change, reviewed") -> None:
    """Commit the policy edits in the work tree (and point calibgate.yaml at ``rel``): how a team changes its policy.

    A promotion compares its policy with the one committed at HEAD and refuses a weaker one that is not committed.
    """
    if rel is not None:
        import re

        config = root / "calibgate.yaml"
        config.write_text(re.sub(r"(?m)^policy:.*$", f"policy: {rel}", config.read_text()))
    git(root, "add", "-A", "calibgate.yaml", "policies")
    git(root, "commit", "-qm", message)


def remote_tags(remote: Path) -> set[str]:
    out = git(remote, "for-each-ref", "refs/tags", "--format=%(refname:strip=2)")
    return set(out.split())


def local_tags(root: Path) -> set[str]:
    return set(git(root, "tag", "--list").split())
