"""`calibgate drift` on real texts with the real MiniLM: quiet on same-source data, an issue on drift."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from tests.conftest import read_jsonl
from tests.github.fake_github import REPO, TOKEN, FakeGitHub

pytestmark = pytest.mark.slow


def _sample(path, n, seed):
    rows = read_jsonl(path)
    return [rows[i] for i in np.random.default_rng(seed).choice(len(rows), n, replace=False)]


@pytest.fixture
def project(tmp_path, shared_datasets):
    write = lambda name, rows: (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    write("train.jsonl", _sample(shared_datasets / "banking77" / "train.jsonl", 150, 0))
    write("same.jsonl", [{"text": r["text"]} for r in _sample(shared_datasets / "banking77" / "test.jsonl", 80, 1)])
    write("spam.jsonl", [{"text": r["text"]} for r in _sample(shared_datasets / "sms_spam" / "test.jsonl", 80, 1)])
    (tmp_path / "calibgate.yaml").write_text("name: router\ndata:\n  train: train.jsonl\n  production: same.jsonl\n")
    return tmp_path


def test_drift_is_quiet_without_shift_and_opens_one_issue_with_evidence(project):
    runner = CliRunner()
    quiet = runner.invoke(cli, ["drift", "--config", str(project / "calibgate.yaml"), "--dry-run"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout.startswith("calibgate: no drift") and len(quiet.stdout.strip().splitlines()) == 1
    with FakeGitHub() as gh:
        env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": gh.url}
        args = ["drift", "--config", str(project / "calibgate.yaml"), "--production", str(project / "spam.jsonl"), "--repo", REPO]
        for _ in range(2):
            loud = runner.invoke(cli, args, env=env)
            assert loud.exit_code == 0, loud.output
        assert len(gh.state.issues) == 1, "a second drift run comments on the open issue instead of opening another"
        issue = gh.state.issues[0]
        assert "drift" in issue["title"].lower() and "AUC" in issue["body"]
