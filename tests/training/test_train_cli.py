"""``calibgate train`` end to end on a tiny project, and its refusals (exit 2, one line, nothing written)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.conftest import invoke_in as _run


def test_train_writes_a_verified_run_with_lineage(tiny_project):
    from calibgate.runs import load_run

    result = _run(tiny_project, "train", "--strategy", "lora", "--lora-rank", "4", "--epochs", "1", "--run-id", "r1", "-q")
    assert result.exit_code == 0, result.output
    run = tiny_project / "runs" / "r1"
    manifest = load_run(run)
    assert manifest.strategy == "lora" and manifest.lora_rank == 4
    assert manifest.data["n"] == 40 and len(manifest.data["sha256"]) == 64
    assert manifest.git_commit is None  # not a git repository
    assert manifest.train_config["strategy_source"] == "option"
    assert (tiny_project / "runs" / "LATEST").read_text().strip() == "r1"
    assert json.loads((run / "curves.json").read_text())["epochs"][0]["epoch"] == 0
    assert not [p for p in (tiny_project / "runs").iterdir() if p.name.startswith(".")]  # no temp dir left behind


def test_train_follows_a_plan_file(tiny_project):
    plan = _minimal_plan("retrieval")
    plan["recommendation"]["modifiers"] = ["early-stopping", "add-production-data"]  # the second is a data action
    (tiny_project / "plan.json").write_text(json.dumps(plan))
    result = _run(tiny_project, "train", "--plan", "plan.json", "--run-id", "p1", "-q")
    assert result.exit_code == 0, result.output
    run = tiny_project / "runs" / "p1"
    assert json.loads((run / "calibgate-run.json").read_text())["strategy"] == "retrieval"
    assert json.loads((run / "plan.json").read_text())["recommendation"]["strategy"] == "retrieval"
    manifest = json.loads((run / "calibgate-run.json").read_text())
    assert manifest["modifiers"] == ["early-stopping"]
    assert manifest["train_config"]["plan_modifiers_not_applied"] == ["add-production-data"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--strategy", "lorra"], "unknown strategy 'lorra'"),
        (["--strategy", "lora", "--lora-rank", "0"], "--lora-rank"),
        (["--strategy", "lora", "--epochs", "0"], "--epochs"),
        (["--strategy", "full-finetune", "--modifier", "dropout"], "unknown training modifier"),
        (["--plan", "missing.json"], "missing.json: no such file (the plan)"),
        pytest.param([], "no strategy given", marks=pytest.mark.skipif(
            importlib.util.find_spec("calibgate.planner.api") is not None, reason="the planner exists: train follows it")),
    ],
)
def test_train_refuses_bad_options(tiny_project, args, needle):
    result = _run(tiny_project, "train", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert not (tiny_project / "runs").exists()


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, calibgate.training, calibgate.cli.train, calibgate.cli.evaluate; print('torch' in sys.modules, 'peft' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def _minimal_plan(strategy: str) -> dict:
    interval = None
    sig = {"status": "ok", "reading": "x"}
    return {
        "calibgate_version": "0.1.0", "created_at": "2026-01-01T00:00:00Z", "model": "m",
        "dataset": {"n": 40, "n_classes": 4, "label_names": [], "source": "s", "sha256": "0", "dvc_md5": None,
                    "dvc_state": "untracked", "target_size": 40},
        "signals": {
            "separability": {**sig, "probe_accuracy": 0.9, "probe_accuracy_ci": interval, "probe_macro_f1": 0.9,
                             "knn_accuracy": 0.9, "knn_k": 5, "majority_accuracy": 0.25, "folds": 5},
            "label_noise": {**sig, "estimated_rate": 0.0, "raw_issue_rate": 0.0, "overlap_rate": 0.0, "method": "x", "suspects": []},
            "imbalance": {**sig, "counts": {}, "imbalance_ratio": 1.0, "normalized_entropy": 1.0, "min_count": 10,
                          "min_count_required": 5, "classes_under_min": []},
            "starvation": {**sig, "curve": [], "fit": {}, "target_size": 40, "predicted_probe_accuracy_at_target": 0.9,
                           "predicted_ceiling": 0.95, "gain_per_doubling": 0.01, "train_validation_gap": 0.0},
            "domain_shift": {**sig, "measured": False},
            "duplicates": {**sig, "exact_duplicate_groups": 0, "near_duplicate_pairs": 0, "conflicting_label_groups": 0,
                           "truncated": 0, "max_length": 128},
        },
        "recommendation": {"strategy": strategy, "lora_rank": None, "modifiers": [], "rationale": ["test"],
                           "candidates": [], "tolerance": 0.01, "chosen_candidate": strategy},
    }


def test_a_failed_save_leaves_no_half_written_run(tiny_sets, tiny_bert_dir, tmp_path):
    from calibgate.training import fit

    train, _ = tiny_sets
    trained = fit(train, strategy="embedding-probe", model=tiny_bert_dir)
    with pytest.raises(TypeError):
        trained.save(tmp_path / "runs" / "x", plan=object())  # fails after the weights were written
    assert list((tmp_path / "runs").iterdir()) == []
    trained.save(tmp_path / "runs" / "x")
    from calibgate.errors import ModelError

    with pytest.raises(ModelError, match="already exists"):
        trained.save(tmp_path / "runs" / "x")  # runs are never overwritten


def test_two_trains_of_one_run_id_leave_the_winner_and_refuse_the_other(tiny_sets, tiny_bert_dir, tmp_path, monkeypatch):
    """The loser of two 'train --run-id same' got exit 3 ('Directory not empty', an internal error) at the rename."""
    from calibgate.errors import ModelError
    from calibgate.training import fit
    from calibgate.training.model import TrainedModel

    train, _ = tiny_sets
    trained = fit(train, strategy="embedding-probe", model=tiny_bert_dir)
    target = tmp_path / "runs" / "x"
    write = TrainedModel._write

    def the_other_finishes_first(self, root, *args, **kwargs):
        manifest = write(self, root, *args, **kwargs)
        target.mkdir()
        (target / "calibgate-run.json").write_text("{}")  # the winner's run, renamed into place meanwhile
        return manifest

    monkeypatch.setattr(TrainedModel, "_write", the_other_finishes_first)
    with pytest.raises(ModelError, match="already exists \\(written meanwhile\\)") as info:
        trained.save(target)
    assert info.value.exit_code == 2
    assert sorted(p.name for p in target.parent.iterdir()) == ["x"] and (target / "calibgate-run.json").read_text() == "{}"


def test_evaluate_through_the_latest_link(tiny_project):
    result = _run(tiny_project, "train", "--strategy", "embedding-probe", "-q")
    assert result.exit_code == 0, result.output
    result = _run(tiny_project, "evaluate", "--run", "runs/latest", "--bootstrap", "50", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["strategy"] == "embedding-probe"


@pytest.mark.gpu
def test_lora_on_cuda_with_bf16_autocast(tiny_sets, tiny_bert_dir, tmp_path):
    from calibgate.modeling import load_classifier
    from calibgate.training import fit

    train, test = tiny_sets
    trained = fit(train, strategy="lora", lora_rank=4, model=tiny_bert_dir, epochs=1)
    assert trained.device == "cuda" and trained.train_config["batch_size"] >= 8
    probs = trained.predict_proba(test.texts)
    assert probs.shape == (len(test), train.n_classes)
    trained.save(tmp_path / "run")
    load_classifier(tmp_path / "run")  # the saved run serves on CPU


def test_training_itself_never_plans(tiny_project):
    """Training sits below the planner: without a strategy, a plan or a planner passed in, it refuses and writes nothing."""
    from calibgate.errors import ConfigError
    from calibgate.training.api import train

    with pytest.raises(ConfigError, match="no strategy given"):
        train(config=tiny_project / "calibgate.yaml")
    assert not (tiny_project / "runs").exists()


def _lora_plan(rank) -> dict:
    plan = _minimal_plan("lora")
    plan["recommendation"].update(lora_rank=rank, chosen_candidate=f"lora/r{rank}")
    return plan


def test_strategy_lora_alone_trains_the_rank_the_plan_chose(tiny_project):
    """--lora-rank's help says 'default: the plan's': with --strategy lora the run took 8 and said it overrode r4."""
    (tiny_project / "plan.json").write_text(json.dumps(_lora_plan(4)))
    result = _run(tiny_project, "train", "--strategy", "lora", "--plan", "plan.json", "--epochs", "1", "--run-id", "l4", "-q")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tiny_project / "runs" / "l4" / "calibgate-run.json").read_text())
    assert manifest["lora_rank"] == 4


def test_a_plan_made_on_other_classes_is_refused_before_training(tiny_project, four_labels):
    """A plan of another task (another project's plan.json, a calibration file of other labels) was followed with exit
    0 and recorded in the run, so the gate's plan-based checks judged the run by measurements of other data."""
    plan = _minimal_plan("retrieval")
    plan["dataset"]["label_names"] = [*four_labels[:2], "<!--", "refund"]
    (tiny_project / "plan.json").write_text(json.dumps(plan))
    for args in (["--plan", "plan.json"], ["--plan", "plan.json", "--strategy", "embedding-probe", "--reason", "why"]):
        result = _run(tiny_project, "train", *args, "-q")
        assert result.exit_code == 2, result.output
        assert "the plan (" in result.stderr and "has 2 class(es) the training data" in result.stderr
        assert "lacks ('<!--', 'refund')" in result.stderr and not (tiny_project / "runs").exists()
    plan["dataset"]["label_names"] = four_labels[:3]  # a class the calibration sample missed is not another task
    (tiny_project / "plan.json").write_text(json.dumps(plan))
    assert _run(tiny_project, "train", "--plan", "plan.json", "-q").exit_code == 0


@pytest.mark.parametrize("rank", [-3, 0, 10**9])
def test_a_plan_naming_no_usable_rank_is_refused_as_the_plans(tiny_project, rank):
    (tiny_project / "plan.json").write_text(json.dumps(_lora_plan(rank)))
    result = _run(tiny_project, "train", "--plan", "plan.json", "-q")
    assert result.exit_code == 2, result.output
    assert "the plan (plan file) names LoRA rank" in result.stderr and not (tiny_project / "runs").exists()


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_latest_pointer_that_cannot_be_replaced_fails_before_training(tiny_project, kind):
    """The pointer was written after the run was sealed: exit 2 with a complete run left behind."""
    runs = tiny_project / "runs"
    runs.mkdir()
    if kind == "directory":
        (runs / "LATEST").mkdir()
    else:
        (runs / "LATEST").symlink_to(tiny_project / "elsewhere")
    result = _run(tiny_project, "train", "--strategy", "embedding-probe", "--run-id", "r1", "-q")
    assert result.exit_code == 2 and "LATEST" in result.stderr, result.output
    assert not (runs / "r1").exists()
