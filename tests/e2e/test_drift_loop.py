"""The drift loop end to end: real git, real DVC remote, the real MiniLM, ONNX, the local GitHub server.

1. v1.0.0 is trained by `calibgate ci`, registered and promoted; then main's
   training data changes, so "the production version's data" and "data at
   HEAD" differ;
2. no drift: an in-distribution sample is quiet, measured against v1.0.0's data
   (read with DVC at its lineage commit), and retrain without new data does nothing;
3. drift: a shifted sample is detected on embeddings and model outputs, with texts to label;
4. incoming labels -> `calibgate retrain` opens the PR on the local server; a
   second run updates it;
5. the gate runs on that branch (the PR's tree, its data pulled from the DVC
   remote) and the candidate is promoted; drift then compares against v1.1.0's data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import demo_data_dir, read_jsonl
from tests.e2e.test_gitops_flow import POLICY, ci, dvc_commit, git, invoke, new_project, write
from tests.github.fake_github import REPO, TOKEN, FakeGitHub

pytestmark = pytest.mark.slow

BRANCH = "calibgate/retrain/router"
DRIFT_POLICY = POLICY + "drift:\n  suggest: 10\n  max_domain_auc: 0.8\n"


def _by_label(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["label"], []).append(row)
    return out


@pytest.fixture(scope="module")
def loop(tmp_path_factory, shared_datasets):
    tmp = tmp_path_factory.mktemp("drift-loop")
    root = new_project(tmp)
    demo = demo_data_dir()
    by_label = _by_label(read_jsonl(demo / "train.jsonl"))
    first = [r for rows in by_label.values() for r in rows[:20]]
    (root / "datasets").mkdir()
    write(root / "datasets" / "train.jsonl", first)
    write(root / "datasets" / "calibration.jsonl", first)
    write(root / "datasets" / "test.jsonl", read_jsonl(demo / "test.jsonl")[:225])
    write(root / "datasets" / "production.jsonl", [{"text": r["text"]} for rows in by_label.values() for r in rows[52:60]])
    (root / "calibgate.yaml").write_text(
        "name: router\npolicy: policies/gate.yaml\nseed: 0\ndata:\n  incoming: datasets/incoming\n"
    )
    (root / "policies").mkdir()
    (root / "policies" / "gate.yaml").write_text(DRIFT_POLICY)
    (root / ".gitignore").write_text("/runs\n/out*\n/drift*\n")
    dvc_commit(root, "data v1")
    git(root, "push", "-q", "origin", "HEAD:refs/heads/main")
    spam = read_jsonl(shared_datasets / "sms_spam" / "test.jsonl")[:120]
    write(tmp / "shifted.jsonl", [{"text": r["text"]} for r in spam])
    return root, by_label, tmp / "shifted.jsonl"


def _seed_github(gh: FakeGitHub, root: Path) -> None:
    """origin's main as the local server's main: the commit and every tracked file."""
    files = {path: (root / path).read_text(encoding="utf-8") for path in git(root, "ls-files").split()}
    gh.state.seed_branch("main", git(root, "rev-parse", "HEAD").strip(), files)


def _drift(root: Path, out: str, *extra: str) -> dict:
    result = invoke("drift", "--config", str(root / "calibgate.yaml"), "--dry-run", "--out", str(root / out), *extra)
    assert result.exit_code == 0, result.output
    return json.loads((root / out / "drift.json").read_text())


def test_drift_loop(loop, monkeypatch):
    root, by_label, shifted = loop
    monkeypatch.chdir(root)

    # 1. v1.0.0 in production, then main's training data moves on
    assert ci(root, "out1", "--baseline", "none").exit_code == 0
    run1 = sorted((root / "runs").glob("2*"))[-1]
    assert invoke("registry", "register", str(run1)).exit_code == 0
    assert invoke("registry", "promote", "router@v1.0.0", "--stage", "production", "--approved-by", "alice").exit_code == 0
    v1_commit = git(root, "rev-parse", "HEAD").strip()
    trimmed = [r for rows in by_label.values() for r in rows[:15]]
    write(root / "datasets" / "train.jsonl", trimmed)
    dvc_commit(root, "data: drop 5 rows per intent")
    git(root, "push", "-q", "origin", "HEAD:refs/heads/main")

    # 2. no drift, measured against v1.0.0's data (300 texts at its commit), not HEAD's (225)
    quiet = _drift(root, "drift0")
    assert not quiet["drifted"], quiet["summary"]
    assert quiet["production_version"] == "router@v1.0.0" and v1_commit[:7] in quiet["reference"]
    assert quiet["reference"].startswith("training data of router@v1.0.0") and quiet["n_reference"] == 300
    assert quiet["output_p_value"] is not None and quiet["output_p_value"] >= 0.05
    with FakeGitHub() as gh:
        _seed_github(gh, root)
        env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": gh.url}
        nothing = invoke("retrain", "--repo", REPO, "--json", env=env)
        assert nothing.exit_code == 0 and json.loads(nothing.stdout)["action"] == "none"
        assert not [r for r in gh.state.requests if r["method"] != "GET"]

        # 3. a shifted production sample: drift on embeddings and on the model's outputs, texts to label
        loud = _drift(root, "drift1", "--production", str(shifted))
        assert loud["drifted"] and loud["domain_auc"] > 0.8, loud["summary"]
        assert loud["output_p_value"] < 0.05 and loud["moved_classes"], "the outputs moved too, and it says which classes"
        assert len(loud["suggestions"]) == 10 and all(s["reason"] for s in loud["suggestions"])
        to_label = read_jsonl(root / "drift1" / "to-label.jsonl")
        assert [r["text"] for r in to_label] == [s["text"] for s in loud["suggestions"]]

        # 4. newly labeled rows arrive; retrain opens the PR, a second run updates it
        incoming = [r for rows in by_label.values() for r in rows[20:45]]
        (root / "datasets" / "incoming").mkdir()
        write(root / "datasets" / "incoming" / "batch-1.jsonl", incoming[:200])
        opened = invoke("retrain", "--repo", REPO, "--drift", str(root / "drift1"), "--json", env=env)
        assert opened.exit_code == 0, opened.output
        assert json.loads(opened.stdout)["action"] == "opened"
        write(root / "datasets" / "incoming" / "batch-2.jsonl", incoming[200:] + trimmed[:3])  # + 3 duplicates
        updated = invoke("retrain", "--repo", REPO, "--drift", str(root / "drift1"), "--json", env=env)
        assert updated.exit_code == 0, updated.output
        summary = json.loads(updated.stdout)
        assert summary["action"] == "updated" and summary["added"] == len(incoming) and summary["duplicates"] == 3
        assert len(gh.state.pulls) == 1
        pull = next(iter(gh.state.pulls.values()))
        assert "Texts worth labeling" in pull["body"] and "Why: drift" in pull["body"]
        assert git(root, "status", "--porcelain") == "", "the checkout is untouched: the PR carries the change"
        pr_files = gh.state.files_at(BRANCH)

    # 5. the gate on the PR's branch: its tree, its data from the DVC remote; then promotion
    from dvc.repo import Repo

    git(root, "checkout", "-q", "-b", BRANCH)
    changed = {p: t for p, t in pr_files.items() if (root / p).read_text(encoding="utf-8") != t}
    assert set(changed) == {"datasets.dvc"}, "the PR changes only the data version"
    (root / "datasets.dvc").write_text(changed["datasets.dvc"])
    import shutil

    shutil.rmtree(root / ".dvc" / "cache")  # the data must come from the remote, as on a CI runner
    with Repo(str(root)) as repo:
        repo.pull(force=True)
    git(root, "commit", "-qam", "the retraining PR's head")
    assert len(read_jsonl(root / "datasets" / "train.jsonl")) == len(trimmed) + len(incoming)
    gate = ci(root, "out2")
    assert gate.exit_code == 0, gate.output
    decision = json.loads((root / "out2" / "decision.json").read_text())
    assert decision["decision"] == "promote" and decision["baseline"] == "router@v1.0.0"
    run2 = sorted((root / "runs").glob("2*"))[-1]
    assert invoke("registry", "register", str(run2)).exit_code == 0
    assert invoke("registry", "promote", "router@v1.1.0", "--approved-by", "alice").exit_code == 0
    after = _drift(root, "drift2")
    assert after["production_version"] == "router@v1.1.0" and after["n_reference"] == len(trimmed) + len(incoming)
