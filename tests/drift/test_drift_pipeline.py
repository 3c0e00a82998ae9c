"""`calibgate drift` reads its thresholds from the policy and names the reference it really compared against.

Fast: the tiny random BERT stands in for the encoder (the code path, not the
encoder's quality, is under test); production texts are built to be trivially
separable from the training texts.
"""

from __future__ import annotations


import pytest

from calibgate import api
from tests.conftest import write_jsonl

POLICY = "schema_version: 1\nchecks:\n  accuracy_floor:\n    min: 0.5\nplanner:\n  max_shift_auc: {auc}\n"


@pytest.fixture
def project(tmp_path, tiny_bert_dir):
    train = [{"text": f"please reset my card number {i}", "label": "card" if i % 2 else "reset"} for i in range(60)]
    write_jsonl(tmp_path / "train.jsonl", train)
    prod = [{"text": " ".join(["zebra quantum violin"] * (3 + i % 4)) + f" {i}"} for i in range(60)]
    write_jsonl(tmp_path / "prod.jsonl", prod)
    (tmp_path / "policy.yaml").write_text(POLICY.format(auc=1.0))
    (tmp_path / "calibgate.yaml").write_text(
        f"name: router\nmodel: {tiny_bert_dir}\npolicy: policy.yaml\n"
        "data:\n  train: train.jsonl\n  production: prod.jsonl\n  dvc_target: null\n"
    )
    return tmp_path


def test_drift_uses_the_policy_threshold_and_names_the_reference(project):
    strict = api.drift(config=project / "calibgate.yaml", dry_run=True)
    assert strict.auc is not None and strict.auc > 0.75, "the fixture must be clearly shifted"
    assert strict.threshold == 1.0 and not strict.drifted, "the policy's max_shift_auc (1.0) decides, not a default"
    assert strict.shift.status != "alert", "the shift signal was called with the policy's threshold"
    assert "calibration set" not in strict.shift.reading + strict.body
    assert "train.jsonl" in strict.reference.name and "train.jsonl" in strict.body

    (project / "policy.yaml").write_text(POLICY.format(auc=0.75))
    loose = api.drift(config=project / "calibgate.yaml", dry_run=True)
    assert loose.drifted and loose.threshold == 0.75 and loose.shift.status == "alert"
    assert "training data at HEAD" in loose.shift.reading
    assert "Texts worth labeling" in loose.body and len(loose.suggestions) == 20, "the drift issue carries the list"
    assert any("zebra" in s.text for s in loose.suggestions[:1])


def test_drift_section_overrides_the_planner_threshold(project):
    (project / "policy.yaml").write_text(POLICY.format(auc=0.75) + "drift:\n  max_domain_auc: 1.0\n")
    result = api.drift(config=project / "calibgate.yaml", dry_run=True)
    assert result.threshold == 1.0 and not result.drifted


def test_too_few_production_texts_is_bad_input(project):
    (project / "policy.yaml").write_text(POLICY.format(auc=0.75) + "drift:\n  min_production: 100\n")
    from calibgate.errors import DataError

    with pytest.raises(DataError, match="100"):
        api.drift(config=project / "calibgate.yaml", dry_run=True)


def test_the_outputs_note_says_why_with_a_reference_given(project):
    """With --reference, drift said 'no production version in the registry' though one was in production: the
    reference replaces the version, so no model is restored."""
    result = api.drift(config=project / "calibgate.yaml", reference=project / "train.jsonl", dry_run=True)
    assert result.outputs is None
    assert "--reference replaces the production version" in result.outputs_note and "--model RUN" in result.outputs_note
    plain = api.drift(config=project / "calibgate.yaml", dry_run=True)
    assert "no production version in the registry" in plain.outputs_note


def test_a_missing_token_is_refused_before_drift_measures_or_writes(project, monkeypatch):
    """Without --dry-run the token was read only to open the issue: exit 2 with --out's three files already written."""
    from calibgate.errors import ConfigError

    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is not set"):
        api.drift(config=project / "calibgate.yaml", repo="octo/models", out=project / "d")
    assert not (project / "d").exists()


def test_the_reference_is_read_as_plan_and_train_read_it(project):
    """drift read its reference rows by a rule of its own: a row without a readable text was skipped in silence (a
    half-broken file compared as half its size), and a UTF-8 byte-order mark, which plan and train read, refused the
    file."""
    from calibgate.errors import DataError

    train = (project / "train.jsonl").read_bytes()
    (project / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + train)
    result = api.drift(config=project / "calibgate.yaml", reference=project / "bom.jsonl", dry_run=True)
    assert result.reference.n_total == 60
    rows = train.decode().splitlines()
    rows[3] = rows[3].replace('"text"', '"txt"')
    rows[5] = rows[5].replace('"please', '"\\u200b\\u200b", "x": "please')
    for bad, where in ((rows[:5], "bad.jsonl:4: missing key 'text'"), (rows[:3] + rows[4:], "bad.jsonl:5: 'text' must be")):
        (project / "bad.jsonl").write_text("\n".join(bad) + "\n")
        with pytest.raises(DataError, match=where):
            api.drift(config=project / "calibgate.yaml", reference=project / "bad.jsonl", dry_run=True)
