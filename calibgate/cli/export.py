"""``calibgate export``: ONNX export of a run, parity with torch, optional int8, latency."""

from __future__ import annotations

import click

from calibgate.cli.options import THREADS, run_option

EPILOG = """\b
Writes <run>/export/{model.onnx, model.int8.onnx, tokenizer.json, export.json}
and re-hashes the run manifest. Parity texts: --parity-texts, else the test
set (--test, else data.test of calibgate.yaml).

\b
Exit codes: 0 exported; 2 not a run, tampered run, bad option or data;
3 the export does not match torch (logits differ above 1e-4, token ids
differ) or the exporter failed: nothing is written to the run.

\b
Examples:
  calibgate export --run runs/20260101-probe --test datasets/test.jsonl
  calibgate export --run runs/latest --quantize int8 --compare-torch
"""


@click.command(epilog=EPILOG)
@run_option("Run directory written by 'calibgate train' (required).")
@click.option(
    "--quantize", type=click.Choice(["int8"]), default=None, help="Also write a dynamic int8 model (model.int8.onnx)."
)
@click.option(
    "--test",
    type=click.Path(dir_okay=False),
    default=None,
    help="Labeled JSONL: parity texts and the accuracy of each artifact.",
)
@click.option(
    "--parity-texts",
    type=click.Path(dir_okay=False),
    default=None,
    help='JSONL of {"text": ...} to compare ONNX with torch on.',
)
@click.option(
    "--exporter",
    type=click.Choice(["dynamo", "torchscript"]),
    default="dynamo",
    show_default=True,
    help="torch.onnx exporter.",
)
@click.option(
    "--latency-runs",
    type=click.IntRange(0, 100_000),
    default=200,
    show_default=True,
    help="Timed batch-1 runs per artifact (0: skip timing).",
)
@click.option("--compare-torch", is_flag=True, help="Also time torch eager on the same texts.")
@click.option("--threads", type=THREADS, default=None, help="Intra-op threads (default: CPUs available).")
@click.option("--json", "as_json", is_flag=True, help="Print the export record as JSON.")
def export(run_dir, quantize, test, parity_texts, exporter, latency_runs, compare_torch, threads, as_json) -> None:
    """Export a run to one ONNX graph (token ids -> logits), check it against torch, time it."""
    from calibgate import api

    texts = None
    if test is None and parity_texts is None:
        test = _project_test_set()
    if parity_texts is not None:
        from calibgate.data.jsonl import load_texts

        texts = load_texts(parity_texts)
    result = api.export(
        run_dir,
        quantize=quantize,
        test=test,
        parity_texts=texts,
        exporter=exporter,
        latency_runs=latency_runs,
        compare_torch=compare_torch,
        threads=threads,
    )
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    click.echo(
        f"exported {result.run_id} ({result.exporter}, opset {result.opset});"
        f" parity on {result.parity_texts} texts from {result.parity_source}"
    )
    for a in result.artifacts:
        parts = [f"{a.precision:5s} {a.path}  {a.size_bytes / 1e6:.1f} MB"]
        if a.max_abs_logit_diff is not None:
            parts.append(f"max|dlogit| {a.max_abs_logit_diff:.2g}")
        if a.argmax_agreement is not None:
            parts.append(f"argmax agreement {a.argmax_agreement:.1%}")
        if a.accuracy is not None:
            delta = f" ({a.accuracy_delta * 100:+.1f} pt)" if a.accuracy_delta is not None else ""
            parts.append(f"accuracy {a.accuracy:.1%}{delta}")
        if a.latency is not None:
            parts.append(_latency(a.latency))
        click.echo("  " + "; ".join(parts))
    if result.torch_latency is not None:
        click.echo(f"  torch eager {_latency(result.torch_latency)}")


def _latency(lat) -> str:
    return (
        f"p50/p95/p99 {lat.p50_ms:.2f}/{lat.p95_ms:.2f}/{lat.p99_ms:.2f} ms,"
        f" {lat.throughput_batch32:.0f} texts/s at batch 32, {lat.threads} threads"
    )


def _project_test_set():
    """``data.test`` of the calibgate.yaml found upwards, when it exists."""
    from calibgate.settings import find_config, load_config

    found = find_config()
    if found is None:
        return None
    config = load_config(found)
    test = config.path(config.data.test)
    return test if test is not None and test.exists() else None
