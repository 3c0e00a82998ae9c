"""Build the bundled demo task from the shared banking77 copy (reproducible, seed 0).

The demo is a support-ticket router over 15 banking77 intents (CC BY 4.0,
PolyAI; attribution in DATA_ATTRIBUTION.md):

* train.jsonl        up to 60 labeled examples per intent, from banking77 train
* calibration.jsonl  a stratified 300-example sample of train.jsonl (the planner's input)
* test.jsonl         25 per intent from banking77 test
* production.jsonl   the other 15 per intent of banking77 test, labels removed

Usage: python tools/make_demo.py ../shared/datasets/banking77 datasets/
"""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from pathlib import Path

INTENTS = [
    "activate_my_card", "card_arrival", "card_delivery_estimate", "card_not_working", "lost_or_stolen_card",
    "declined_card_payment", "pending_card_payment", "card_payment_fee_charged", "transfer_timing",
    "pending_transfer", "failed_transfer", "cancel_transfer", "top_up_failed", "exchange_rate", "change_pin",
]


def _by_label(path: Path) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["label"] in INTENTS:
            groups[row["label"]].append({"text": row["text"], "label": row["label"]})
    return groups


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main(source: str, out: str) -> None:
    rng = random.Random(0)
    src, dst = Path(source), Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    train, calibration, test, production = [], [], [], []
    train_groups, test_groups = _by_label(src / "train.jsonl"), _by_label(src / "test.jsonl")
    for intent in INTENTS:
        rows = train_groups[intent]
        rng.shuffle(rows)
        train += rows[:60]
        calibration += rows[:20]
        held = test_groups[intent]
        rng.shuffle(held)
        test += held[:25]
        production += [{"text": r["text"]} for r in held[25:40]]
    for rows in (train, calibration, test, production):
        rng.shuffle(rows)
    _write(dst / "train.jsonl", train)
    _write(dst / "calibration.jsonl", calibration)
    _write(dst / "test.jsonl", test)
    _write(dst / "production.jsonl", production)


if __name__ == "__main__":
    main(*sys.argv[1:3])
