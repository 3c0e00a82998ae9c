"""Does labeling the texts `calibgate suggest-labels` picks beat labeling a random sample?

For each shared data set (JSONL train/test under ../shared/datasets) and seed:
start from a small labeled set (``--initial-per-class`` per class, at least
``--initial-min``), train the embedding probe on it (the "production model"),
then label ``budget`` more texts from the rest of the training split (the
unlabeled pool) chosen either by :func:`calibgate.drift.suggest.suggest_labels`
(margin uncertainty under that model + domain score against the labeled set +
weighted k-center diversity) or uniformly at random, retrain the probe and
measure test accuracy. Reports the accuracy gained over the starting model for
both, per data set and budget, mean and spread over seeds; two ablations
(margin uncertainty alone: the top-``budget`` by margin; k-center alone: no
model, no shift score) show which ingredient carries the gain.

CPU-cheap on purpose: every model is the embedding-probe (logistic regression,
C fixed at 16) on frozen MiniLM embeddings, computed once per text and cached
by calibgate's encoder cache (``$CALIBGATE_CACHE_DIR``), so a rerun costs
seconds. The pool and test set are capped (``--pool-size``, ``--test-size``).

    python benchmarks/bench_suggest_labels.py --out benchmarks/RESULTS-suggest-labels.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "datasets"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", help="data set directories [default: every one under ../shared/datasets]")
    ap.add_argument("--budgets", default="50,100,200")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--initial-per-class", type=int, default=4)
    ap.add_argument("--initial-min", type=int, default=60)
    ap.add_argument("--pool-size", type=int, default=2000)
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--out", type=Path, help="also write the raw results as JSON here")
    args = ap.parse_args()
    dirs = [Path(d) for d in args.datasets] or sorted(p for p in DEFAULT_DATA.iterdir() if (p / "train.jsonl").exists())
    budgets = [int(b) for b in args.budgets.split(",")]
    results = []
    print("| data set | classes | initial | start acc | budget | suggested gain | random gain | suggested - random | wins "
          "| margin only | k-center only |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for directory in dirs:
        started = time.time()
        rows = _bench(directory, budgets, args)
        results += rows
        for budget in budgets:
            sel = [r for r in rows if r["budget"] == budget]
            s = np.array([r["suggested"] - r["start"] for r in sel]) * 100
            rnd = np.array([r["random"] - r["start"] for r in sel]) * 100
            wins = int((s > rnd).sum())
            margin = np.mean([r["margin_only"] - r["start"] for r in sel]) * 100
            kcenter = np.mean([r["kcenter_only"] - r["start"] for r in sel]) * 100
            print(
                f"| {directory.name} | {sel[0]['classes']} | {sel[0]['initial']} | {np.mean([r['start'] for r in sel]) * 100:.1f} "
                f"| {budget} | {s.mean():+.2f} ± {s.std():.2f} | {rnd.mean():+.2f} ± {rnd.std():.2f} "
                f"| {(s - rnd).mean():+.2f} | {wins}/{len(sel)} | {margin:+.2f} | {kcenter:+.2f} |",
                flush=True,
            )
        print(f"<!-- {directory.name}: {time.time() - started:.0f} s -->", file=sys.stderr, flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


def _bench(directory: Path, budgets: list[int], args) -> list[dict]:
    from calibgate.data.jsonl import load_labeled
    from calibgate.drift.suggest import margin_uncertainty, suggest_labels
    from calibgate.embeddings.encoder import embed_texts

    train = load_labeled(directory / "train.jsonl")
    test = _known_labels(load_labeled(directory / "test.jsonl"), train.label_names)
    rng = np.random.default_rng(12345)  # the pool and test rows are the same for every seed (one embedding pass)
    n_initial_max = max(args.initial_min, args.initial_per_class * train.n_classes)
    take = rng.permutation(len(train))[: args.pool_size + n_initial_max]
    train = train.subset(take)
    test = test.subset(rng.permutation(len(test))[: args.test_size])
    x_train = embed_texts(list(train.texts)).vectors
    x_test = embed_texts(list(test.texts)).vectors
    out = []
    for seed in range(args.seeds):
        initial = _initial(train.labels, train.n_classes, args.initial_per_class, args.initial_min, seed)
        pool = np.setdiff1d(np.arange(len(train)), initial)
        start_model = _fit(x_train[initial], train.labels[initial], train.n_classes)
        start = _accuracy(start_model, x_test, test.labels)
        probs = _proba(start_model, x_train[pool])
        for budget in budgets:
            picks = suggest_labels(
                [train.texts[i] for i in pool], x_train[pool], budget=budget, pred_probs=probs,
                label_names=list(train.label_names), reference_embeddings=x_train[initial], seed=seed,
            )
            chosen = pool[[p.index for p in picks]]
            rand = np.random.default_rng(1000 + seed).choice(pool, budget, replace=False)
            margin = pool[np.argsort(-margin_uncertainty(probs), kind="stable")[:budget]]
            kcenter = pool[[p.index for p in suggest_labels([train.texts[i] for i in pool], x_train[pool], budget=budget, seed=seed)]]
            scores = {}
            arms = (("suggested", chosen), ("random", rand), ("margin_only", margin), ("kcenter_only", kcenter))
            for name, extra in arms:
                index = np.r_[initial, extra]
                scores[name] = _accuracy(_fit(x_train[index], train.labels[index], train.n_classes), x_test, test.labels)
            out.append({"dataset": directory.name, "classes": train.n_classes, "initial": len(initial), "seed": seed,
                        "budget": budget, "start": start, **scores})
    return out


def _known_labels(test, label_names):
    """The test rows whose label the training split has (atis has test-only labels), in the training label space."""
    from calibgate.data.jsonl import from_records

    keep = [i for i, label in enumerate(test.label_strings()) if label in label_names]
    return from_records([test.texts[i] for i in keep], [test.label_strings()[i] for i in keep], label_names=label_names)


def _initial(labels: np.ndarray, n_classes: int, per_class: int, minimum: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(n_classes):
        rows = np.flatnonzero(labels == c)
        chosen += list(rng.permutation(rows)[:per_class])
    rest = np.setdiff1d(np.arange(len(labels)), chosen)
    if len(chosen) < minimum:
        chosen += list(rng.choice(rest, minimum - len(chosen), replace=False))
    return np.array(sorted(chosen))


def _fit(x, y, n_classes):
    from calibgate.training.frozen import fit_probe

    return fit_probe(x, y, n_classes, c_grid=(16.0,))


def _proba(fit, x):
    from calibgate.export.serving import softmax
    from calibgate.training.frozen import probe_logits

    return softmax(probe_logits(fit, x))


def _accuracy(fit, x, y) -> float:
    from calibgate.training.frozen import probe_logits

    return float((probe_logits(fit, x).argmax(1) == y).mean())


if __name__ == "__main__":
    raise SystemExit(main())
