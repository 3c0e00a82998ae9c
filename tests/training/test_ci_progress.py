"""``calibgate ci`` on a tiny project: per-stage lines on stderr, and an int8 export beside fp32."""

from __future__ import annotations

import json

from tests.conftest import invoke_in


def test_ci_prints_stages_and_exports_int8(tiny_project, monkeypatch):
    (tiny_project / "policies").mkdir()
    (tiny_project / "policies" / "gate.yaml").write_text("checks:\n  accuracy_floor: {min: 0.0}\n  latency_ceiling: {max: 100000}\n")
    with (tiny_project / "calibgate.yaml").open("a", encoding="utf-8") as fh:
        fh.write("policy: policies/gate.yaml\n")
    monkeypatch.setenv("CALIBGATE_PROGRESS_SECONDS", "0")
    result = invoke_in(tiny_project, "ci", "--out", "out", "--no-summary", "--no-annotations", "--baseline", "none")
    err = result.stderr
    for stage in ("ci: plan", "ci: train", "ci: evaluate", "ci: export fp32 + int8", "ci: gate"):
        assert f"calibgate: {stage}" in err, (stage, result.output)
    assert "\r" not in err
    export = json.loads((tiny_project / "out" / "export.json").read_text())
    assert {a["precision"] for a in export["artifacts"]} == {"fp32", "int8"}


def test_ci_checks_its_data_before_training_and_writes_nothing(tiny_project):
    (tiny_project / "policies").mkdir()
    (tiny_project / "policies" / "default.yaml").write_text("checks:\n  accuracy_floor: {min: 0.0}\n")
    test_set = tiny_project / "data" / "test.jsonl"
    rows = test_set.read_text().splitlines()
    for broken, needle in ((None, "no such file"), (rows + ['{"text": "new", "label": "never-trained"}'], "never-trained")):
        if broken is None:
            test_set.unlink()
        else:
            test_set.write_text("\n".join(broken) + "\n")
        result = invoke_in(tiny_project, "ci", "--out", "out", "--no-summary", "--no-annotations", "--baseline", "none")
        assert result.exit_code == 2 and needle in result.stderr, result.output
        assert "ci: train" not in result.stderr
        assert not (tiny_project / "runs").exists() and not (tiny_project / "out").exists()
