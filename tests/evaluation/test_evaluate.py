"""``calibgate evaluate``: metrics, intervals, slices, base model, pluggable metrics, and refusals."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import invoke_in as _run

FIXTURE_METRIC = os.path.join(os.path.dirname(__file__), "fixtures", "macro_recall.py")


def test_evaluate_writes_results_and_rehashes_the_run(project):
    from calibgate.records.evaluation import EvaluationResult
    from calibgate.runs import load_run

    result = _run(project, "evaluate", "--run", "runs/run1", "--slice", "hard=data/hard.jsonl", "--bootstrap", "200")
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "base model" in result.output and "slice hard" in result.output
    run = project / "runs" / "run1"
    manifest = load_run(run)  # still verifies, now including the new files
    assert {"evaluation.json", "metrics.json"} <= set(manifest.files)
    ev = EvaluationResult.model_validate_json((run / "evaluation.json").read_text())
    assert ev.test.n == 24 and len(ev.predictions) == len(ev.labels) == 24
    assert ev.metrics["label_validity_rate"] == 1.0
    assert 0.0 <= ev.metrics["ece"] <= 1.0
    ci = ev.intervals["accuracy"]
    assert ci.low <= ev.metrics["accuracy"] <= ci.high
    assert sum(map(sum, ev.confusion_matrix)) == 24
    assert sum(c.support for c in ev.per_class.values()) == 24
    assert ev.base_model is not None and len(ev.base_predictions) == 24
    assert ev.slices[0].name == "hard" and ev.slices[0].n == 8
    flat = json.loads((run / "metrics.json").read_text())
    assert flat["accuracy"] == pytest.approx(ev.metrics["accuracy"], abs=1e-6) and "base" in flat


def test_evaluate_is_deterministic_and_matches_sklearn(project):
    from sklearn.metrics import accuracy_score, f1_score

    from calibgate.api import evaluate

    a = evaluate(model=project / "runs" / "run1", config=project / "calibgate.yaml", bootstrap=100, write=False)
    b = evaluate(model=project / "runs" / "run1", config=project / "calibgate.yaml", bootstrap=100, write=False)
    assert a.intervals == b.intervals and a.predictions == b.predictions
    assert a.metrics["accuracy"] == pytest.approx(accuracy_score(a.labels, a.predictions))
    assert a.metrics["macro_f1"] == pytest.approx(f1_score(a.labels, a.predictions, average="macro"))


def test_local_evaluate_metric_joins_the_metrics(project):
    from calibgate.api import evaluate

    ev = evaluate(model=project / "runs" / "run1", config=project / "calibgate.yaml", metrics=[FIXTURE_METRIC], bootstrap=0, base=False)
    assert 0.0 <= ev.metrics["macro_recall"] <= 1.0
    assert ev.metrics["errors"] == sum(p != y for p, y in zip(ev.predictions, ev.labels))


def _snapshot(run):
    return {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "setup, args, needle",
    [
        ("none", ["--run", "data"], "not a calibgate run"),
        ("tamper", ["--run", "runs/run1"], "tampered"),
        ("unknown", ["--run", "runs/run1", "--test", "data/unknown.jsonl"], "unknown label 'no_such_intent'"),
        ("empty", ["--run", "runs/run1", "--test", "data/empty.jsonl"], "has no rows"),
        ("none", ["--run", "runs/run1", "--metric", "no/such/metric.py"], "not a local file"),
    ],
)
def test_evaluate_refuses_bad_input(project, setup, args, needle):
    run = project / "runs" / "run1"
    if setup == "tamper":
        with (run / "head.safetensors").open("r+b") as fh:
            fh.seek(-1, 2)
            last = fh.read(1)
            fh.seek(-1, 2)
            fh.write(bytes([last[0] ^ 1]))
    elif setup == "unknown":
        (project / "data" / "unknown.jsonl").write_text('{"text": "hello", "label": "no_such_intent"}\n')
    elif setup == "empty":
        (project / "data" / "empty.jsonl").write_text("")
    before = _snapshot(run)
    result = _run(project, "evaluate", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert _snapshot(run) == before  # nothing written


@pytest.mark.parametrize("body, needle", [
    ("raise SystemExit(0)\n", "SystemExit"),  # before: exit 0, no output, nothing evaluated
    ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    ("raise RuntimeError('bad import')\n", "RuntimeError: bad import"),
    (open(FIXTURE_METRIC).read().replace('return {"macro_recall"', 'return [{"macro_recall"').replace("references))}", "references))}]"),
     "returned list, not a mapping"),
    (open(FIXTURE_METRIC).read().replace('return {"macro_recall": sum(recalls) / len(recalls),', 'return {"macro_recall": float("nan"),'),
     "'macro_recall' is nan, not a finite number"),
    (open(FIXTURE_METRIC).read().replace('return {"macro_recall": sum(recalls) / len(recalls),', 'return {"macro_recall": 10 ** 400,'),
     "not a finite number"),
    (open(FIXTURE_METRIC).read().replace('return {"macro_recall": sum(recalls) / len(recalls),', 'return {1: 0.5,'),
     "returned the key 1, not a result name"),
])
def test_a_metric_module_that_exits_or_raises_is_bad_input(project, body, needle):
    """A user's --metric module is input: whatever it raises (SystemExit included) is one line, exit 2, nothing written."""
    (project / "m.py").write_text(body)
    run = project / "runs" / "run1"
    before = _snapshot(run)
    result = _run(project, "evaluate", "--run", "runs/run1", "--metric", "m.py", "--bootstrap", "0")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "m.py" in lines[0] and needle in lines[0] and "; fix: " in lines[0], result.stderr
    assert _snapshot(run) == before


@pytest.mark.parametrize("fail_at", [1, 2, 3])  # the first record, the second, the manifest
def test_a_full_disk_while_evaluate_writes_changes_no_file_of_the_run(project, monkeypatch, fail_at):
    """evaluation.json landed, metrics.json hit ENOSPC: the run then held a record its manifest did not list, and
    every later command refused it. Now every new file is written beside its target first, and renamed only when all
    of them were written: a full disk is exit 3 and the run is as it was."""
    import errno

    from calibgate import paths
    from calibgate.runs import load_run

    run = project / "runs" / "run1"
    before = _snapshot(run)
    real, calls = paths._temp_beside, []

    def filling_up(path):
        calls.append(path)
        if len(calls) == fail_at:
            raise paths.path_error(OSError(errno.ENOSPC, "No space left on device"), path, "write")
        return real(path)

    monkeypatch.setattr(paths, "_temp_beside", filling_up)
    result = _run(project, "evaluate", "--run", "runs/run1", "--bootstrap", "0")
    assert result.exit_code == 3 and "No space left on device" in result.stderr, result.output
    assert len(calls) == fail_at and _snapshot(run) == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(paths, "_temp_beside", real)
    load_run(run)
    assert _run(project, "evaluate", "--run", "runs/run1", "--bootstrap", "0").exit_code == 0
    load_run(run)


def test_evaluate_waits_for_another_process_changing_the_run(project):
    """evaluate re-seals from the manifest it verified; an export sealing its files in between left them unlisted and
    the run refused for good. Both now verify and change the run under one lock beside it, so the second waits."""
    import subprocess
    import sys
    import time

    from calibgate.runs import load_run

    run = project / "runs" / "run1"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom calibgate.runs import run_commit_lock\n"
        "with run_commit_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(12)\n    released = time.time()\n"
        "print(released, flush=True)\n"), str(run)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    result = _run(project, "evaluate", "--run", "runs/run1", "--bootstrap", "0")
    finished = time.time()
    released = float(holder.stdout.readline())
    holder.wait(timeout=30)
    assert result.exit_code == 0, result.output
    assert finished >= released and (run / "calibgate-run.json").stat().st_mtime >= released - 0.01
    load_run(run)
    assert not [p for p in run.parent.iterdir() if "lock" in p.name], "no lock file in the run or beside it"


def test_production_is_scored_against_a_candidate_that_adds_a_class(project):
    """Before: a candidate that adds a class (retrain --allow-new-labels) could not be gated: re-evaluating production
    on its test set refused the new label (ci exit 2 after training), and the gate called the label sets unpairable."""
    import numpy as np

    from calibgate.api import evaluate
    from calibgate.errors import DataError
    from calibgate.policy.api import gate
    from calibgate.records.evaluation import EvaluationResult
    from tests.conftest import read_jsonl, write_jsonl
    from tests.policy.test_gate import policy
    from tests.report.report_records import row_scores

    rows = read_jsonl(project / "data" / "test.jsonl")
    added = [{"text": f"where is my new thing number {i}", "label": "aaa_new_class"} for i in range(6)]
    write_jsonl(project / "data" / "grown.jsonl", rows + added)
    with pytest.raises(DataError, match="unknown label 'aaa_new_class'"):
        evaluate(model=project / "runs" / "run1", test=project / "data" / "grown.jsonl", config=project / "calibgate.yaml",
                 bootstrap=0, write=False)
    base = evaluate(model=project / "runs" / "run1", test=project / "data" / "grown.jsonl", config=project / "calibgate.yaml",
                    bootstrap=0, write=False, unseen_labels=True)
    assert base.label_names[-1] == "aaa_new_class" and base.per_class["aaa_new_class"].recall == 0.0
    assert base.metrics["accuracy"] == pytest.approx(np.mean(np.array(base.predictions) == np.array(base.labels)))
    assert "1 label(s) the model lacks (aaa_new_class)" in base.warnings[0] and base.base_model is None

    # the candidate knows the class (its label_names sort it first) and is right wherever production was, and on it
    names = sorted(base.label_names)
    to_cand = {i: names.index(name) for i, name in enumerate(base.label_names)}
    labels = [to_cand[i] for i in base.labels]
    predictions = [to_cand[p] if base.label_names[t] != "aaa_new_class" else to_cand[t] for p, t in zip(base.predictions, base.labels)]
    per_class, matrix, macro_f1 = row_scores(labels, predictions, names)  # the rows' figures (the record checks them)
    cand = EvaluationResult.model_validate({
        **base.model_dump(), "run_id": "cand", "label_names": names, "labels": labels, "predictions": predictions,
        "confusion_matrix": matrix, "per_class": {n: c.model_dump() for n, c in per_class.items()},
        "metrics": {**base.metrics, "accuracy": float(np.mean(np.array(predictions) == np.array(labels))), "macro_f1": macro_f1},
    })
    decision = gate(policy(regression={"test": "mcnemar"}), cand, baseline=base)
    regression = next(c for c in decision.checks if c.id == "regression")
    assert regression.status == "PASS", regression.message


@pytest.mark.parametrize("spelling", ["{} ", str.upper, "{}\u200b"])
def test_an_unseen_label_that_is_a_model_class_written_another_way_is_refused(project, spelling):
    """With --unseen-labels-as-errors, 'Card_Arrival ' for the model's 'card_arrival' was taken for a new class and
    its rows scored as errors."""
    from calibgate.api import evaluate
    from calibgate.errors import DataError
    from tests.conftest import read_jsonl, write_jsonl

    rows = read_jsonl(project / "data" / "test.jsonl")
    first = rows[0]["label"]
    respelt = spelling(first) if callable(spelling) else spelling.format(first)
    write_jsonl(project / "data" / "respelt.jsonl", [{**r, "label": respelt if r["label"] == first else r["label"]} for r in rows])
    with pytest.raises(DataError, match="one class written two ways"):
        evaluate(model=project / "runs" / "run1", test=project / "data" / "respelt.jsonl", config=project / "calibgate.yaml",
                 bootstrap=0, write=False, unseen_labels=True)


@pytest.mark.parametrize("given", ["=x.jsonl", " =x.jsonl", "hard\x1b[2J=x.jsonl", "hard="])
def test_a_slice_without_a_printable_name_or_a_file_is_refused(project, given):
    """Before: '--slice =hard.jsonl' scored and reported a slice with no name."""
    from calibgate.api import evaluate
    from calibgate.errors import ConfigError

    (project / "x.jsonl").write_text((project / "data" / "test.jsonl").read_text())
    with pytest.raises(ConfigError, match="slice") as info:
        evaluate(model=project / "runs" / "run1", slices=[given], config=project / "calibgate.yaml", bootstrap=0,
                 write=False)
    assert "NAME=PATH" in info.value.fix
