"""What ``calibgate train`` records and says: the plan behind an override, a tuning that kept its start,
progress in a CI log, and a model card without machine paths."""

from __future__ import annotations

import json

import yaml

from tests.conftest import invoke_in


def _card_meta(run) -> dict:
    text = (run / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---")[1])


def test_an_override_still_records_the_plan_and_why(tiny_project):
    from tests.training.test_train_cli import _minimal_plan

    planned, other = "retrieval", "embedding-probe"
    plan = _minimal_plan(planned)
    plan["recommendation"]["modifiers"] = ["class-weighted-loss"]
    (tiny_project / "plan.json").write_text(json.dumps(plan))
    result = invoke_in(tiny_project, "train", "--plan", "plan.json", "--strategy", other, "--run-id", "o", "-q",
                       "--reason", "latency budget")
    assert result.exit_code == 0, result.output
    run = tiny_project / "runs" / "o"
    plan = json.loads((run / "plan.json").read_text())
    manifest = json.loads((run / "calibgate-run.json").read_text())
    assert plan["recommendation"]["strategy"] and "plan.json" in manifest["files"]
    override = manifest["train_config"]["plan_override"]
    assert override["trained_strategy"] == other and override["reason"] == "latency budget"
    assert override["planned_strategy"] == plan["recommendation"]["strategy"]
    assert manifest["train_config"]["strategy_source"] == "option"
    assert override["planned_strategy"] == planned and not override["follows_plan"]
    assert f"overrode the plan's {planned}" in result.stdout
    assert "latency budget" in (run / "README.md").read_text(encoding="utf-8")


def test_the_plan_based_gate_checks_can_judge_an_overridden_run(tiny_project):
    from calibgate.policy.api import read_run_records

    assert invoke_in(tiny_project, "train", "--strategy", "embedding-probe", "--run-id", "g", "-q").exit_code == 0
    assert invoke_in(tiny_project, "evaluate", "--run", "runs/g", "--bootstrap", "0", "--no-base").exit_code == 0
    _, _, plan = read_run_records(tiny_project / "runs" / "g")
    assert plan is not None and plan.signals.label_noise is not None


def test_model_card_names_data_by_repo_relative_path(tiny_project):
    assert invoke_in(tiny_project, "train", "--strategy", "embedding-probe", "--run-id", "c", "-q").exit_code == 0
    run = tiny_project / "runs" / "c"
    assert _card_meta(run)["datasets"] == ["data/train.jsonl"]
    manifest = json.loads((run / "calibgate-run.json").read_text())
    assert manifest["modifiers"] == []  # the plan computed for the record does not change what was asked for
    assert manifest["train_config"]["plan_override"]["planned_strategy"] is not None
    assert str(tiny_project) not in (run / "README.md").read_text(encoding="utf-8")
    assert json.loads((run / "calibgate-run.json").read_text())["data"]["source"] == "data/train.jsonl"


def test_progress_in_a_ci_log_is_plain_lines_on_stderr(tiny_project, monkeypatch):
    monkeypatch.setenv("CALIBGATE_PROGRESS_SECONDS", "0")
    result = invoke_in(tiny_project, "train", "--strategy", "full-finetune", "--epochs", "2", "--run-id", "p")
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "calibgate: training epoch 1/2: train loss" in err and "calibgate: training: done" in err
    assert "\r" not in err and "%|" not in err  # no tqdm bar in a log
    assert "training epoch" not in result.stdout


def test_a_tuning_that_kept_its_start_says_so_and_by_how_much(tiny_sets, tiny_bert_dir):
    from calibgate.training import fit
    from calibgate.training.api import tuning_note

    train, _ = tiny_sets
    # an encoder learning rate this large wrecks the encoder in one step: no epoch can beat the probe it started from
    trained = fit(train, strategy="full-finetune", model=tiny_bert_dir, epochs=2, encoder_lr=50.0, head_lr=50.0, seed=0)
    assert trained.train_config["best_epoch"] == 0
    note = tuning_note(trained.strategy, trained.train_config, trained.curves)
    start = trained.curves[0]
    best = min((c for c in trained.curves if c["epoch"] > 0), key=lambda c: c["val_loss"])
    assert note.startswith("full-finetune tuning did not improve on its starting point")
    assert f"validation loss {best['val_loss']:.4f} vs {start['val_loss']:.4f}" in note and "keeps the start" in note
    assert tuning_note("full-finetune", {"best_epoch": 1}, trained.curves) is None
    assert tuning_note("embedding-probe", {"best_epoch": 0}, trained.curves) is None
