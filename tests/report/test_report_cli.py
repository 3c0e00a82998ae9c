"""calibgate report / ci / drift on the command line, via click's CliRunner on calibgate.cli.cli."""

from __future__ import annotations


import pytest
from click.testing import CliRunner
from tests.report.report_records import decision, evaluation, export, plan

from calibgate.cli import cli


def consistent_decision(kind: str, candidate):
    """The fixture decision with its per-class checks showing ``candidate``'s recalls, as a gate on it would."""
    made = decision(kind)
    checks = [c.model_copy(update={"value": candidate.per_class[c.id.split(":", 1)[1]].recall})
              if c.id.startswith("class_recall_floor:") else c for c in made.checks]
    return made.model_copy(update={"checks": checks, "plan_sha256": plan().content_sha256()})  # the plan it read


@pytest.fixture
def records(tmp_path):
    paths = {}
    cand = evaluation(shift=-0.02)
    for name, record in {
        "decision": consistent_decision("block", cand),
        "plan": plan(),
        "cand": cand,
        "base": evaluation(seed=3, run_id="run-prod"),
        "export": export(),
    }.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(record.model_dump_json())
    return paths


HERMETIC = {
    name: None
    for name in (
        "GITHUB_ACTIONS",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_REPOSITORY",
        "GITHUB_EVENT_NAME",
        "GITHUB_EVENT_PATH",
        "GITHUB_SERVER_URL",
        "GITHUB_RUN_ID",
        "GITHUB_SHA",
        "GITHUB_TOKEN",
    )
}


def run(args, env=None):
    return CliRunner().invoke(cli, args, env={**HERMETIC, **(env or {})})


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_plan_beside_a_decision_that_read_none_is_refused(records, tmp_path):
    bare = tmp_path / "bare.json"
    bare.write_text(decision("block").model_dump_json())  # plan_sha256 None: its gate read no plan
    line = one_error_line(run(["report", "--decision", str(bare), "--plan", str(records["plan"])]))
    assert "names no plan" in line and "leave the plan out" in line
    assert run(["report", "--decision", str(bare)]).exit_code == 0


def test_records_of_two_candidates_are_not_reported_together(records, tmp_path):
    """A decision about one run over another run's metrics rendered 'accuracy_floor PASS 0.949' above a table showing
    the other run's 0.917, with exit 0."""
    from tests.report.report_records import evaluation

    other = tmp_path / "other.json"
    other.write_text(evaluation(run_id="run-other").model_dump_json())
    line = one_error_line(run(["report", "--decision", str(records["decision"]), "--candidate-eval", str(other),
                               "--export", str(records["export"])]))
    assert "other.json is about run run-other, the other records about run-cand" in line and "fix: " in line


def test_renders_to_stdout(records):
    result = run(
        [
            "report",
            "--decision",
            str(records["decision"]),
            "--plan",
            str(records["plan"]),
            "--candidate-eval",
            str(records["cand"]),
            "--baseline-eval",
            str(records["base"]),
            "--export",
            str(records["export"]),
            "--name",
            "intent-model",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!-- calibgate-report:intent-model -->\n## ❌ calibgate: BLOCK")
    assert "::error" not in result.stdout  # annotations only inside Actions by default


def test_missing_decision_file_is_one_line_exit_2(tmp_path):
    line = one_error_line(run(["report", "--decision", str(tmp_path / "nope.json")]))
    assert line.startswith("calibgate: error:") and "nope.json: no such file" in line


def test_malformed_json_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "decision.json"
    bad.write_text('{"decision": "block",')
    line = one_error_line(run(["report", "--decision", str(bad)]))
    assert "not valid JSON" in line and "decision.json:1" in line


def test_wrong_record_shape_is_one_line_exit_2(records):
    line = one_error_line(run(["report", "--decision", str(records["plan"])]))
    assert "not a GateDecision record" in line


def test_bad_link_and_missing_post_target_are_usage_errors(records):
    assert run(["report", "--decision", str(records["decision"]), "--link", "ftp://x"]).exit_code == 2
    result = run(["report", "--decision", str(records["decision"]), "--post"], env={"GITHUB_REPOSITORY": None})
    assert result.exit_code == 2 and "--post needs" in result.output


def test_run_directory_fills_records(records, tmp_path):
    from calibgate.records.evaluation import EvaluationResult
    from calibgate.records.export import ExportResult
    from tests.policy.gate_records import make_run

    run_dir = tmp_path / "runs" / "r1"
    make_run(run_dir, EvaluationResult.model_validate_json(records["cand"].read_text()),
             export_record=ExportResult.model_validate_json(records["export"].read_text()))
    out = tmp_path / "out" / "report.md"
    result = run(["report", "--decision", str(records["decision"]), "--run", str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "### Metrics" in text and "### Latency and size" in text and "### Signals" not in text
    assert run(["report", "--decision", str(records["decision"]), "--run", str(tmp_path / "none")]).exit_code == 2
    unsealed = tmp_path / "unsealed"  # the records without the manifest that vouches for them
    (unsealed / "export").mkdir(parents=True)
    (unsealed / "evaluation.json").write_text(records["cand"].read_text())
    line = one_error_line(run(["report", "--decision", str(records["decision"]), "--run", str(unsealed)]))
    assert "not a calibgate run" in line


def test_records_directory_from_ci(records, tmp_path):
    out = tmp_path / "artifact"
    out.mkdir()
    for role, name in (("decision", "decision.json"), ("plan", "plan.json"), ("base", "baseline-evaluation.json")):
        (out / name).write_text(records[role].read_text())
    result = run(["report", "--records", str(out)])
    assert result.exit_code == 0, result.output
    assert "### Signals and plan" in result.stdout and "### Metrics" not in result.stdout
    (tmp_path / "empty").mkdir()
    line = one_error_line(run(["report", "--records", str(tmp_path / "empty")]))
    assert "no gate decision to report" in line


def test_step_summary_and_annotations_in_actions(records, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "octo/models",
        "GITHUB_RUN_ID": "42",
        "GITHUB_SHA": "abc123",
    }
    result = run(["report", "--decision", str(records["decision"]), "-o", str(tmp_path / "r.md"), "--summary"], env=env)
    assert result.exit_code == 0, result.output
    written = summary.read_text()
    assert written.startswith("earlier step\n<!-- calibgate-report:")
    assert "[workflow run](<https://github.com/octo/models/actions/runs/42>)" in written
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::error title=calibgate FAIL%3A accuracy_floor::accuracy 0.840 is below the floor")
    assert any(line.startswith("::warning title=calibgate WARN%3A no_regression%3Amacro_f1::") for line in lines)
    assert not any("latency_p95" in line for line in lines)


def test_summary_outside_actions_is_a_note(records, tmp_path):
    result = run(["report", "--decision", str(records["decision"]), "-o", str(tmp_path / "r.md"), "--summary"])
    assert result.exit_code == 0 and "GITHUB_STEP_SUMMARY is not set" in result.stderr


def test_help_has_examples_and_every_option_has_help():
    import importlib

    from calibgate.cli import COMMANDS

    for command in ("report", "ci", "drift"):
        result = run([command, "--help"])
        assert result.exit_code == 0 and "Examples:" in result.output and "Exit codes" in result.output
        module, attr = COMMANDS[command].split(":")
        for param in getattr(importlib.import_module(module), attr).params:
            assert getattr(param, "help", None), f"{command} {param.name} has no help text"


def test_ci_without_config_is_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(["ci"]).exit_code == 2


@pytest.mark.parametrize("target", ["a-directory", "no-such-folder/summary.md", "a-fifo", "/dev/full"])
def test_a_step_summary_that_cannot_be_a_file_is_refused_before_the_report_is_written(records, tmp_path, target):
    """A FIFO without a reader held the append open for ever (a hung CI job); here a reader is open, so without the
    check the summary went into the pipe with exit 0, after the report was written."""
    import os

    (tmp_path / "a-directory").mkdir()
    os.mkfifo(tmp_path / "a-fifo")
    reader = os.open(tmp_path / "a-fifo", os.O_RDONLY | os.O_NONBLOCK)
    out = tmp_path / "r.md"
    try:
        result = run(["report", "--decision", str(records["decision"]), "-o", str(out), "--summary"],
                     env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / target)})
    finally:
        os.close(reader)
    assert result.exit_code == 2, result.output
    assert "GITHUB_STEP_SUMMARY" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_baseline_beside_a_first_model_decision_is_refused(records, tmp_path):
    """ci --baseline none left the previous run's baseline-evaluation.json in --out; the re-rendered report said
    'against no baseline' over a table of deltas against it."""
    first = tmp_path / "first.json"
    first.write_text(decision("promote").model_copy(update={"baseline": None}).model_dump_json())
    line = one_error_line(run(["report", "--decision", str(first), "--baseline-eval", str(records["base"])]))
    assert "was made against no baseline" in line and "leave the baseline out" in line
    assert run(["report", "--decision", str(first)]).exit_code == 0


def test_ci_removes_a_record_it_did_not_make_from_out(tmp_path):
    from calibgate.pipeline.ci import RECORD_FILES, _write

    stale = tmp_path / RECORD_FILES["baseline_eval"]
    stale.write_text(evaluation(seed=3).model_dump_json())  # an earlier ci's, against production
    _write(tmp_path, "baseline_eval", None)  # this ci gated the first model
    assert not stale.exists()
    _write(tmp_path, "baseline_eval", evaluation(seed=3))
    assert stale.exists()


def _with(records, tmp_path, name, record):
    path = tmp_path / name
    path.write_text(record.model_dump_json())
    return path


def test_the_candidates_own_evaluation_is_refused_as_the_baseline(records, tmp_path):
    """Before: '--baseline-eval runs/<candidate>/evaluation.json' rendered every delta as ±0.000 under a check list
    showing production's figures, exit 0."""
    args = ["report", "--decision", str(records["decision"]), "--candidate-eval", str(records["cand"])]
    line = one_error_line(run([*args, "--baseline-eval", str(records["cand"])]))
    assert "is the candidate's own evaluation (run run-cand)" in line
    prod_run = decision("block").model_copy(update={"baseline": "run-prod-old"})
    line = one_error_line(run(["report", "--decision", str(_with(records, tmp_path, "d.json", prod_run)),
                               "--baseline-eval", str(records["base"])]))
    assert "is about run run-prod, the decision's baseline is run run-prod-old" in line
    assert run([*args, "--baseline-eval", str(records["base"])]).exit_code == 0


@pytest.mark.parametrize("role, edit, needle", [
    ("cand", lambda e: e.model_copy(update={"metrics": {**e.metrics, "macro_f1": 0.5}}), "metric 'macro_f1' is 0.5, but the "
     "test rows give"),
    ("cand", lambda e: e.model_copy(update={"per_class": {**e.per_class, "card_arrival": e.per_class["card_arrival"].model_copy(
        update={"recall": 0.123})}}), "per_class 'card_arrival' has support 40, precision"),
    ("base", lambda e: evaluation(seed=3, shift=0.05, run_id="run-prod"), "accuracy_floor 0.91, but the decision's check shows "
     "the baseline at 0.86"),
])
def test_an_evaluation_that_does_not_give_the_decisions_figures_is_refused(records, tmp_path, role, edit, needle):
    """Before: an evaluation re-run after the gate (or another model's) was rendered beside the decision: the check
    list said class recall 0.803 passed its floor and the table below it showed 0.123."""
    from calibgate.records.evaluation import EvaluationResult

    edited = _with(records, tmp_path, "edited.json", edit(EvaluationResult.model_validate_json(records[role].read_text())))
    option = "--candidate-eval" if role == "cand" else "--baseline-eval"
    result = run(["report", "--decision", str(records["decision"]), option, str(edited)])
    line = one_error_line(result)
    assert needle in line and ("it is not the evaluation the gate read" in line or "not a EvaluationResult record" in line)
