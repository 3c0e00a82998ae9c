"""The cost model: reference throughputs scaled by parameters, tokens and hardware, or calibrated ones; the catalogue's
cost functions priced with them."""

from __future__ import annotations

import pytest

from calibgate.planner.costs import REFERENCE_PARAMS, CostModel, latency_class
from calibgate.records.strategies import DATA_ACTIONS, LORA_COST, STRATEGIES, TRAINABLE


def _seconds(model: CostModel, n: int = 1000, n_classes: int = 2) -> dict[str, float]:
    return {
        "embedding-probe": model.train_seconds("embedding-probe", n, n_classes=n_classes),
        "retrieval": model.train_seconds("retrieval", n, n_classes=n_classes),
        "lora/r8": model.train_seconds("lora", n, lora_rank=8, n_classes=n_classes),
        "lora/r16": model.train_seconds("lora", n, lora_rank=16, n_classes=n_classes),
        "full-finetune": model.train_seconds("full-finetune", n, n_classes=n_classes),
    }


def test_reference_setup_prices_each_strategy():
    # 1,000 examples: embedding 1000/200 = 5 s; tuning 4 epochs x 1000 / 25 per s = 160 s
    assert _seconds(CostModel()) == pytest.approx({
        "embedding-probe": 5 + 0.002 * 1000 + 1,
        "retrieval": 5 + 0.5,
        "lora/r8": 5 + 160 * 0.95 * (1 + 8 / 256),
        "lora/r16": 5 + 160 * 0.95 * (1 + 16 / 256),
        "full-finetune": 5 + 160,
    })
    assert CostModel().train_seconds("lora", 1000) == pytest.approx(5 + 160 * 0.95 * (1 + 8 / 256))  # rank 8 by default
    assert not CostModel().measured


def test_the_probe_head_grows_with_classes_past_ten():
    assert CostModel().train_seconds("embedding-probe", 1000, n_classes=10) == pytest.approx(8.0)
    assert CostModel().train_seconds("embedding-probe", 1000, n_classes=40) == pytest.approx(5 + 0.002 * 1000 * 4 + 1)


@pytest.mark.parametrize("n", [100, 1000, 10000])
def test_strategies_keep_their_relative_order(n):
    s = _seconds(CostModel(), n=n)
    assert s["retrieval"] < s["embedding-probe"] < s["lora/r8"] < s["full-finetune"]
    # LoRA runs the full forward and backward: its tuning steps cost LORA_COST of full fine-tuning's, times the rank factor
    embed = CostModel().embed_seconds(n)
    assert (s["lora/r8"] - embed) / (s["full-finetune"] - embed) == pytest.approx(LORA_COST * (1 + 8 / 256))
    assert LORA_COST == 0.95


def test_reference_throughputs_scale_with_parameters_and_tokens():
    model = CostModel(params=2 * REFERENCE_PARAMS, mean_tokens=64)  # 4x the FLOPs per example
    assert model.scale == pytest.approx(4.0)
    assert model.embed_seconds(1000) == pytest.approx(20.0)
    assert model.tune_seconds_per_example() == pytest.approx(4 / 25)
    assert _seconds(model)["full-finetune"] == pytest.approx(20 + 640)
    assert _seconds(model)["embedding-probe"] == pytest.approx(20 + 2 + 1)  # the head fit does not scale with the encoder
    assert CostModel(mean_tokens=2).scale == pytest.approx(4 / 32)  # padding floor: never under 4 tokens


def test_hardware_class_divides_the_reference_times():
    gpu = CostModel(hardware="gpu")
    assert gpu.scale == pytest.approx(1 / 40)
    assert _seconds(gpu)["full-finetune"] == pytest.approx((5 + 160) / 40)
    assert _seconds(gpu)["embedding-probe"] == pytest.approx(5 / 40 + 2 + 1)
    assert CostModel(hardware="tpu").scale == 1.0  # an unknown class is priced as the reference CPU


def test_calibrated_throughputs_replace_the_reference_and_its_scaling():
    model = CostModel(params=2 * REFERENCE_PARAMS, mean_tokens=64, hardware="gpu").calibrated(full_per_s=50, embed_per_s=400)
    assert model.measured and (model.params, model.mean_tokens, model.hardware) == (2 * REFERENCE_PARAMS, 64, "gpu")
    assert model.embed_seconds(1000) == pytest.approx(2.5)
    assert model.tune_seconds_per_example() == pytest.approx(1 / 50)
    s = _seconds(model)
    assert s["full-finetune"] == pytest.approx(2.5 + 4 * 1000 / 50)
    assert s["lora/r8"] == pytest.approx(2.5 + 80 * 0.95 * (1 + 8 / 256))
    assert s["retrieval"] == pytest.approx(3.0)


@pytest.mark.parametrize("action", [*DATA_ACTIONS, "not-a-strategy"])
def test_data_actions_cost_nothing_and_have_no_latency(action):
    assert CostModel().train_seconds(action, 1000) == 0.0
    assert latency_class(action) == "none"


def test_latency_class_comes_from_the_catalogue():
    assert {name: latency_class(name) for name in TRAINABLE} == {
        "embedding-probe": "encoder", "retrieval": "encoder+index", "lora": "encoder", "full-finetune": "encoder",
    }
    assert all(latency_class(name) == STRATEGIES[name].latency_class for name in TRAINABLE)
