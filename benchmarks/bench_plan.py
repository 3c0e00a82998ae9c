"""Wall and CPU time and peak memory of `calibgate plan` at 100, 300 and 500 calibration examples,
in the default mode (with the measured fine-tuning signal) and with `--fast` (frozen-only).

Each measurement is a fresh process (`python -m calibgate plan ... --json`):
"cold" with an empty embedding cache (imports, model load, embedding,
signals, fine-tuning signal), then the default mode and `--fast` with the
embeddings on disk. CPU seconds are the child's user+system time, which a
busy shared machine inflates less than wall time; "extra CPU s" is what the
fine-tuning signal adds (default minus --fast, embeddings cached, the
signal's own cache emptied so it is measured). Peak memory is the
child's max RSS; stage times come from the plan's own timings.

Usage: python benchmarks/bench_plan.py [DATASET_DIR] [--sizes 100,300,500]
(default data set: ../shared/datasets/banking77; production sample: 300 test texts).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
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


def _run(args: list[str], env: dict) -> tuple[float, float, float, dict]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "calibgate", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, max(after.ru_maxrss, before.ru_maxrss) / 1024, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", nargs="?", default=str(HERE.parent.parent / "shared" / "datasets" / "banking77"))
    parser.add_argument("--sizes", default="100,300,500")
    args = parser.parse_args()
    data = Path(args.dataset)
    train = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (data / "test.jsonl").read_text().splitlines()]
    print(f"data set {data.name}; {os.cpu_count()} CPU cores; python {sys.version.split()[0]}")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print(
        f"{'n':>5} {'cold s':>7} {'default s':>10} {'default CPU s':>14} {'--fast s':>9} {'--fast CPU s':>13} "
        f"{'extra CPU s':>12} {'fine-tuning s':>14} {'chosen (default / fast)':>32} {'peak MiB':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prod = tmp / "production.jsonl"
        prod.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in _sample(test, 300, 1)))
        for n in (int(s) for s in args.sizes.split(",")):
            cal = tmp / f"cal{n}.jsonl"
            cal.write_text("".join(json.dumps(r) + "\n" for r in _sample(train, n, 0)))
            env = {**os.environ, "CALIBGATE_CACHE_DIR": str(tmp / f"cache{n}"), "DVC_NO_ANALYTICS": "1"}
            argv = ["plan", "--calibration", str(cal), "--production", str(prod), "--target-size", "2000", "--json"]
            cold, _, peak, _ = _run(argv, env)
            shutil.rmtree(tmp / f"cache{n}" / "hidden-view", ignore_errors=True)  # measured again, embeddings cached
            default, default_cpu, _, plan = _run(argv, env)
            fast, fast_cpu, _, fast_plan = _run([*argv, "--fast"], env)
            tuning = plan["timings"].get("fine_tuning", float("nan"))
            chosen = f"{plan['recommendation']['chosen_candidate']} / {fast_plan['recommendation']['chosen_candidate']}"
            print(
                f"{n:>5} {cold:>7.1f} {default:>10.1f} {default_cpu:>14.1f} {fast:>9.1f} {fast_cpu:>13.1f} "
                f"{default_cpu - fast_cpu:>12.1f} {tuning:>14.1f} {chosen:>32} {peak:>9.0f}"
            )


if __name__ == "__main__":
    main()
