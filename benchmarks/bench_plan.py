"""Wall time and peak memory of `calibgate plan` at 100, 300 and 500 calibration examples.

Each measurement is a fresh process (`python -m calibgate plan ... --json`):
"cold" with an empty embedding cache (imports, model load, embedding,
signals), "cached" with the embeddings already on disk. Peak memory is the
child's max RSS. The signal-only time comes from the plan's own timings.

Usage: python benchmarks/bench_plan.py [DATASET_DIR] [--sizes 100,300,500]
(default data set: ../shared/datasets/banking77; production sample: 300 test texts).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _sample(rows: list[dict], n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [rows[i] for i in rng.choice(len(rows), min(n, len(rows)), replace=False)]


def _run(args: list[str], env: dict) -> tuple[float, float, dict]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "calibgate", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak_kb, before) / 1024, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", nargs="?", default=str(HERE.parent.parent / "shared" / "datasets" / "banking77"))
    parser.add_argument("--sizes", default="100,300,500")
    args = parser.parse_args()
    data = Path(args.dataset)
    train = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (data / "test.jsonl").read_text().splitlines()]
    print(f"data set {data.name}; {os.cpu_count()} CPU cores; python {sys.version.split()[0]}")
    print(f"{'n':>5} {'cold s':>8} {'cached s':>9} {'signals s':>10} {'embed s (cold)':>15} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prod = tmp / "production.jsonl"
        prod.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in _sample(test, 300, 1)))
        for n in (int(s) for s in args.sizes.split(",")):
            cal = tmp / f"cal{n}.jsonl"
            cal.write_text("".join(json.dumps(r) + "\n" for r in _sample(train, n, 0)))
            env = {**os.environ, "CALIBGATE_CACHE_DIR": str(tmp / f"cache{n}"), "DVC_NO_ANALYTICS": "1"}
            argv = ["plan", "--calibration", str(cal), "--production", str(prod), "--target-size", "2000", "--json"]
            cold, peak, plan = _run(argv, env)
            cached, _, plan2 = _run(argv, env)
            signals = plan2["timings"].get("signals", float("nan"))
            print(f"{n:>5} {cold:>8.1f} {cached:>9.1f} {signals:>10.2f} {plan['timings']['embed']:>15.1f} {peak:>9.0f}")


if __name__ == "__main__":
    main()
