"""The regret benchmark: its arithmetic on known numbers, and the quick mode end to end (what CI runs)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from calibgate.bench.regret import DatasetResult, fixed_strategy_rows, render_markdown, summarise
from calibgate.cli import cli


def _result(name, accs, secs, plans):
    return DatasetResult(
        name=name,
        candidates={k: {"accuracy": a, "train_seconds": s} for (k, a), s in zip(accs.items(), secs)},
        plans=plans,
    )


def test_regret_and_compute_saved_arithmetic():
    a = _result(
        "a",
        {"embedding-probe": 0.90, "retrieval": 0.85, "lora/r8": 0.91, "full-finetune": 0.92},
        [10, 5, 100, 185],
        [{"calibration_size": 100, "seed": 0, "strategy": "embedding-probe", "chosen": "embedding-probe", "regret_points": 2.0, "compute_saved": 0.96, "kendall_tau": 0.5}],
    )
    rows = fixed_strategy_rows([a])
    assert rows["full-finetune"]["mean_regret"] == pytest.approx(0.0)
    assert rows["embedding-probe"]["mean_regret"] == pytest.approx(2.0)
    assert rows["full-finetune"]["compute_saved"] == pytest.approx(1 - 185 / 300)
    summary = summarise([a])
    assert summary["by_calibration_size"][100]["mean_regret"] == pytest.approx(2.0)
    text = render_markdown([a], summary, command="calibgate bench regret x")
    assert "| full-finetune (best) | 92.00% |" in text and "`calibgate bench regret x`" in text


@pytest.mark.slow
def test_quick_mode_end_to_end(shared_datasets, tmp_path):
    out = tmp_path / "RESULTS-regret.md"
    args = ["bench", "regret", str(shared_datasets / "sms_spam"), "--quick", "--cache-dir", str(tmp_path / "cache"), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    raw = json.loads(out.with_suffix(".json").read_text())
    (dataset,) = raw["datasets"]
    assert set(dataset["candidates"]) == {"embedding-probe", "retrieval", "lora/r8", "full-finetune"}
    (plan,) = dataset["plans"]
    best = max(c["accuracy"] for c in dataset["candidates"].values())
    assert plan["regret_points"] == pytest.approx((best - dataset["candidates"][plan["chosen"]]["accuracy"]) * 100)
    assert plan["compute_saved"] <= 1
    assert "## Regret benchmark" in out.read_text() and "calibration 100: mean regret" in result.stdout
    # the plan's fine-tuning reading is taken once, cached on its own, and is what the summary lists
    (reading_file,) = (tmp_path / "cache" / "readings").glob("sms_spam-n100-s0-*.json")
    assert raw["summary"]["readings"] == {"sms_spam": [json.loads(reading_file.read_text())["reading"]]}
    assert raw["summary"]["noise_ceiling_tau"] is not None and "noise ceiling" in out.read_text()
    # a second run reads the cached candidates instead of training again
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and again.stderr.count("cached") == 4


def test_missing_split_is_exit_2(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": "x"}\n')
    result = CliRunner().invoke(cli, ["bench", "regret", str(tmp_path)])
    assert result.exit_code == 2 and "no test.jsonl" in result.stderr


def test_the_planner_fingerprint_covers_every_record_module_a_plan_uses():
    """The fingerprint lists record modules one by one (a decision's field is no reason to re-plan); a record module
    the planner imports but the list missed would let a cached plan outlive a change to what plans compute."""
    import ast
    from pathlib import Path

    from calibgate.bench.regret import _PLANNER_SOURCES

    import calibgate

    root = Path(calibgate.__file__).resolve().parent
    todo = [f for part in _PLANNER_SOURCES for f in ((root / part).rglob("*.py") if (root / part).is_dir() else [root / part])]
    seen, needed = set(todo), set()
    while todo:
        for node in ast.walk(ast.parse(todo.pop().read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.startswith("calibgate.records."):
                    path = root / "records" / (name.rsplit(".", 1)[1] + ".py")
                    needed.add(path.relative_to(root).as_posix())
                    if path not in seen:
                        seen.add(path)
                        todo.append(path)
    assert needed and needed <= set(_PLANNER_SOURCES), sorted(needed - set(_PLANNER_SOURCES))
