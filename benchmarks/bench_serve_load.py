"""Load benchmark of 'calibgate serve' on 127.0.0.1: throughput and latency at 1, 8 and 32 clients, shadow cost, soak.

Serves the MiniLM demo probe (the run bench_serving.py fits, or --run) in a
real 'calibgate serve' process, drives it with closed-loop HTTP clients
(keep-alive connections, one text per request, drawn from datasets/test.jsonl)
for --duration seconds per level, and prints requests/s, p50/p95/p99 client
latency, dropped requests (connection errors, timeouts) and 5xx answers,
without and with a shadow model (the same probe fitted with C=1: another model of the same cost). Then a
soak at 8 clients for --soak seconds with the server's RSS at its start and
end. The in-process reference is onnxruntime in this process at batch 1 with
one intra-op thread, tokenization included (what one server worker does), and
the p95 'calibgate export' records (model time only, pre-tokenized).

Usage: python benchmarks/bench_serve_load.py [--run runs/<id>] [--duration 15] [--soak 600] [--clients 1,8,32]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
CACHE = ROOT / "benchmarks" / "cache"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


class Server:
    def __init__(self, run: Path, *, shadow: Path | None, workers: int, log: Path):
        self.port = free_port()
        args = [sys.executable, "-m", "calibgate", "serve", str(run), "--port", str(self.port), "--log", str(log),
                "--workers", str(workers)]
        if shadow is not None:
            args += ["--shadow", str(shadow)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {self.proc.stderr.read()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.3)
        raise SystemExit("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)


def drive(port: int, texts: list[str], clients: int, seconds: float, *, seed: int = 0) -> dict:
    """Closed-loop clients for ``seconds``; per-request client latency and outcome."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    outcome = {"ok": 0, "5xx": 0, "4xx": 0, "dropped": 0}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.perf_counter() < stop_at:
            body = json.dumps({"text": rng.choice(texts)})
            started = time.perf_counter()
            try:
                conn.request("POST", "/predict", body, {"Content-Type": "application/json", "X-Request-ID": f"c{i}-{n}"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                with lock:
                    outcome["dropped"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            elapsed = (time.perf_counter() - started) * 1000
            n += 1
            key = "ok" if status == 200 else "5xx" if status >= 500 else "4xx"
            with lock:
                outcome[key] += 1
            if status == 200:
                latencies[i].append(elapsed)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return {"clients": clients, "wall": wall, "latencies": [x for row in latencies for x in row], **outcome}


def pooled(parts: list[dict]) -> dict:
    """One level's rounds together: requests/s over their summed wall time, percentiles over every request."""
    flat = np.asarray([x for p in parts for x in p["latencies"]])
    p50, p95, p99 = np.percentile(flat, [50, 95, 99]) if len(flat) else (float("nan"),) * 3
    total = {k: sum(p[k] for p in parts) for k in ("ok", "5xx", "4xx", "dropped")}
    return {"rps": total["ok"] / sum(p["wall"] for p in parts), "p50": p50, "p95": p95, "p99": p99, **total}


def in_process(run: Path, texts: list[str], runs: int) -> tuple[float, float, float]:
    from calibgate.export.serving import Predictor

    predictor = Predictor.from_run(run, threads=1)
    for t in texts[:10]:
        predictor.predict([t])
    times = []
    for i in range(runs):
        started = time.perf_counter()
        predictor.predict([texts[i % len(texts)]])
        times.append((time.perf_counter() - started) * 1000)
    return tuple(float(x) for x in np.percentile(times, [50, 95, 99]))


def batch_scaling(run: Path, texts: list[str], seconds: float = 3.0) -> dict[int, float]:
    """texts/s of one onnxruntime session (1 thread) at batch 1, 4, 8, 32: what micro-batching can gain per core."""
    from calibgate.export.serving import Predictor

    predictor = Predictor.from_run(run, threads=1)
    out = {}
    for size in (1, 4, 8, 32):
        predictor.logits(texts[:size], batch_size=size)
        started, n = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            i = (n * size) % (len(texts) - size)
            predictor.logits(texts[i : i + size], batch_size=size)
            n += 1
        out[size] = n * size / (time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run directory with an ONNX export (default: fit and export the demo probe)")
    parser.add_argument("--shadow-run", type=Path,
                        help="a second run with an export, served as the shadow (default with the demo probe: the same "
                             "probe fitted with C=1, a distinct model of the same cost)")
    parser.add_argument("--data", type=Path, default=ROOT / "datasets")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per load level")
    parser.add_argument("--soak", type=float, default=600.0, help="soak length in seconds (8 clients); 0 skips it")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleave the levels this many times (--duration split between rounds), so load drift on a shared box hits all alike")
    parser.add_argument("--workers", type=int, default=None, help="server inference threads per model (default: CPUs)")
    args = parser.parse_args()
    os.environ.setdefault("CALIBGATE_CACHE_DIR", str(CACHE))

    from calibgate.data.jsonl import load_labeled
    from calibgate.records.export import ExportResult
    from calibgate.export.serving import default_threads

    test = args.data / "test.jsonl"
    texts = list(load_labeled(test).texts)
    run = args.run
    if run is None:
        from bench_serving import fit_probe_run

        from calibgate.export.api import export

        run = CACHE / "runs" / "demo-probe-serve"
        for path, run_id, C in ((run, "bench-demo-probe", 10.0), (CACHE / "runs" / "demo-probe-serve-shadow", "bench-demo-probe-shadow", 1.0)):
            if not (path / "export" / "export.json").exists():
                started = time.perf_counter()
                fit_probe_run(path, args.data / "train.jsonl", run_id=run_id, C=C)
                export(path, test=test, latency_runs=300, threads=1)
                print(f"fitted and exported the demo probe into {path} in {time.perf_counter() - started:.1f} s")
    shadow_run = args.shadow_run or (CACHE / "runs" / "demo-probe-serve-shadow" if args.run is None else None)
    if shadow_run is None:
        raise SystemExit("--run needs --shadow-run: serve refuses a model as its own shadow")
    record = ExportResult.model_validate_json((run / "export" / "export.json").read_text())
    fp32 = record.artifact("fp32")
    workers = args.workers or default_threads()
    levels = [int(c) for c in args.clients.split(",")]

    print(f"levels {levels}, {args.duration:.0f} s each in {args.rounds} interleaved rounds; closed-loop clients in this process")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at start), "
          f"python {platform.python_version()}")
    print(f"model: {run.name} (MiniLM + probe, onnx fp32), {len(texts)} test texts, one text per request; "
          f"server: {workers} inference threads per model, 1 intra-op thread each")
    ref = in_process(run, texts, 300)
    print(f"in-process onnxruntime, batch 1, 1 thread, with tokenization: p50 {ref[0]:.2f} ms, p95 {ref[1]:.2f} ms, p99 {ref[2]:.2f} ms")
    if fp32 and fp32.latency:
        lat = fp32.latency
        print(f"'calibgate export' record: p95 {lat.p95_ms:.2f} ms at {lat.threads} thread(s), model time only")
    scaling = batch_scaling(run, texts)
    print("in-process texts/s by batch size, 1 thread: " + ", ".join(f"batch {k} {v:.0f}" for k, v in scaling.items()))
    print()
    print(f"{'shadow':>6} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'ok':>7} {'5xx':>5} {'dropped':>7}")
    rows = {}
    log_dir = CACHE / "serve-load"
    log_dir.mkdir(parents=True, exist_ok=True)
    for shadow in (False, True):
        log = log_dir / f"predictions-{'shadow' if shadow else 'plain'}.jsonl"
        log.unlink(missing_ok=True)
        server = Server(run, shadow=shadow_run if shadow else None, workers=workers, log=log)
        try:
            drive(server.port, texts, 2, 3.0, seed=99)  # warm-up
            parts: dict[int, list[dict]] = {c: [] for c in levels}
            for round_ in range(args.rounds):
                for clients in levels:
                    parts[clients].append(drive(server.port, texts, clients, args.duration / args.rounds, seed=clients * 100 + round_))
            for clients in levels:
                r = rows[(shadow, clients)] = pooled(parts[clients])
                print(f"{'yes' if shadow else 'no':>6} {clients:>7} {r['rps']:>8.1f} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['p99']:>8.2f} "
                      f"{r['ok']:>7} {r['5xx']:>5} {r['dropped']:>7}", flush=True)
        finally:
            server.stop()
    print()
    one, eight = rows.get((False, 1)), rows.get((False, 8))
    if one:
        print(f"p95 at 1 client / in-process p95 (with tokenization): {one['p95'] / ref[1]:.2f}x"
              + (f"; / export-record p95: {one['p95'] / fp32.latency.p95_ms:.2f}x" if fp32 and fp32.latency else ""))
    if one and eight:
        print(f"throughput 8 clients / 1 client: {eight['rps'] / one['rps']:.2f}x")
    for clients in levels:
        if (False, clients) in rows and (True, clients) in rows:
            print(f"shadow p95 / plain p95 at {clients} clients: {rows[(True, clients)]['p95'] / rows[(False, clients)]['p95']:.2f}x")
    if args.soak > 0:
        log = log_dir / "predictions-soak.jsonl"
        log.unlink(missing_ok=True)
        server = Server(run, shadow=None, workers=workers, log=log)
        try:
            drive(server.port, texts, 8, 5.0, seed=7)
            start_rss = rss_mb(server.proc.pid)
            done: dict = {}
            worker = threading.Thread(target=lambda: done.update(r=pooled([drive(server.port, texts, 8, args.soak, seed=8)])))
            worker.start()
            samples = []
            while worker.is_alive():
                samples.append(rss_mb(server.proc.pid))
                worker.join(timeout=max(1.0, args.soak / 20))
            end_rss = rss_mb(server.proc.pid)
            r = done["r"]
        finally:
            server.stop()
        print(f"soak: {args.soak:.0f} s at 8 clients: {r['ok']} ok, {r['5xx']} 5xx, {r['dropped']} dropped, {r['rps']:.1f} req/s, "
              f"p95 {r['p95']:.2f} ms; server RSS {start_rss:.0f} MB at start, {end_rss:.0f} MB at end "
              f"(min {min(samples):.0f}, max {max(samples):.0f} over {len(samples)} samples)")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
