"""``calibgate serve``: HTTP predictions from a registered version's ONNX artifact, with shadow and canary."""

from __future__ import annotations

import click

from calibgate.cli.options import BATCH, COUNT, THREADS

EPILOG = """\b
Endpoints:
  POST /predict   {"text": "..."} or {"texts": ["...", ...]} -> {"request_id", "model",
                  "role", "predictions": [{"label", "score", "probs"}]}; the X-Request-ID
                  header (or a fresh id) decides primary or canary and is echoed back
  GET  /healthz   the models served
  GET  /metrics   Prometheus text: requests, latency histogram, labels, errors
Bad requests get a 4xx JSON {"error", "fix"}; the server keeps serving. A request
not received whole within --request-timeout gets a 408; connections past
--max-connections are closed on arrival. SIGHUP reopens the --log file (for
logrotate); a log renamed or deleted while serving is reopened at its path.
The version is restored from the registry's store and every file re-hashed
before it is served (onnxruntime + tokenizers; torch is not imported).

\b
Exit codes: 0 stopped by SIGINT or SIGTERM after a graceful shutdown; 2 bad option,
unknown or tampered version; 3 a machine fault.

\b
Examples:
  calibgate serve router@v1.2.0 --port 8000 --log predictions.jsonl
  calibgate serve router@v1.2.0 --shadow router@v1.3.0 --log shadow.jsonl
  calibgate serve router@v1.2.0 --canary router@v1.3.0 --share 0.1 --log canary.jsonl
"""


@click.command(epilog=EPILOG)
@click.argument("ref")
@click.option("--shadow", default=None, help="Version (name@vX.Y.Z) run beside the primary on every request; only logged.")
@click.option("--canary", default=None, help="Version that answers --share of requests (by hash of the request id).")
@click.option("--share", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True, help="Canary share of request ids.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None, help="Append every prediction to this JSONL log.")
@click.option("--policy", default=None, help="Policy whose monitor.log_text says whether raw texts are logged (default: calibgate.yaml's).")
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True, help="Which exported model serves.")
@click.option("--workers", type=THREADS, default=None, help="Inference threads per model (default: CPUs available).")
@click.option("--max-batch", type=BATCH, default=4, show_default=True,
              help="Texts per onnxruntime call when requests queue up (MiniLM on CPU: 4 beat 1, 8 and 32).")
@click.option("--max-texts", type=COUNT, default=64, show_default=True, help="Texts allowed in one request.")
@click.option("--max-body-bytes", type=click.IntRange(1, 1 << 30), default=64 * 1024, show_default=True, help="Largest request body.")
@click.option("--shadow-backlog", type=click.IntRange(0, 1_000_000), default=64, show_default=True,
              help="Requests queued for the shadow before it skips one (logged and counted), so it never slows answers.")
@click.option("--request-timeout", type=click.FloatRange(0.1, 3600.0), default=30.0, show_default=True,
              help="Seconds a client has to send one request's headers and body; then 408 and the connection closes.")
@click.option("--max-connections", type=click.IntRange(1, 100_000), default=None,
              help="Open connections at most [default: 1000, or half the file-descriptor limit (ulimit -n) if lower].")
def serve(ref, shadow, canary, share, host, port, log_path, policy, precision, workers, max_batch, max_texts, max_body_bytes,
          shadow_backlog, request_timeout, max_connections) -> None:
    """Serve version REF (name@vX.Y.Z, or a run directory) over HTTP."""
    from calibgate import api
    from calibgate.cli import Terminated
    from calibgate.export.serving import default_threads
    from calibgate.serving.app import ServeLimits, listen, run_server

    max_connections = _connection_limit(max_connections)
    sock = listen(host, port)  # a busy port or bad host fails now, before the restore
    limits = ServeLimits(max_body_bytes=max_body_bytes, max_texts=max_texts, max_batch=max_batch,
                         workers=workers or default_threads(), shadow_backlog=shadow_backlog,
                         request_timeout=request_timeout, max_connections=max_connections)
    try:
        plan = api.build_server(ref, shadow=shadow, canary=canary, share=share, log=log_path, policy=policy,
                                precision=precision, limits=limits)
    except BaseException:
        sock.close()
        raise
    extra = (f", shadow {plan.shadow}" if plan.shadow else "") + (f", canary {plan.canary} at {plan.share:.0%}" if plan.canary else "")
    address = f"[{host}]" if ":" in host else host  # an IPv6 literal takes brackets in a URL
    click.echo(f"serving {plan.primary}{extra} on http://{address}:{port}" + (f", logging to {plan.log}" if plan.log else ""), err=True)
    import signal

    try:
        stopped = run_server(plan, sock=sock, limits=limits)
    except (KeyboardInterrupt, Terminated) as exc:  # a signal before uvicorn took over its handling
        stopped = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
    if stopped is not None:  # the normal way to stop a server: uvicorn has shut down gracefully
        click.echo(f"calibgate serve: stopped by {signal.Signals(stopped).name} after a graceful shutdown", err=True)


def _connection_limit(given: int | None) -> int:
    """--max-connections, or its default; past the descriptor limit connections could exhaust it, so that is refused."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return given or 1000
    if given is None:
        return max(1, min(1000, soft // 2))
    if given > soft - 64:
        raise click.UsageError(f"--max-connections {given} does not leave room under this process's "
                               f"file-descriptor limit ({soft}); pass at most {max(1, soft - 64)} or raise 'ulimit -n'")
    return given
