"""Training benchmark: throughput per strategy vs a plain peft loop, recipe accuracy, peak memory.

Each measurement runs in its own subprocess so its peak RSS (``ru_maxrss``)
is its own. Prints a Markdown table per section; record the output in
benchmarks/RESULTS-training.md with the command line.

    python benchmarks/bench_training.py                       # ~10 min on 2 quiet CPU cores
    python benchmarks/bench_training.py --skip-accuracy       # throughput only
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

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "banking77"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _subset(data: Path, n_classes: int, per_class: int | None, split: str) -> tuple[list[str], list[str]]:
    rows = _rows(data / f"{split}.jsonl")
    keep = sorted({r["label"] for r in rows})[:n_classes]
    out: dict[str, list[dict]] = {k: [] for k in keep}
    for r in rows:
        if r["label"] in out and (per_class is None or len(out[r["label"]]) < per_class):
            out[r["label"]].append(r)
    picked = [r for k in keep for r in out[k]]
    return [r["text"] for r in picked], [r["label"] for r in picked]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------- child jobs

def job_ours(args) -> dict:
    from calibgate.data.jsonl import from_records
    from calibgate.training import fit

    texts, labels = _subset(args.data, args.n_classes, args.per_class, "train")
    train = from_records(texts, labels)
    kw = {"lora_rank": 8} if args.strategy == "lora" else {}
    started = time.perf_counter()
    trained = fit(
        train, strategy=args.strategy, epochs=args.epochs, validation_fraction=args.validation_fraction,
        max_length=args.max_length, batch_size=args.batch_size, **kw,
    )
    total = time.perf_counter() - started
    out = {"train_seconds": trained.train_seconds, "wall_seconds": total, "n_train": len(train)}
    if "examples_per_second" in trained.train_config:
        out["examples_per_second"] = trained.train_config["examples_per_second"]
        out["examples_per_cpu_second"] = trained.train_config["examples_per_second"] * trained.train_config["loop_seconds"] / trained.train_config["loop_cpu_seconds"]
        out["best_epoch"] = trained.train_config["best_epoch"]
        out["epochs_run"] = trained.train_config["epochs_run"]
    else:  # frozen strategies: embedding (cold cache) + head fit
        out["examples_per_second"] = len(train) / trained.train_seconds
    if args.test:
        tt, tl = _subset(args.data, args.n_classes, None, "test")
        test = from_records(tt, tl, label_names=train.label_names)
        pred = trained.predict_proba(test.texts).argmax(axis=1)
        out["accuracy"] = float((pred == test.labels).mean())
        out["n_test"] = len(test)
    return out


def _plain_batches(tokenizer, texts, labels, batch_size, max_length, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(texts), generator=g).tolist()
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        yield enc, torch.tensor([labels[i] for i in idx])


def job_plain(args) -> dict:
    """The reference: a plain peft (or full) training loop, random batches padded to the longest, mean pooling."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    from calibgate.embeddings.encoder import default_model_dir

    torch.manual_seed(0)
    texts, labels = _subset(args.data, args.n_classes, args.per_class, "train")
    names = sorted(set(labels))
    y = [names.index(label) for label in labels]
    path = str(default_model_dir())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path)
    if args.strategy == "lora":
        encoder = get_peft_model(encoder, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["query", "key", "value", "dense"]))
    head = torch.nn.Linear(encoder.config.hidden_size, len(names))
    params = [p for p in encoder.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=5e-4 if args.strategy == "lora" else 5e-5)
    encoder.train()
    seen, started, cpu_started = 0, time.perf_counter(), time.process_time()
    for _ in range(args.epochs):
        for enc, target in _plain_batches(tokenizer, texts, y, args.batch_size, args.max_length, 0):
            hidden = encoder(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            loss = torch.nn.functional.cross_entropy(head(pooled), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(target)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"examples_per_second": seen / seconds, "examples_per_cpu_second": seen / cpu, "train_seconds": seconds, "n_train": len(texts)}


def job_textbook(args) -> dict:
    """The textbook recipe: AutoModelForSequenceClassification (CLS pooler head), lr 5e-5, linear decay,
    at most ``epochs`` epochs, early stopping on validation accuracy with patience 1."""
    import numpy as np
    import torch
    from sklearn.model_selection import train_test_split
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from calibgate.embeddings.encoder import default_model_dir

    torch.manual_seed(0)
    texts, labels = _subset(args.data, args.n_classes, args.per_class, "train")
    names = sorted(set(labels))
    y = np.array([names.index(label) for label in labels])
    tr, va = train_test_split(np.arange(len(texts)), test_size=args.validation_fraction, random_state=0, stratify=y)
    path = str(default_model_dir())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
    total = args.epochs * int(np.ceil(len(tr) / args.batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / total))

    def accuracy(idx_texts, idx_y) -> float:
        model.eval()
        hits = 0
        with torch.inference_mode():
            for s in range(0, len(idx_texts), 64):
                enc = tokenizer(idx_texts[s : s + 64], padding=True, truncation=True, max_length=args.max_length, return_tensors="pt")
                hits += int((model(**enc).logits.argmax(-1).numpy() == idx_y[s : s + 64]).sum())
        return hits / len(idx_texts)

    tr_texts, va_texts = [texts[i] for i in tr], [texts[i] for i in va]
    best, best_state, stale, seen, started = -1.0, None, 0, 0, time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for enc, target in _plain_batches(tokenizer, tr_texts, y[tr].tolist(), args.batch_size, args.max_length, 0):
            loss = model(**enc, labels=target).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(target)
        acc = accuracy(va_texts, y[va])
        if acc > best:
            best, best_state, stale = acc, {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            stale += 1
            if stale >= 1:
                break
    seconds = time.perf_counter() - started
    model.load_state_dict(best_state)
    tt, tl = _subset(args.data, args.n_classes, None, "test")
    test_acc = accuracy(tt, np.array([names.index(label) for label in tl]))
    return {"accuracy": test_acc, "train_seconds": seconds, "examples_per_second": seen / seconds, "n_train": len(tr), "n_test": len(tt)}


JOBS = {"ours": job_ours, "plain": job_plain, "textbook": job_textbook}


# ---------------------------------------------------------------- parent

def _child(job: str, strategy: str, args, **overrides) -> dict:
    cmd = [sys.executable, __file__, "--child", job, "--strategy", strategy, "--data", str(args.data)]
    opts = {
        "n_classes": args.n_classes, "per_class": args.per_class, "epochs": args.epochs, "max_length": args.max_length,
        "batch_size": args.batch_size, "validation_fraction": args.validation_fraction, **overrides,
    }
    for key, value in opts.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    if overrides.get("test_flag"):
        cmd = [c for c in cmd if c not in ("--test-flag", "True")] + ["--test"]
    env = {**os.environ, "CALIBGATE_CACHE_DIR": tempfile.mkdtemp(prefix="bench-cache-"), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{job}/{strategy} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--child")
    p.add_argument("--strategy", default="lora")
    p.add_argument("--n-classes", type=int, default=20)
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--throughput-rows", type=int, default=320, help="rows (16 per class x 20) for the throughput runs")
    p.add_argument("--repeats", type=int, default=2, help="alternating runs per throughput figure (median)")
    p.add_argument("--test", action="store_true")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        result = JOBS[args.child](args)
        result["peak_rss_mb"] = round(_peak_mb(), 1)
        print(json.dumps(result))
        return

    print(f"# calibgate training benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f})\n")
    print(f"data: {args.data}, max_length {args.max_length}, batch {args.batch_size}\n")
    if not args.skip_throughput:
        per_class = max(args.throughput_rows // args.n_classes, 1)
        print(f"## Throughput: 1 epoch on {per_class * args.n_classes} rows, no validation\n")
        print(f"Median of {args.repeats} alternating runs. Wall ex/s depends on what else runs on the machine; "
              "ex per CPU-second (process CPU time of the training steps, all threads) is the steadier comparison.\n")
        print("| strategy | ours ex/s | plain ex/s | ours ex/CPU-s | plain ex/CPU-s | ours / plain (CPU) | ours peak RSS MB | plain peak RSS MB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        import statistics

        for strategy in ("lora", "full-finetune"):
            ours, plain = [], []
            for _ in range(args.repeats):
                plain.append(_child("plain", "lora" if strategy == "lora" else "full", args, per_class=per_class, epochs=1))
                ours.append(_child("ours", strategy, args, per_class=per_class, epochs=1, validation_fraction=0.0))
            med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
            print(f"| {strategy}{' r8' if strategy == 'lora' else ''} | {med(ours, 'examples_per_second'):.1f} | "
                  f"{med(plain, 'examples_per_second'):.1f} | {med(ours, 'examples_per_cpu_second'):.1f} | "
                  f"{med(plain, 'examples_per_cpu_second'):.1f} | "
                  f"{med(ours, 'examples_per_cpu_second') / med(plain, 'examples_per_cpu_second'):.2f} | "
                  f"{max(r['peak_rss_mb'] for r in ours):.0f} | {max(r['peak_rss_mb'] for r in plain):.0f} |", flush=True)
        for strategy in ("embedding-probe", "retrieval"):
            ours = _child("ours", strategy, args, per_class=per_class, epochs=1)
            print(f"| {strategy} (cold embedding cache, embedding + fit) | {ours['examples_per_second']:.1f} | - | - | - | - | {ours['peak_rss_mb']:.0f} | - |", flush=True)
        print()
    if not args.skip_accuracy:
        print(f"## Recipe accuracy: banking77, first {args.n_classes} intents, {args.per_class} train rows each "
              f"({args.validation_fraction:.0%} held out for early stopping), full test split of those intents, <= {args.epochs} epochs\n")
        print("| recipe | test accuracy | train s | epochs run (best) | peak RSS MB |")
        print("|---|---:|---:|---:|---:|")
        runs = [
            ("textbook full FT (CLS pooler head, lr 5e-5, early stop on val acc, patience 1)", "textbook", "full"),
            ("ours: embedding-probe (LR, C by CV)", "ours", "embedding-probe"),
            ("ours: retrieval (kNN, k by LOO)", "ours", "retrieval"),
            ("ours: full FT (mean pooling, LP-FT head, val-loss early stop)", "ours", "full-finetune"),
            ("ours: LoRA r8 (same recipe)", "ours", "lora"),
        ]
        for title, job, strategy in runs:
            r = _child(job, strategy, args, test_flag=True)
            epochs = f"{r['epochs_run']} ({r['best_epoch']})" if "epochs_run" in r else "-"
            print(f"| {title} | {r['accuracy']:.4f} (n={r['n_test']}) | {r['train_seconds']:.1f} | {epochs} | {r['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
