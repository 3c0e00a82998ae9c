"""The strategy and signal catalogues: one entry per strategy read by every package, and a signal registered
beside the built-in ones reaches the plan's JSON, its schema and every renderer without other edits."""

from __future__ import annotations

import json
import numpy as np
import pytest

from calibgate.records import strategies
from calibgate.records.plan import Plan, RegisteredSignal, SignalBase
from calibgate.schemas import validate
from tests.conftest import demo_data_dir, pick, read_jsonl


def test_every_reader_of_strategies_reads_the_catalogue():
    import typing

    from calibgate.planner.costs import CostModel, latency_class
    from calibgate.records.plan import Candidate
    from calibgate.runs import RunManifest
    from calibgate.training import STRATEGIES
    from calibgate.training.options import make_options
    from calibgate.training.registry import registered

    assert STRATEGIES == strategies.TRAINABLE
    assert set(registered()) == set(strategies.TRAINABLE)  # a trainer for each entry, none outside it
    assert typing.get_args(RunManifest.model_fields["strategy"].annotation) == strategies.TRAINABLE
    plan_names = typing.get_args(Candidate.model_fields["strategy"].annotation)
    assert plan_names == strategies.TRAINABLE + strategies.DATA_ACTIONS
    costs = CostModel()
    for name, entry in strategies.STRATEGIES.items():
        assert latency_class(name) == entry.latency_class
        assert make_options(strategy=name).tunes_encoder == entry.tunes_encoder
        assert costs.train_seconds(name, 1000, lora_rank=8) == pytest.approx(entry.cost(costs, 1000, 8, 2))
    assert strategies.candidate_key("lora", 8) == "lora/r8" and strategies.candidate_key("full-finetune", None) == "full-finetune"
    # tuning costs epochs of full steps; frozen strategies one embedding pass, so they are far cheaper
    assert costs.train_seconds("full-finetune", 1000) > 10 * costs.train_seconds("embedding-probe", 1000)


def test_unknown_strategy_names_the_closest():
    from calibgate.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'full-finetune'"):
        strategies.spec("full-fintune")


def test_a_trainer_outside_the_catalogue_is_refused():
    from calibgate.training.registry import Strategy, register_strategy

    class Unlisted(Strategy):
        name = "unlisted"

    with pytest.raises(TypeError, match="not in calibgate.records.strategies"):
        register_strategy(Unlisted)


class Readability(SignalBase):
    mean_words: float


@pytest.fixture
def seventh_signal():
    from calibgate.signals import SIGNALS, register_signal

    @register_signal
    class ReadabilitySignal:
        name = "readability"

        def compute(self, ctx):
            words = float(np.mean([len(t.split()) for t in ctx.texts]))
            return Readability(status="ok", reading=f"texts average {words:.1f} words", mean_words=words)

    yield
    SIGNALS.pop("readability")


def test_a_registered_seventh_signal_reaches_plan_schema_and_reports(seventh_signal, tiny_bert_dir):
    from calibgate import api
    from calibgate.data.jsonl import from_records
    from calibgate.report.plan_view import render_markdown
    from calibgate.report.sections import plan_section

    rows = pick(read_jsonl(demo_data_dir() / "train.jsonl"), sorted({r["label"] for r in read_jsonl(demo_data_dir() / "train.jsonl")})[:3], 12)
    cal = from_records([r["text"] for r in rows], [r["label"] for r in rows], source="calibration")
    plan = api.plan(calibration=cal, model=str(tiny_bert_dir), fast=True, folds=3)
    names = [name for name, _ in plan.signals.items()]
    assert names[:6] == ["separability", "label_noise", "imbalance", "starvation", "domain_shift", "duplicates"]
    assert names[-1] == "readability"
    record = json.loads(plan.model_dump_json())
    validate("plan", record)  # the published schema takes registered signals
    assert record["signals"]["readability"]["mean_words"] > 0
    again = Plan.model_validate(record)
    kept = dict(again.signals.items())["readability"]
    assert isinstance(kept, RegisteredSignal) and kept.model_dump()["mean_words"] == record["signals"]["readability"]["mean_words"]
    words = record["signals"]["readability"]["mean_words"]
    assert f"| Readability | ✅ ok | mean words {words:.3g} | texts average" in render_markdown(plan)
    assert all("Readability" in variant.text for variant in plan_section(plan).variants)
    assert render_markdown(again) == render_markdown(plan)  # read back from JSON, rendered the same
