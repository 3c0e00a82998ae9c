"""``calibgate predict``: JSONL texts in, JSONL predictions out, from the run's ONNX export (no torch)."""

from __future__ import annotations

import json

import click

from calibgate.cli.options import BATCH, THREADS, run_option

from calibgate.errors import DataError

EPILOG = """\b
Input: one JSON object per line with a "text" key (stdin or --input).
Output: one line per text, {"label", "score", "probs"} (or "top_k" with --top-k).
Serves <run>/export/model.onnx (or model.int8.onnx) with onnxruntime after
checking its sha256 against the run manifest; torch is not imported.

\b
Exit codes: 0 predicted; 2 bad input (not JSON, no "text", no lines),
no export, or a tampered artifact.

\b
Examples:
  calibgate predict --run runs/latest < texts.jsonl > predictions.jsonl
  calibgate predict --run runs/latest --precision int8 --input texts.jsonl --top-k 3
"""


@click.command(epilog=EPILOG)
@run_option("Run directory with an export (calibgate export) (required).")
@click.option(
    "--input",
    "input_path",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="JSONL file of texts; - reads stdin.",
)
@click.option(
    "--output",
    "-o",
    "output_path",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Where to write predictions; - is stdout.",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "int8"]),
    default="fp32",
    show_default=True,
    help="Which exported model serves.",
)
@click.option(
    "--batch-size", type=BATCH, default=32, show_default=True, help="Texts per onnxruntime call."
)
@click.option(
    "--top-k",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Write the k best labels instead of every label's probability.",
)
@click.option("--threads", type=THREADS, default=None, help="Intra-op threads (default: CPUs available).")
def predict(run_dir, input_path, output_path, precision, batch_size, top_k, threads) -> None:
    """Predict a label for every text with the run's ONNX model."""
    if output_path != "-":
        from calibgate.runs.guard import check_outside_runs

        check_outside_runs(output_path, what="-o", file=True)
    from calibgate import api
    from calibgate.export.serving import read_texts
    from calibgate.paths import decode_utf8, jsonl_lines

    source = "<stdin>" if input_path == "-" else input_path
    raw = _read_bytes(input_path)
    content = decode_utf8(raw, source=source, fix="re-encode the input as UTF-8")
    texts = read_texts(jsonl_lines(content), source=source)
    rows = api.predict(run_dir, texts, batch_size=batch_size, precision=precision, top_k=top_k, threads=threads)
    out = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if output_path == "-":
        click.echo(out, nl=False)
    else:
        from calibgate.paths import atomic_write_text

        atomic_write_text(output_path, out)


def _read_bytes(input_path: str) -> bytes:
    if input_path == "-":
        return click.get_binary_stream("stdin").read()
    from calibgate.paths import special_file

    if kind := special_file(input_path):
        raise DataError(f"{input_path} is {kind}, not a file of texts", fix="pipe it in with --input - or name a regular file")
    try:
        with open(input_path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise DataError(f"{input_path}: cannot be read ({exc.strerror})", fix="check the --input path") from None
