"""`calibgate suggest-labels` end to end on the tiny encoder: JSONL out, reasons, and the PR comment."""

from __future__ import annotations

import json

from click.testing import CliRunner

from calibgate.cli import cli
from tests.conftest import read_jsonl, write_jsonl
from tests.github.fake_github import REPO, TOKEN, FakeGitHub


def _project(tmp_path, tiny_bert_dir):
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"please reset my card {i}", "label": "card"} for i in range(40)])
    pool = [{"text": f"please reset my card {i}"} for i in range(100, 130)]
    pool += [{"text": " ".join(["zebra quantum violin"] * (2 + i % 5)) + f" {i}"} for i in range(30)]
    write_jsonl(tmp_path / "pool.jsonl", pool)
    (tmp_path / "calibgate.yaml").write_text(
        f"name: router\nmodel: {tiny_bert_dir}\ndata:\n  train: train.jsonl\n  dvc_target: null\n"
    )
    return tmp_path / "calibgate.yaml"


def test_suggest_labels_writes_jsonl_with_reasons(tmp_path, tiny_bert_dir):
    config = _project(tmp_path, tiny_bert_dir)
    out = tmp_path / "to-label.jsonl"
    args = ["suggest-labels", "--config", str(config), "--pool", str(tmp_path / "pool.jsonl"), "--budget", "10",
            "--reference", str(tmp_path / "train.jsonl"), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    picked = read_jsonl(out)
    assert len(picked) == 10 and [p["rank"] for p in picked] == list(range(1, 11))
    assert all(p["label"] is None and p["reason"] for p in picked)
    assert len({p["text"] for p in picked}) == 10
    assert "zebra" in picked[0]["text"] and "unlike the training data" in picked[0]["reason"], "shifted texts come first"
    assert 0 < sum("zebra" in p["text"] for p in picked) < 10, "diversity: both regions of the pool are covered"
    assert "uncertainty is not used" in result.stderr, "without a model it says what it left out"
    assert "10 of 60 texts suggested" in result.stderr


def test_suggest_labels_comments_on_the_open_retraining_pr(tmp_path, tiny_bert_dir):
    config = _project(tmp_path, tiny_bert_dir)
    args = ["suggest-labels", "--config", str(config), "--pool", str(tmp_path / "pool.jsonl"), "--budget", "5",
            "--reference", str(tmp_path / "train.jsonl"), "--comment", "--repo", REPO]
    with FakeGitHub() as gh:
        env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": gh.url}
        none_open = CliRunner().invoke(cli, args, env=env)
        assert none_open.exit_code == 0 and "no open retraining pull request" in none_open.stderr
        gh.state.pulls[100] = {"number": 100, "state": "open", "head": {"ref": "calibgate/retrain/router",
                                                                      "label": "octo:calibgate/retrain/router"}}
        for _ in range(2):
            posted = CliRunner().invoke(cli, args, env=env)
            assert posted.exit_code == 0, posted.output
        comments = gh.state.comments[100]
        assert len(comments) == 1, "a rerun updates its comment"
        assert comments[0]["body"].startswith("<!-- calibgate-to-label:router -->") and "Texts worth labeling" in comments[0]["body"]
        lines = [json.loads(line) for line in posted.stdout.splitlines()]
        assert len(lines) == 5


def test_suggest_labels_bad_pool_is_one_line(tmp_path, tiny_bert_dir):
    config = _project(tmp_path, tiny_bert_dir)
    (tmp_path / "bad.jsonl").write_text('{"txt": "x"}\n')
    result = CliRunner().invoke(cli, ["suggest-labels", "--config", str(config), "--pool", str(tmp_path / "bad.jsonl")])
    assert result.exit_code == 2 and "missing key 'text'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_missing_token_is_refused_before_anything_is_scored_or_written(tmp_path, tiny_bert_dir, monkeypatch):
    """--comment checked the token only when posting: exit 2 with -o already written, after all the scoring."""
    config = _project(tmp_path, tiny_bert_dir)
    out = tmp_path / "to-label.jsonl"
    args = ["suggest-labels", "--config", str(config), "--pool", str(tmp_path / "pool.jsonl"), "--budget", "3",
            "--comment", "--repo", REPO, "-o", str(out)]
    result = CliRunner().invoke(cli, args, env={"GITHUB_TOKEN": None})
    assert result.exit_code == 2 and "GITHUB_TOKEN is not set" in result.stderr and not out.exists()
