"""Label-noise signal on planted flips: estimate error, suspect precision and recall, and the false alarm on clean data.

Protocol (issue 8, item 3): per data set and seed, a stratified sample of
``--size`` rows of the train split; a copy with ``--rate`` of its labels
flipped uniformly to another class; the label-noise signal on both, as
``calibgate plan`` reads it: the planner's hidden-state probe and kNN, out of
fold (``--fast``: the frozen sentence-embedding probe and kNN, as ``plan
--fast`` reads it). Published labels carry their own noise, so "clean" means
as published: its estimate is the false-alarm figure.

"ranking ceiling" is the precision (equal to the recall) of the rows whose given
label the signal's two views find least probable, as many as were flipped: the
best any threshold on those views could do if it knew the planted rate.

Run (prints a markdown table; caches embeddings and hidden-state views):

    python benchmarks/bench_label_noise.py ../shared/datasets/{sst2,sst5,atis,mr,cr,mpqa,sms_spam,banking77} --size 400 --seeds 0,1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np


def flip(labels: np.ndarray, rate: float, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), size=int(round(rate * len(labels))), replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, n_classes, size=len(flipped))) % n_classes
    return noisy, np.sort(flipped)


def noise_record(data, info, *, seed: int, fast: bool = False):
    """(the label-noise record, the two-view ensemble it ranks suspects by)."""
    from calibgate.embeddings.encoder import embed_texts
    from calibgate.signals import SignalContext, compute_signals
    from calibgate.training.hidden_view import cached_hidden_view

    emb = embed_texts(data.texts, model=info)
    ctx = SignalContext(embeddings=emb.vectors, labels=data.labels, label_names=data.label_names, texts=data.texts, seed=seed)
    if not fast:  # what `calibgate plan` does after measuring the fine-tuning signal
        ctx.hidden_proba = cached_hidden_view(
            data.texts, data.labels, data.n_classes, info=info, probe_proba=ctx.oof_probe, folds=ctx.folds, seed=seed,
        ).layer_proba
    record = compute_signals(ctx, names=("label_noise",))["label_noise"]
    linear = ctx.oof_probe if ctx.hidden_proba is None else ctx.hidden_proba
    return record, (linear + ctx.oof_knn) / 2


def ranking_ceiling(labels: np.ndarray, ensemble: np.ndarray, flipped: np.ndarray) -> float:
    """Precision (= recall) of the ``len(flipped)`` rows whose given label the views find least probable: what the
    best threshold on these views could reach if it knew how many labels were flipped."""
    worst = np.argsort(ensemble[np.arange(len(labels)), labels], kind="stable")[: len(flipped)]
    return len(set(worst.tolist()) & set(flipped.tolist())) / max(len(flipped), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--rate", type=float, default=0.10)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--fast", action="store_true", help="frozen views only, as `calibgate plan --fast` reads them")
    args = parser.parse_args()

    from calibgate.bench.regret import stratified_sample
    from calibgate.data.jsonl import load_labeled
    from calibgate.embeddings.encoder import resolve_model_dir

    info = resolve_model_dir(None)
    rows = []
    for directory in args.datasets:
        train = load_labeled(directory / "train.jsonl")
        for seed in (int(s) for s in args.seeds.split(",")):
            sample = train.subset(stratified_sample(train, args.size, seed=seed))
            noisy_labels, flipped = flip(sample.labels, args.rate, sample.n_classes, seed)
            noisy = dataclasses.replace(sample, labels=noisy_labels)
            clean, _ = noise_record(sample, info, seed=seed, fast=args.fast)
            planted, ensemble = noise_record(noisy, info, seed=seed, fast=args.fast)
            found = {s.index for s in planted.suspects}
            hits = len(found & set(flipped.tolist()))
            rows.append({
                "data set": directory.name, "seed": seed, "classes": sample.n_classes,
                "estimate": planted.estimated_rate, "clean estimate": clean.estimated_rate,
                "precision": hits / len(found) if found else None, "recall": hits / len(flipped),
                "ranking ceiling": ranking_ceiling(noisy_labels, ensemble, flipped),
            })
            r = rows[-1]
            print(f"{r['data set']} seed {seed}: estimate {r['estimate']:.1%} (planted {args.rate:.0%}), "
                  f"clean {r['clean estimate']:.1%}, precision {'n/a' if r['precision'] is None else round(r['precision'], 2)}, "
                  f"recall {r['recall']:.2f}, ranking ceiling {r['ranking ceiling']:.2f}", flush=True)
    print()
    print(f"| data set | classes | estimate (planted {args.rate:.0%}) | clean estimate | precision | recall | ranking ceiling |")
    print("|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["data set"] for r in rows):
        sel = [r for r in rows if r["data set"] == name]
        prec = [r["precision"] for r in sel if r["precision"] is not None]
        print(f"| {name} | {sel[0]['classes']} | {np.mean([r['estimate'] for r in sel]):.1%} | {np.mean([r['clean estimate'] for r in sel]):.1%} | "
              f"{np.mean(prec) if prec else float('nan'):.2f} | {np.mean([r['recall'] for r in sel]):.2f} | "
              f"{np.mean([r['ranking ceiling'] for r in sel]):.2f} |")
    err = np.mean([abs(r["estimate"] - args.rate) for r in rows])
    prec = [r["precision"] for r in rows if r["precision"] is not None]
    print(f"| **all** | | mean abs. error {err * 100:.1f} pts | {np.mean([r['clean estimate'] for r in rows]):.1%} | "
          f"{np.mean(prec):.2f} | {np.mean([r['recall'] for r in rows]):.2f} | {np.mean([r['ranking ceiling'] for r in rows]):.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
