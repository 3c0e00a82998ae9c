"""``calibgate plan`` end to end on the real MiniLM, and its bad-input contract."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from calibgate.schemas import validate
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def demo_clone(tmp_path_factory) -> Path:
    """A fresh git clone of the demo layout: data only in the DVC directory remote, as after 'git clone'."""
    root = tmp_path_factory.mktemp("demo")
    for name in ("calibgate.yaml", "datasets.dvc", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    shutil.copytree(REPO_ROOT / "dvc-storage", root / "dvc-storage")
    shutil.copytree(REPO_ROOT / "policies", root / "policies")  # calibgate.yaml names policies/default.yaml
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def demo_plan(demo_clone) -> dict:
    result = CliRunner().invoke(cli, ["plan", "--config", str(demo_clone / "calibgate.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_plan_restores_dvc_data_and_reports_its_version(demo_clone, demo_plan):
    assert (demo_clone / "datasets" / "calibration.jsonl").exists(), "plan pulls the DVC-tracked data"
    md5 = (demo_clone / "datasets.dvc").read_text().split("md5: ")[1].split()[0]
    assert demo_plan["dataset"]["dvc_md5"] == md5
    assert demo_plan["dataset"]["dvc_state"] == "clean"


@pytest.mark.slow
def test_plan_json_contract(demo_plan):
    validate("plan", demo_plan)
    assert demo_plan["schema_version"] == 2
    assert set(demo_plan["signals"]) >= {"separability", "label_noise", "imbalance", "starvation", "domain_shift"}
    assert 0 <= demo_plan["signals"]["label_noise"]["estimated_rate"] <= 1
    assert demo_plan["signals"]["domain_shift"]["auc"] is not None
    rec = demo_plan["recommendation"]
    assert rec["strategy"] in {"embedding-probe", "retrieval", "lora", "full-finetune", "collect-more-labels", "fix-labels"}
    strategies = {c["strategy"] for c in rec["candidates"]}
    assert strategies == {"embedding-probe", "retrieval", "lora", "full-finetune"}
    for c in rec["candidates"]:
        assert 0 <= c["predicted_accuracy"] <= 1 and c["estimated_train_seconds"] > 0
        assert c["basis"] in {"measured", "prior", "measured+prior"}
    # fine-tuning is a signal of its own: measured, or a prior that says why
    ft = demo_plan["signals"]["fine_tuning"]
    assert ft["measured"] or "not measured" in ft["reading"]
    assert any(s.startswith("Fine-tuning") for s in rec["rationale"])
    assert 0 <= rec["stability"]["agreement"] <= 1 and rec["stability"]["resamples"] > 0
    # every decision sentence is traceable to a signal and a policy threshold
    assert any("max_label_noise" in s for s in rec["rationale"])
    assert any("tolerance=" in s for s in rec["rationale"])


@pytest.mark.slow
def test_plan_markdown_and_terminal(demo_clone):
    runner = CliRunner()
    md = runner.invoke(cli, ["plan", "--config", str(demo_clone / "calibgate.yaml"), "--markdown"])
    assert md.exit_code == 0, md.output
    assert md.stdout.startswith("### calibgate plan:") and "| candidate |" in md.stdout
    term = runner.invoke(cli, ["plan", "--config", str(demo_clone / "calibgate.yaml")])
    assert term.exit_code == 0 and "Recommendation:" in term.stdout and "Why" in term.stdout


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


GOOD = "".join(json.dumps({"text": f"example {i}", "label": "ab"[i % 2]}) + "\n" for i in range(20))

BAD_CALIBRATION = [
    ("missing", None, "no such file"),
    ("not-json", 'not json\n', ":1: not valid JSON"),
    ("missing-text", '{"label": "a"}\n', "missing key 'text'"),
    ("missing-label", '{"text": "x"}\n', "missing key 'label'"),
    ("int-label", GOOD + '{"text": "x", "label": 3}\n', ":21: 'label' is int 3, not a string"),
    ("empty", "", "has no rows"),
    ("one-class", "".join(json.dumps({"text": f"t{i}", "label": "a"}) + "\n" for i in range(20)), "only one class"),
    ("too-few", GOOD.splitlines(True)[0] + GOOD.splitlines(True)[1], "fewer than the 10"),
    ("latin1", ('{"text": "caf\xe9", "label": "a"}\n').encode("latin-1"), "not valid UTF-8"),
    ("array", "[1, 2]\n", "not an object"),
    ("invisible", GOOD + '{"text": "\\u200b\\u2800", "label": "a"}\n', ":21: 'text' has no visible character"),
]


@pytest.mark.parametrize("name,content,message", BAD_CALIBRATION, ids=[b[0] for b in BAD_CALIBRATION])
def test_bad_calibration_is_one_line_exit_2_and_caches_nothing(tmp_path, monkeypatch, name, content, message):
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("CALIBGATE_CACHE_DIR", str(cache))
    path = tmp_path / "cal.jsonl"
    if content is not None:
        _write(path, content)
    result = CliRunner().invoke(cli, ["plan", "--calibration", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calibgate: error:"), result.stderr
    assert message in lines[0] and "fix:" in lines[0]
    assert "Traceback" not in result.output
    assert not cache.exists(), "nothing cached on bad input"


def test_production_without_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cal = _write(tmp_path / "cal.jsonl", GOOD)
    prod = _write(tmp_path / "prod.jsonl", '{"body": "hello"}\n')
    result = CliRunner().invoke(cli, ["plan", "--calibration", str(cal), "--production", str(prod)])
    assert result.exit_code == 2 and f"{prod}:1: missing key 'text'" in result.stderr


def test_unknown_model_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cal = _write(tmp_path / "cal.jsonl", GOOD)
    result = CliRunner().invoke(cli, ["plan", "--calibration", str(cal), "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not found" in result.stderr
    assert "does not download" in result.stderr


def test_broken_policy_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cal = _write(tmp_path / "cal.jsonl", GOOD)
    policy = _write(tmp_path / "policy.yaml", "planner:\n  tolerance: [1\n")
    result = CliRunner().invoke(cli, ["plan", "--calibration", str(cal), "--policy", str(policy)])
    assert result.exit_code == 2 and "not valid YAML" in result.stderr


def test_unknown_policy_key_suggests_the_closest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cal = _write(tmp_path / "cal.jsonl", GOOD)
    policy = _write(tmp_path / "policy.yaml", "planner:\n  tolerence: 1.0\n")
    result = CliRunner().invoke(cli, ["plan", "--calibration", str(cal), "--policy", str(policy)])
    assert result.exit_code == 2 and "did you mean 'tolerance'" in result.stderr


def test_folds_larger_than_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cal = _write(tmp_path / "cal.jsonl", GOOD)
    result = CliRunner().invoke(cli, ["plan", "--calibration", str(cal), "--folds", "20"])
    assert result.exit_code == 2 and "fewer than the 40" in result.stderr


def test_a_target_size_below_one_example_per_label_is_refused_before_embedding(tmp_path, monkeypatch):
    """Three labels and --target-size 2: no candidate can be trained there, so the plan predicted accuracies under the
    majority baseline instead of refusing."""
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("CALIBGATE_CACHE_DIR", str(cache))
    rows = "".join(json.dumps({"text": f"example {i}", "label": "abc"[i % 3]}) + "\n" for i in range(30))
    cal = _write(tmp_path / "cal.jsonl", rows)
    result = CliRunner().invoke(cli, ["plan", "--calibration", str(cal), "--target-size", "2", "--fast"])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "--target-size gives 2 training examples, fewer than the calibration set's 3 labels" in line
    assert "--target-size 3 or more" in line and "\n" not in line
    assert not cache.exists(), "refused before anything is embedded or cached"


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_numpy_would_reject_is_a_config_error_in_the_api_too(tmp_path, monkeypatch, seed):
    from calibgate import api
    from calibgate.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    cal = _write(tmp_path / "cal.jsonl", GOOD)
    with pytest.raises(ConfigError, match=rf"seed=\.\.\.\): {seed} is outside 0\.\.4294967295"):
        api.plan(calibration=cal, seed=seed, fast=True, cache=False)


def test_the_largest_seed_plans_with_a_production_sample(tmp_path, monkeypatch, tiny_bert_dir):
    """The domain-shift signal seeded its repeats with seed + r: at 2**32 - 1 numpy refused (exit 3)."""
    from calibgate import api

    monkeypatch.chdir(tmp_path)
    cal = _write(tmp_path / "cal.jsonl", GOOD)
    production = _write(tmp_path / "prod.jsonl", "".join(json.dumps({"text": f"production text {i}"}) + "\n" for i in range(30)))
    plan = api.plan(calibration=cal, production=production, model=str(tiny_bert_dir), seed=2**32 - 1, fast=True, cache=False, folds=3)
    assert plan.signals.domain_shift.measured


def test_three_examples_per_class_still_ranks_what_to_train(tmp_path, monkeypatch):
    """Item 4 of the planner issue: with 2-4 examples per class the plan says to collect labels and still ranks the
    training candidates, on curves whose shape it says is a prior. Before, the learning curve's stratified split
    raised (a validation quarter smaller than the number of classes) and the plan exited 3."""
    from tests.conftest import demo_data_dir, pick, read_jsonl, write_jsonl

    monkeypatch.chdir(tmp_path)
    rows = read_jsonl(demo_data_dir() / "train.jsonl")
    labels = sorted({r["label"] for r in rows})
    cal = write_jsonl(tmp_path / "cal.jsonl", [{"text": r["text"], "label": r["label"]} for r in pick(rows, labels, 3)])
    result = CliRunner().invoke(cli, ["plan", "--calibration", str(cal), "--target-size", "900", "--fast", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    rec = plan["recommendation"]
    assert rec["strategy"] == "collect-more-labels" and rec["chosen_candidate"] in {"lora/r8", "lora/r16", "full-finetune", "embedding-probe"}
    probe = next(c for c in rec["candidates"] if c["strategy"] == "embedding-probe")
    assert probe["basis"] == "measured+prior" and "shape a prior" in probe["note"]
    from calibgate.signals.starvation import PRIOR_EXPONENT

    assert plan["signals"]["starvation"]["fit"]["c"] == PRIOR_EXPONENT
