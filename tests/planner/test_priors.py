"""The planner's fine-tuning priors: fitted from trained candidates, leave one data set out, shipped as JSON."""

from __future__ import annotations

import pytest

from calibgate.bench.regret import loo_priors
from calibgate.planner.priors import MIN_SHARE_SD, PRIORS_FILE, Priors, fit_priors, load_priors

RESULTS = {
    # probe error 0.2, full recovers 0.25 of it; LoRA r8 gains 0.8x, r16 1.2x full's gain
    "a": {"embedding-probe": 0.80, "full-finetune": 0.85, "lora/r8": 0.84, "lora/r16": 0.86, "retrieval": 0.7},
    # probe error 0.1, full recovers 0.5
    "b": {"embedding-probe": 0.90, "full-finetune": 0.95, "lora/r8": 0.94, "lora/r16": 0.96, "retrieval": 0.8},
    # full fine-tuning loses: its share is negative and its LoRA ratio is not read (gain under a point)
    "c": {"embedding-probe": 0.90, "full-finetune": 0.895, "lora/r8": 0.80, "lora/r16": 0.80, "retrieval": 0.8},
}


def test_fit_takes_medians_and_reads_ratios_only_where_full_fine_tuning_gained():
    p = fit_priors(RESULTS)
    assert p.share == pytest.approx(0.25)  # median of 0.25, 0.5, -0.05
    assert p.share_sd == pytest.approx(max(MIN_SHARE_SD, 1.4826 * 0.25))
    assert p.lora_ratio == {8: pytest.approx(0.8), 16: pytest.approx(1.2)}  # c's collapse is not a ratio
    assert p.fitted_on == ("a", "b", "c") and "3 data sets" in p.source


def test_lora_share_interpolates_in_log_rank_and_is_flat_beyond():
    p = Priors(lora_ratio={8: 0.8, 16: 1.2})
    assert p.lora_share(8) == pytest.approx(0.8) and p.lora_share(16) == pytest.approx(1.2)
    assert p.lora_share(4) == pytest.approx(0.8) and p.lora_share(64) == pytest.approx(1.2)
    assert p.lora_share(11) == pytest.approx(0.8 + 0.4 * (11 ** 0.5 / 8 ** 0.5 - 1) / (2 ** 0.5 - 1), rel=0.05)


def test_leave_one_out_never_sees_the_held_out_data_set():
    candidates = {name: {k: {"accuracy": a} for k, a in accs.items()} for name, accs in RESULTS.items()}
    priors = loo_priors(candidates)
    assert all(name not in p.fitted_on for name, p in priors.items())
    assert priors["c"].share == pytest.approx(0.375)  # a and b only
    assert loo_priors({"a": candidates["a"]})["a"] == load_priors()  # nothing to leave out: the shipped priors


def test_json_round_trip_and_the_shipped_file_loads():
    p = fit_priors(RESULTS)
    assert Priors.from_json(p.to_json()) == p
    shipped = load_priors()
    assert 0 <= shipped.share <= 0.8 and shipped.share_sd >= MIN_SHARE_SD and shipped.lora_ratio
    if PRIORS_FILE.exists():  # fitted by the benchmark on the shared data sets
        assert shipped == Priors.from_json(PRIORS_FILE.read_text()) and len(shipped.fitted_on) >= 3


def test_without_the_file_the_hand_set_defaults_apply(hand_set_priors):
    assert load_priors() == Priors() and load_priors().source == "hand-set defaults"
