"""The ASGI app ``calibgate serve`` runs (Starlette): ``POST /predict``, ``GET /healthz``, ``GET /metrics``.

Every request gets an id (the ``X-Request-ID`` header, or a fresh one) that
decides primary or canary (:mod:`calibgate.serving.router`) and ties the log
lines of one request together. Bad requests get a 4xx JSON body
``{"error": ..., "fix": ...}`` before any model runs: a body over
``max_body_bytes`` (413, read in chunks, never buffered past the limit), not
JSON (400), not an object with ``text`` or ``texts`` (422), empty or
over-long texts (422), more than ``max_texts`` texts (413). A failure inside a
model is a 500 with a JSON body; the server keeps serving either way.

The shadow model runs on every request after the answer is sent, through its
own queue; when that queue already holds ``shadow_backlog`` requests the
shadow skips the request (counted in ``/metrics`` and logged), so shadowing
never slows or blocks the served answer.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from calibgate._lazy import require
from calibgate.data.jsonl import has_visible
from calibgate.serving.models import BatchingModel, ServedModel
from calibgate.serving.predlog import LogRecord, PredictionLog, items_for, new_line_id, now
from calibgate.serving.router import Router

MAX_REQUEST_ID = 128


@dataclass(frozen=True)
class ServeLimits:
    """Bounds on what one request may ask for."""

    max_body_bytes: int = 64 * 1024
    max_texts: int = 64
    max_text_chars: int = 4096
    max_batch: int = 4
    workers: int = 2
    shadow_backlog: int = 64
    request_timeout: float = 30.0  # seconds to receive one request's headers and body (serving/protocol.py)
    max_connections: int = 1000  # open connections; more are closed on arrival


class BadRequest(Exception):
    """A request answered with a 4xx; ``kind`` is its ``calibgate_errors`` label, None where the connection layer
    counted it already (a body cut off by the receive deadline is its ``request_timeout``)."""

    def __init__(self, status: int, error: str, fix: str, kind: str | None = "bad_request"):
        super().__init__(error)
        self.status, self.error, self.fix, self.kind = status, error, fix, kind


class _Metrics:
    """Prometheus metrics on a private registry (several apps in one process stay separate)."""

    def __init__(self):
        prom = require("prometheus_client")
        self.prom = prom
        prom.disable_created_metrics()  # the *_created series double the output and nobody graphs them
        self.registry = prom.CollectorRegistry()
        self.requests = prom.Counter("calibgate_requests", "Requests answered, by served model, role and HTTP status",
                                     ["model", "role", "status"], registry=self.registry)
        self.latency = prom.Histogram(
            "calibgate_request_latency_seconds", "Model latency per request (queue + inference)", ["model", "role"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0), registry=self.registry)
        self.labels = prom.Counter("calibgate_predictions", "Predicted labels, by model and role",
                                   ["model", "role", "label"], registry=self.registry)
        self.errors = prom.Counter("calibgate_errors", "Errors by kind (bad_request, client_disconnect, model_error, shadow_error, "
                                   "shadow_skipped, log_error; request_timeout, too_many_connections and bad_http: connections refused)",
                                   ["kind"], registry=self.registry)

    def observe(self, model: str, role: str, status: int, latency_ms: float | None, records: list[dict]) -> None:
        self.requests.labels(model, role, str(status)).inc()
        if latency_ms is not None:
            self.latency.labels(model, role).observe(latency_ms / 1000)
        for r in records:
            self.labels.labels(model, role, r["label"]).inc()

    def render(self) -> bytes:
        return self.prom.generate_latest(self.registry)


def create_app(
    primary: ServedModel,
    *,
    shadow: ServedModel | None = None,
    canary: ServedModel | None = None,
    share: float = 0.0,
    limits: ServeLimits = ServeLimits(),
    log: PredictionLog | None = None,
):
    """The Starlette app serving ``primary`` (and ``canary`` for ``share`` of request ids, ``shadow`` beside)."""
    require("starlette")
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    router = Router(share=share, has_canary=canary is not None)
    log = log or PredictionLog(None)
    metrics = _Metrics()
    log.on_failure = lambda exc: metrics.errors.labels("log_error").inc()
    served = {"primary": BatchingModel(primary, workers=limits.workers, max_batch=limits.max_batch)}
    if canary is not None:
        served["canary"] = BatchingModel(canary, workers=limits.workers, max_batch=limits.max_batch)
    shadow_model = BatchingModel(shadow, workers=limits.workers, max_batch=limits.max_batch) if shadow else None
    background: set[asyncio.Task] = set()

    @asynccontextmanager
    async def lifespan(app):
        for model in [*served.values(), *([shadow_model] if shadow_model else [])]:
            await model.start()
        yield
        if background:  # let running shadow jobs log their answer
            await asyncio.wait(list(background), timeout=10)
        for model in [*served.values(), *([shadow_model] if shadow_model else [])]:
            await model.stop()
        log.close()

    async def predict(request: Request):
        arrived = now()
        request_id = _request_id(request)
        role = router.route(request_id)
        model = served[role]
        try:
            texts = _parse(await _read_body(request, limits.max_body_bytes), limits)
        except BadRequest as exc:
            if exc.kind is not None:
                metrics.errors.labels(exc.kind).inc()
            metrics.observe(model.ref, role, exc.status, None, [])
            log.write(LogRecord(ts=arrived, request_id=request_id, line_id=new_line_id(), role=role, model=model.ref,
                                status=exc.status, error=exc.error))
            return JSONResponse({"error": exc.error, "fix": exc.fix, "request_id": request_id}, status_code=exc.status,
                                headers={"X-Request-ID": request_id})
        try:
            records, latency_ms = await model.predict(texts)
            # the log's items check what the model gave (finite confidences, known labels): a model error if not, before
            # anything counts the answer as a 200
            items = items_for(texts, [(r["label"], r["score"]) for r in records], log_text=log.log_text)
        except Exception as exc:  # noqa: BLE001 - a model failure is a 500 for this request only
            metrics.errors.labels("model_error").inc()
            metrics.observe(model.ref, role, 500, None, [])
            log.write(LogRecord(ts=arrived, request_id=request_id, line_id=new_line_id(), role=role, model=model.ref,
                                status=500, error=f"{type(exc).__name__}: {exc}"))
            return JSONResponse({"error": f"the model failed on this request ({type(exc).__name__})", "fix": "retry; report it if it persists",
                                 "request_id": request_id}, status_code=500, headers={"X-Request-ID": request_id})
        metrics.observe(model.ref, role, 200, latency_ms, records)
        answer_id = new_line_id()
        log.write(LogRecord(ts=arrived, request_id=request_id, line_id=answer_id, role=role, model=model.ref, status=200,
                            latency_ms=round(latency_ms, 3), items=items))
        if shadow_model is not None:
            _start_shadow(texts, request_id, arrived, answer_id)
        return JSONResponse({"request_id": request_id, "model": model.ref, "role": role, "predictions": records},
                            headers={"X-Request-ID": request_id, "X-Served-By": model.ref})

    def _start_shadow(texts: list[str], request_id: str, arrived: float, answer_id: str) -> None:
        if shadow_model.backlog >= limits.shadow_backlog:
            metrics.errors.labels("shadow_skipped").inc()
            log.write(LogRecord(ts=arrived, request_id=request_id, line_id=new_line_id(), shadow_of=answer_id, role="shadow",
                                model=shadow_model.ref, status=503, error="skipped: shadow backlog full"))
            return
        task = asyncio.create_task(_shadow(texts, request_id, arrived, answer_id))
        background.add(task)
        task.add_done_callback(background.discard)

    async def _shadow(texts: list[str], request_id: str, arrived: float, answer_id: str) -> None:
        line = {"ts": arrived, "request_id": request_id, "shadow_of": answer_id, "role": "shadow", "model": shadow_model.ref}
        try:
            records, latency_ms = await shadow_model.predict(texts)
            items = items_for(texts, [(r["label"], r["score"]) for r in records], log_text=log.log_text)
        except Exception as exc:  # noqa: BLE001 - the shadow never affects the answer; its failure is logged
            metrics.errors.labels("shadow_error").inc()
            log.write(LogRecord(**line, line_id=new_line_id(), status=500, error=f"{type(exc).__name__}: {exc}"))
            return
        metrics.observe(shadow_model.ref, "shadow", 200, latency_ms, records)
        log.write(LogRecord(**line, line_id=new_line_id(), status=200, latency_ms=round(latency_ms, 3), items=items))

    async def healthz(request: Request):
        return JSONResponse({"status": "ok", "primary": primary.ref, "canary": canary.ref if canary else None, "share": share,
                             "shadow": shadow.ref if shadow else None, "time": time.time()})

    async def metrics_endpoint(request: Request):
        return Response(metrics.render(), media_type=metrics.prom.CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: HTTPException):
        fix = {404: "POST /predict, GET /healthz or GET /metrics", 405: "use POST for /predict, GET for /healthz and /metrics"}
        return JSONResponse({"error": exc.detail, "fix": fix.get(exc.status_code, "see 'calibgate serve --help'")},
                            status_code=exc.status_code)

    async def internal_error(request: Request, exc: Exception):
        return JSONResponse({"error": f"internal error ({type(exc).__name__})", "fix": "report it"}, status_code=500)

    app = Starlette(
        routes=[Route("/predict", predict, methods=["POST"]), Route("/healthz", healthz, methods=["GET"]),
                Route("/metrics", metrics_endpoint, methods=["GET"])],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # '/predict/' redirected to a Location built from the client's Host header
    app.state.count_refused = lambda reason: metrics.errors.labels(
        {"timeout": "request_timeout", "connections": "too_many_connections", "framing": "bad_http"}[reason]).inc()
    app.state.prediction_log = log
    return app


def _request_id(request) -> str:
    given = request.headers.get("x-request-id", "").strip()
    if given and len(given) <= MAX_REQUEST_ID and given.isprintable():
        return given
    return uuid.uuid4().hex


async def _read_body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest(400, f"Content-Length '{declared[:20]}' is not a number", "send a valid Content-Length") from None
        if size > limit:
            raise BadRequest(413, f"request body is {size} bytes, the limit is {limit}", "send fewer or shorter texts per request")
    from starlette.requests import ClientDisconnect

    chunks, total = [], 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise BadRequest(413, f"request body exceeds the limit of {limit} bytes", "send fewer or shorter texts per request")
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or cut off by the receive deadline (serving/protocol.py), which counted it
        from calibgate.serving.protocol import TIMED_OUT

        raise BadRequest(408, "the client disconnected or timed out before sending the whole body",
                         "send the whole request at once",
                         kind=None if request.scope.get(TIMED_OUT) else "client_disconnect") from None
    return b"".join(chunks)


def _parse(body: bytes, limits: ServeLimits) -> list[str]:
    """The request's texts, or :class:`BadRequest` naming the first problem."""
    from calibgate.data.jsonl import DuplicateKey, unique_keys

    example = 'send {"text": "..."} or {"texts": ["...", "..."]}'
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=unique_keys)
    except DuplicateKey as exc:  # '{"text": "a", "text": "b"}' answered for "b" and logged nothing of "a"
        raise BadRequest(400, f"request body names the key '{exc.key[:40]}' twice", example) from None
    except UnicodeDecodeError:
        raise BadRequest(400, "request body is not UTF-8", "encode the JSON body as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"request body is not valid JSON ({exc.msg} at position {exc.pos})", example) from None
    except ValueError:  # valid JSON Python will not read: an integer of more than 4,300 digits
        raise BadRequest(400, "request body holds a number too long to read", example) from None
    except RecursionError:  # '[[[[...' within the size limit: json gives up before the stack does
        raise BadRequest(400, "request body is nested too deeply to be a request", example) from None
    if not isinstance(data, dict):
        raise BadRequest(422, f"request body is a JSON {_json_type(data)}, not an object", example)
    unknown = sorted(set(data) - {"text", "texts"})
    if unknown:
        raise BadRequest(422, f"unknown key '{unknown[0][:40]}'", example)
    if ("text" in data) == ("texts" in data):
        raise BadRequest(422, "the body needs exactly one of 'text' and 'texts'", example)
    if "text" in data:
        texts = [data["text"]]
        names = ["'text'"]
    else:
        texts = data["texts"]
        if not isinstance(texts, list):
            raise BadRequest(422, f"'texts' is a JSON {_json_type(texts)}, not a list of strings", example)
        if not texts:
            raise BadRequest(422, "'texts' is empty", "send at least one text")
        if len(texts) > limits.max_texts:
            raise BadRequest(413, f"{len(texts)} texts in one request, the limit is {limits.max_texts}", "split the batch")
        names = [f"texts[{i}]" for i in range(len(texts))]
    for name, text in zip(names, texts):
        if not isinstance(text, str):
            raise BadRequest(422, f"{name} is a JSON {_json_type(text)}, not a string", example)
        if not text.strip():
            raise BadRequest(422, f"{name} is empty", "drop empty texts before sending")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # '\ud800' escapes: valid JSON, but no text, and the tokenizer cannot take it
                raise BadRequest(422, f"{name} holds an unpaired surrogate escape (e.g. \\ud800), not text",
                                 "send the character itself, or a valid surrogate pair") from None
        if not has_visible(text):
            raise BadRequest(422, f"{name} has no visible character (only control, format, space, mark or blank characters)",
                             "drop texts with nothing to read before sending")
        if len(text) > limits.max_text_chars:
            raise BadRequest(413, f"{name} has {len(text)} characters, the limit is {limits.max_text_chars}", "shorten the text")
    return texts


def _json_type(value) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object",
            type(None): "null"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class ServerPlan:
    """What ``calibgate serve`` will run: the app and the models behind it (for the start-up line)."""

    app: object
    primary: str
    shadow: str | None
    canary: str | None
    share: float
    log: str | None


def build_server(
    ref: str,
    *,
    shadow: str | None = None,
    canary: str | None = None,
    share: float = 0.0,
    log: str | None = None,
    policy: str | None = None,
    precision: str = "fp32",
    limits: ServeLimits = ServeLimits(),
    repo: str | None = None,
) -> ServerPlan:
    """Load and verify every model (``name@vX.Y.Z`` from the registry, or a run directory), then build the app.

    Bad options fail here, before a port is opened. ``policy`` (default:
    calibgate.yaml's, when there is one) decides whether the log keeps raw
    texts (``monitor.log_text``) or only their sha256.
    """
    from calibgate.errors import ConfigError
    from calibgate.serving.models import load_served
    from calibgate.settings import check_threads

    Router(share=share, has_canary=canary is not None)  # ConfigError on a bad share before loading anything
    if canary is not None and share == 0.0:
        raise ConfigError("--canary without --share routes nothing to it", fix="pass --share, e.g. --share 0.1")
    for name, value in (("max_body_bytes", limits.max_body_bytes), ("max_texts", limits.max_texts),
                        ("max_batch", limits.max_batch), ("workers", limits.workers), ("max_connections", limits.max_connections)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}", fix="pass a positive number")
    if not 0 < limits.request_timeout <= 3600:
        raise ConfigError(f"request_timeout must be in (0, 3600] seconds, got {limits.request_timeout}", fix="pass e.g. 30")
    if limits.shadow_backlog < 0:
        raise ConfigError(f"shadow_backlog must be >= 0, got {limits.shadow_backlog}", fix="pass 0 or more")
    check_threads(limits.workers)
    for option, other in (("--canary", canary), ("--shadow", shadow)):
        if other is not None and str(other) == str(ref):
            raise ConfigError(f"{option} {other} is the version already served", fix=f"pass {option} the version to try")
    log_text = _log_text(policy, repo)
    predictions = PredictionLog(log, log_text=log_text)  # a log that cannot be a file fails before minutes of loading
    primary = load_served(ref, repo=repo, precision=precision)
    shadow_model = load_served(shadow, repo=repo, precision=precision) if shadow else None
    canary_model = load_served(canary, repo=repo, precision=precision) if canary else None
    # the same run by another path, another registered name, or a copy of its directory: compared by run, not by name
    for option, other in (("--canary", canary_model), ("--shadow", shadow_model)):
        if other is not None and (other.ref == primary.ref or other.run_id == primary.run_id):
            raise ConfigError(f"{option} {other.ref} is the model already served ({primary.ref}: the same run "
                              f"{primary.run_id})", fix=f"pass {option} the version to try")
    if shadow_model is not None and canary_model is not None and shadow_model.run_id == canary_model.run_id:
        raise ConfigError(f"--shadow {shadow_model.ref} and --canary {canary_model.ref} are the same run {shadow_model.run_id}",
                          fix="try one version at a time, or two different ones")
    predictions.open()  # created only now: a version that failed to load leaves no log (nor its directories) behind
    app = create_app(primary, shadow=shadow_model, canary=canary_model, share=share, limits=limits, log=predictions)
    return ServerPlan(app=app, primary=primary.ref, shadow=shadow_model.ref if shadow_model else None,
                      canary=canary_model.ref if canary_model else None, share=share, log=log)


def _log_text(policy: str | None, repo: str | None) -> bool:
    from calibgate.policy.loader import load_policy

    if policy is None:
        from calibgate.settings import find_config, load_config

        found = find_config(Path(repo) if repo else None)
        config = load_config(found) if found else None
        path = config.path(config.policy) if config else None
        if path is None or not path.exists():
            return False
        policy = path
    loaded = load_policy(policy)
    return bool(loaded.monitor and loaded.monitor.log_text)


def listen(host: str, port: int):
    """A socket bound to ``host:port`` and listening, or a ConfigError naming the address (bad host, port in use).

    Bound before the models load, so a busy port fails in a second, not after the restore; uvicorn serves on it.
    """
    import socket

    from calibgate.errors import ConfigError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise ConfigError(f"--host {host!r} is not an address this machine can listen on ({exc})",
                          fix="pass an IP address or host name of this machine, e.g. --host 127.0.0.1 or --host 0.0.0.0") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          fix="pick a free --port (another server may be using it) or an address of this machine for --host") from None
    sock.set_inheritable(True)
    return sock


def run_server(plan: ServerPlan, *, sock, limits: ServeLimits = ServeLimits()) -> int | None:
    """Serve on the bound ``sock`` (:func:`listen`) until SIGINT / SIGTERM (uvicorn; shutdown lets queued shadow work
    log its answer), with the receive deadline and connection cap of :mod:`calibgate.serving.protocol`. SIGHUP
    reopens the prediction log (log rotation) instead of killing the server. Returns the signal that stopped it."""
    import signal

    uvicorn = require("uvicorn")
    from calibgate.serving.protocol import guarded_protocol

    protocol = guarded_protocol(request_timeout=limits.request_timeout, max_connections=limits.max_connections,
                                on_refused=plan.app.state.count_refused)
    config = uvicorn.Config(plan.app, log_level="warning", access_log=False, lifespan="on", http=protocol)
    stops: list[int] = []
    # uvicorn catches SIGINT/SIGTERM while it serves, and re-raises them into the handlers it found once it has shut
    # down: these only note them, so a second signal during the shutdown cannot interrupt its end (it gave 143)
    previous = {sig: signal.signal(sig, lambda number, frame: stops.append(number)) for sig in (signal.SIGINT, signal.SIGTERM)}
    if hasattr(signal, "SIGHUP"):
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: plan.app.state.prediction_log.reopen())
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stops[0] if stops else None
