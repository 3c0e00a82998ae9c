"""Serving benchmark on the demo task: ONNX (fp32, dynamic int8) vs torch eager, same texts, same threads.

Fits an embedding probe (all-MiniLM-L6-v2 + logistic regression on
datasets/train.jsonl) into a run directory, or takes an existing run with
--run; exports it with int8 and --test datasets/test.jsonl; prints batch-1
latency percentiles, throughput at batch 32, accuracy, model sizes and the
peak resident memory of a serving process of each kind.

Usage: python benchmarks/bench_serving.py [--run runs/<id>] [--runs 300] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "benchmarks" / "cache"

_PEAK = """
import json, sys
from calibgate.data.jsonl import load_labeled
texts = list(load_labeled(sys.argv[2]).texts)
if sys.argv[3] == "torch":
    import torch
    torch.set_num_threads(int(sys.argv[4]))
    from calibgate.modeling import load_classifier
    model, tok, manifest = load_classifier(sys.argv[1])
    with torch.inference_mode():
        for i in range(0, len(texts), 32):
            batch = texts[i:i + 32]
            enc = tok(batch, padding=True, truncation=True, max_length=manifest.max_length, return_tensors="pt")
            model(enc["input_ids"], enc["attention_mask"])
else:
    from calibgate.export.serving import Predictor
    Predictor.from_run(sys.argv[1], precision=sys.argv[3], threads=int(sys.argv[4])).logits(texts)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the (large) parent
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_mb": hwm / 1024, "torch": "torch" in sys.modules}))
"""


def fit_probe_run(out: Path, train: Path, *, run_id: str = "bench-demo-probe", C: float = 10.0) -> Path:
    """A run directory with MiniLM and a logistic-regression head fitted on ``train``."""
    import torch
    from safetensors.torch import save_file
    from sklearn.linear_model import LogisticRegression

    from calibgate.data.jsonl import load_labeled
    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir
    from calibgate.runs import HeadSpec, RunManifest, write_manifest

    data = load_labeled(train)
    info = resolve_model_dir(None)
    emb = embed_texts(data.texts, model=info)
    probe = LogisticRegression(C=C, max_iter=2000).fit(emb.vectors, data.labels)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(info.path, out / "encoder", ignore=shutil.ignore_patterns("README.md", ".gitattributes"))
    save_file(
        {
            "weight": torch.tensor(probe.coef_, dtype=torch.float32).contiguous(),
            "bias": torch.tensor(probe.intercept_, dtype=torch.float32).contiguous(),
        },
        str(out / "head.safetensors"),
    )
    write_manifest(
        out,
        RunManifest(
            run_id=run_id,
            strategy="embedding-probe",
            label_names=list(data.label_names),
            base_model=info.name,
            model_type=info.model_type,
            pooling=info.pooling,
            normalize=info.normalize,
            max_length=info.max_length,
            head=HeadSpec(kind="linear"),
            train_config={"C": C, "classifier": "LogisticRegression"},
            data={"sha256": data.sha256, "rows": len(data)},
        ),
    )
    return out


def peak_rss(run: Path, test: Path, kind: str, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, str(run), str(test), kind, str(threads)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", type=Path, help="existing run directory (default: fit a probe on datasets/train.jsonl)"
    )
    parser.add_argument("--data", type=Path, default=ROOT / "datasets")
    parser.add_argument("--runs", type=int, default=300, help="timed batch-1 runs per model")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("CALIBGATE_CACHE_DIR", str(CACHE))

    from calibgate.export.api import export
    from calibgate.export.serving import default_threads

    threads = args.threads or default_threads()
    test = args.data / "test.jsonl"
    if args.run is None:
        start = time.perf_counter()
        run = fit_probe_run(CACHE / "runs" / "demo-probe", args.data / "train.jsonl")
        print(f"fitted probe run {run} in {time.perf_counter() - start:.1f} s")
    else:
        run = args.run
    start = time.perf_counter()
    result = export(run, quantize="int8", test=test, latency_runs=args.runs, compare_torch=True, threads=threads)
    print(
        f"export + parity + int8 + timing: {time.perf_counter() - start:.1f} s"
        f" ({result.exporter}, opset {result.opset})"
    )

    fp32, int8, eager = result.artifact("fp32"), result.artifact("int8"), result.torch_latency
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs,"
        f" {threads} threads for torch and onnxruntime"
    )
    print(
        f"texts: {result.test_texts} demo test texts, mean {fp32.latency.sequence_length:.1f} tokens; "
        f"{fp32.latency.batch1_runs} timed batch-1 runs after {fp32.latency.warmup_runs} warm-up, model time only"
    )
    print(
        f"parity: max |logit diff| fp32 vs torch {fp32.max_abs_logit_diff:.2e} on {result.parity_texts} texts; "
        f"int8 argmax agreement with torch {int8.argmax_agreement:.1%}"
    )
    print(
        f"\n{'':14s}{'p50 ms':>9s}{'p95 ms':>9s}{'p99 ms':>9s}{'p95 speedup':>13s}{'texts/s @32':>13s}{'accuracy':>10s}"
    )
    rows = [
        ("torch eager", eager, fp32.accuracy),
        ("onnx fp32", fp32.latency, fp32.accuracy),
        ("onnx int8", int8.latency, int8.accuracy),
    ]
    for name, lat, acc in rows:
        print(
            f"{name:14s}{lat.p50_ms:9.2f}{lat.p95_ms:9.2f}{lat.p99_ms:9.2f}{eager.p95_ms / lat.p95_ms:12.2f}x"
            f"{lat.throughput_batch32:13.0f}{acc:10.1%}"
        )
    print(
        f"\nint8 accuracy change vs fp32: {int8.accuracy_delta * 100:+.2f} points"
        f" (torch = fp32 within {fp32.max_abs_logit_diff:.0e})"
    )

    weights = (
        sum(p.stat().st_size for p in (run / "encoder").glob("*.safetensors"))
        + (run / "head.safetensors").stat().st_size
    )
    print(
        f"size on disk: safetensors (encoder + head) {weights / 1e6:.1f} MB, onnx fp32 {fp32.size_bytes / 1e6:.1f} MB, "
        f"onnx int8 {int8.size_bytes / 1e6:.1f} MB"
    )
    for kind in ("torch", "fp32", "int8"):
        peak = peak_rss(run, test, kind, threads)
        label = "torch eager (transformers)" if kind == "torch" else f"onnx {kind} serving"
        print(
            f"peak RSS, {label}, {result.test_texts} texts at batch 32: {peak['peak_rss_mb']:.0f} MB"
            f" (torch imported: {peak['torch']})"
        )


if __name__ == "__main__":
    main()
