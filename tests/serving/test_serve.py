"""'calibgate serve' as a real process on 127.0.0.1: predictions, faults, metrics, shadow, canary, the log."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from calibgate.export.serving import predict
from calibgate.serving.router import Router, bucket

from .conftest import REPO_ROOT, TEXTS


def runs(project: Path) -> Path:
    return project.parent / "runs"


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def labels_of(run: Path, texts: list[str]) -> list[str]:
    return [r["label"] for r in predict(run, texts)]


BAD_REQUESTS = [
    (b'{"text": "my card"', 400, "not valid JSON"),
    (b"\xff\xfe not utf-8", 400, "not UTF-8"),
    (json.dumps({"text": "x" * 70_000}).encode(), 413, "limit"),
    (json.dumps({"text": "y" * 5000}).encode(), 413, "characters"),
    (json.dumps({"texts": ["ok"] * 65}).encode(), 413, "65 texts"),
    (b'{"text": ""}', 422, "'text' is empty"),
    (b'{"texts": ["fine", "   "]}', 422, "texts[1] is empty"),
    (b'{"text": 5}', 422, "'text' is a JSON number"),
    (b'{"texts": "one string"}', 422, "not a list"),
    (b'{"texts": ["a", null]}', 422, "texts[1] is a JSON null"),
    (b'{"texts": []}', 422, "'texts' is empty"),
    (b'["my card"]', 422, "not an object"),
    (b'{"text": "a", "texts": ["b"]}', 422, "exactly one"),
    (b'{"txt": "a"}', 422, "unknown key 'txt'"),
    (b'{"texts": ["ok", "\\ud800"]}', 422, "texts[1] holds an unpaired surrogate"),
    (b"", 400, "not valid JSON"),
    (b"[" * 50_000, 400, "nested too deeply"),
    (b'{"text": "a", "text": "b"}', 400, "names the key 'text' twice"),
    (json.dumps({"texts": ["ok", "\u200b\u0000 "]}).encode(), 422, "texts[1] has no visible character"),
    (b"null", 422, "a JSON null, not an object"),
    (json.dumps({"text": "\u3164\u034f\ufe0f\u2800"}).encode(), 422, "'text' has no visible character"),
]


def test_predictions_faults_and_metrics(serve, served_project):
    log = served_project / "plain.jsonl"
    server = serve("router@v1.0.0", "--log", str(log))
    status, health, _ = server.get("/healthz")
    assert status == 200 and health["primary"] == "router@v1.0.0" and health["shadow"] is None

    expected = labels_of(runs(served_project) / "a", TEXTS)
    status, one, headers = server.predict({"text": TEXTS[0]}, request_id="req-1")
    assert status == 200 and one["model"] == "router@v1.0.0" and one["request_id"] == "req-1"
    assert headers["x-request-id"] == "req-1" and one["predictions"][0]["label"] == expected[0]
    assert sum(one["predictions"][0]["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    status, batch, _ = server.predict({"texts": TEXTS})
    assert status == 200 and [p["label"] for p in batch["predictions"]] == expected

    for body, want, words in BAD_REQUESTS:
        status, answer, _ = server.predict(body)
        assert status == want, (body[:40], status, answer)
        assert isinstance(answer, dict) and words in answer["error"] and answer["fix"], answer
        # and the server keeps serving
        assert server.predict({"text": TEXTS[1]})[0] == 200
    # a chunked body declares no length: it is cut off at the limit while streaming
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/predict", body=(b"x" * 8192 for _ in range(20)), encode_chunked=True,
                 headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    assert resp.status == 413 and "exceeds the limit" in json.loads(resp.read())["error"]
    conn.close()
    assert server.predict({"text": TEXTS[1]})[0] == 200
    assert server.request("GET", "/predict")[0] == 405
    status, missing, _ = server.get("/nope")
    assert status == 404 and missing["fix"]

    status, metrics, _ = server.get("/metrics")
    assert status == 200
    assert 'calibgate_requests_total{model="router@v1.0.0",role="primary",status="200"} ' + f"{3 + len(BAD_REQUESTS)}.0" in metrics
    unprocessable = sum(1 for _, want, _ in BAD_REQUESTS if want == 422)
    assert f'calibgate_requests_total{{model="router@v1.0.0",role="primary",status="422"}} {unprocessable}.0' in metrics
    assert f'calibgate_errors_total{{kind="bad_request"}} {len(BAD_REQUESTS) + 1}.0' in metrics
    assert "calibgate_request_latency_seconds_bucket" in metrics
    counts = Counter(expected + [expected[0]] + [expected[1]] * (len(BAD_REQUESTS) + 1))
    for label, n in counts.items():
        assert f'calibgate_predictions_total{{label="{label}",model="router@v1.0.0",role="primary"}} {n}.0' in metrics

    server.stop()
    rows = read_log(log)
    assert [r["status"] for r in rows if r["status"] != 200] == [want for _, want, _ in BAD_REQUESTS] + [413]
    first = rows[0]
    assert first["request_id"] == "req-1" and first["items"][0]["label"] == expected[0] and first["latency_ms"] > 0
    assert first["items"][0]["text"] == TEXTS[0]  # the project policy says monitor.log_text: true


def test_shadow_logs_both_answers_and_returns_the_primary(serve, served_project):
    log = served_project / "shadow.jsonl"
    server = serve("router@v1.0.0", "--shadow", "router@v1.1.0", "--log", str(log))
    primary = labels_of(runs(served_project) / "a", TEXTS)
    shadow = labels_of(runs(served_project) / "b", TEXTS)
    assert primary != shadow, "the fixture's two versions must disagree somewhere"
    for i, text in enumerate(TEXTS):
        status, answer, headers = server.predict({"text": text}, request_id=f"s-{i}")
        assert status == 200 and answer["model"] == "router@v1.0.0" and headers["x-served-by"] == "router@v1.0.0"
        assert answer["predictions"][0]["label"] == primary[i]
    server.stop()  # graceful: shadow work still queued is logged before exit

    rows = read_log(log)
    by_role = {(r["request_id"], r["role"]): r for r in rows}
    for i in range(len(TEXTS)):
        assert by_role[(f"s-{i}", "primary")]["items"][0]["label"] == primary[i]
        assert by_role[(f"s-{i}", "shadow")]["items"][0]["label"] == shadow[i]
        assert by_role[(f"s-{i}", "shadow")]["model"] == "router@v1.1.0"


def test_a_full_shadow_backlog_skips_the_shadow_not_the_answer(serve, served_project):
    log = served_project / "skipped.jsonl"
    server = serve("router@v1.0.0", "--shadow", "router@v1.1.0", "--shadow-backlog", "0", "--log", str(log))
    for i in range(3):
        status, answer, _ = server.predict({"text": TEXTS[i]}, request_id=f"k-{i}")
        assert status == 200 and answer["model"] == "router@v1.0.0"
    assert 'calibgate_errors_total{kind="shadow_skipped"} 3.0' in server.get("/metrics")[1]
    server.stop()
    shadows = [r for r in read_log(log) if r["role"] == "shadow"]
    assert [(r["request_id"], r["status"]) for r in shadows] == [(f"k-{i}", 503) for i in range(3)]
    from calibgate.serving.monitor import monitor

    report = monitor(log)
    assert report.shadow.skipped == 3 and report.shadow.requests == 0 and report.shadow.agreement is None


def test_canary_share_is_a_deterministic_hash_of_the_request_id(serve, served_project):
    ids = [f"user-{i}" for i in range(20_000)]
    router = Router(share=0.1, has_canary=True)
    routes = [router.route(i) for i in ids]
    assert abs(routes.count("canary") / len(ids) - 0.1) < 0.01
    assert routes == [router.route(i) for i in ids]  # same id, same model, every time
    assert all((r == "canary") == (bucket(i) < 0.1) for i, r in zip(ids, routes))
    assert Router(share=0.0, has_canary=True).route("x") == "primary" and Router(share=1.0, has_canary=True).route("x") == "canary"

    log = served_project / "canary.jsonl"
    server = serve("router@v1.0.0", "--canary", "router@v1.1.0", "--share", "0.3", "--log", str(log))
    wide = Router(share=0.3, has_canary=True)
    want = {"primary": "router@v1.0.0", "canary": "router@v1.1.0"}
    b_labels = labels_of(runs(served_project) / "b", TEXTS[:1])
    for i in range(40):
        rid = f"c-{i}"
        status, answer, _ = server.predict({"text": TEXTS[0]}, request_id=rid)
        assert status == 200 and answer["role"] == wide.route(rid) and answer["model"] == want[wide.route(rid)]
        if answer["role"] == "canary":
            assert answer["predictions"][0]["label"] == b_labels[0]
    assert {server.predict({"text": "again"}, request_id="c-7")[1]["model"] for _ in range(3)} == {want[wide.route("c-7")]}
    server.stop()
    roles = Counter(r["role"] for r in read_log(log))
    assert roles["canary"] == sum(wide.route(f"c-{i}") == "canary" for i in range(40)) + 3 * (wide.route("c-7") == "canary")


def _serve_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "calibgate", "serve", *args, "--port", "1"], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_serve_refuses_bad_options_and_tampered_versions(served_project, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(served_project, copy)
    for args, words in [(("router@v9.0.0",), "not registered"), (("router@v1.0.0", "--share", "0.2"), "without a canary"),
                        (("router@v1.0.0", "--canary", "router@v1.1.0"), "--share"), (("nothing-here",), "neither"),
                        (("router@v1.0.0", "--canary", "router@v1.0.0", "--share", "0.1"), "already served"),
                        # the same run by its directory and by its registered name: one model in two roles
                        ((str(served_project.parent / "runs" / "a"), "--shadow", "router@v1.0.0"), "the same run a"),
                        (("router@v1.0.0", "--log", "/dev/full"), "is a device")]:
        out = _serve_cli(copy, *args)
        assert out.returncode == 2 and words in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    out = _serve_cli(copy, "router@v1.0.0", "--precision", "int8")  # exported without --quantize int8
    assert out.returncode == 2 and "no int8 model" in out.stderr, out.stderr
    assert "calibgate-serve-" not in out.stderr and "--quantize int8" in out.stderr, out.stderr  # not the deleted restore
    from calibgate.registry.api import show_version

    record = show_version("router@v1.0.0", repo=copy).record
    digest = record.artifacts.files["export/model.onnx"]
    obj = copy / "store" / "files" / "sha256" / digest[:2] / digest[2:]
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes()[:-10] + b"0123456789")
    out = _serve_cli(copy, "router@v1.0.0")
    assert out.returncode == 2 and "sha256" in out.stderr and "tampered" in out.stderr, out.stderr


def _raw(server, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send raw bytes on one connection and read until the server closes it (or ``wait`` passes)."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):  # a refused connection is reset, not answered
            pass
    return out


def test_slow_clients_time_out_and_framing_errors_are_json(serve, served_project):
    """Before: a client that sent half a request held its connection for ever (enough of them exhausted the
    descriptors); a bad Content-Length got uvicorn's plain-text 400; '/predict/' was a 307 to the client's Host."""
    import socket
    import time

    server = serve("router@v1.0.0", "--request-timeout", "1", "--max-connections", "3")
    started = time.monotonic()
    half = _raw(server, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"text\"", wait=10)
    assert half.startswith(b"HTTP/1.1 408") and b'"fix"' in half and time.monotonic() - started < 8, half
    head = _raw(server, b"POST /predict HTTP/1.1\r\nHost: x\r\n", wait=10)  # headers never finished
    assert head.startswith(b"HTTP/1.1 408"), head
    framing = _raw(server, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    assert framing.startswith(b"HTTP/1.1 400") and b"application/json" in framing and b'"fix"' in framing, framing
    status, answer, headers = server.request("POST", "/predict/", b'{"text": "card"}', {"Content-Type": "application/json"})
    assert status == 404 and "location" not in {k.lower() for k in headers}, (status, headers)

    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:  # the cap: a fourth connection is closed on arrival; the idle ones are cut at the deadline
        assert _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", wait=5) == b""
        time.sleep(1.5)
        assert server.get("/healthz")[0] == 200  # the slow ones are gone, the server answers again
    finally:
        for sock in idle:
            sock.close()
    _, metrics, _ = server.get("/metrics")
    refused = {kind: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               for kind in ("request_timeout", "too_many_connections", "bad_http") if f'kind="{kind}"' in line}
    assert refused["request_timeout"] >= 2 and refused["too_many_connections"] >= 1 and refused["bad_http"] >= 1, refused
    # the half-sent body is one error, its timeout: it was also counted a bad request (noted by helper-30)
    assert 'calibgate_errors_total{kind="bad_request"}' not in metrics, metrics


def test_the_log_survives_rotation_and_stop_is_exit_0(serve, served_project):
    """Before: after logrotate's rename (or an rm) predictions went to the old file, silently; SIGHUP killed the
    server (exit 129) and SIGTERM, its normal stop, was exit 143 with an error line."""
    import signal
    import time

    log = served_project / "rotated.jsonl"
    server = serve("router@v1.0.0", "--log", str(log))
    assert server.predict({"text": TEXTS[0]})[0] == 200
    log.rename(log.with_suffix(".1"))
    assert server.predict({"text": TEXTS[1]})[0] == 200  # written to a new file at the path
    server.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert server.proc.poll() is None and server.predict({"text": TEXTS[2]})[0] == 200
    log.unlink()
    assert server.predict({"text": TEXTS[3]})[0] == 200
    assert [len(read_log(p)) for p in (log.with_suffix(".1"), log)] == [1, 1]
    server.proc.send_signal(signal.SIGTERM)
    server.proc.send_signal(signal.SIGTERM)  # an impatient second one must not turn the clean stop into 143
    assert server.proc.wait(timeout=60) == 0
    assert "stopped by SIGTERM" in server.proc.stderr.read()


def test_shadow_lines_pair_with_their_answer_not_a_reused_request_id(serve, served_project):
    """Before: monitor paired each shadow line with the last answer that had its request id; clients that reuse ids
    (the README's sticky routing) got another text's answer compared, and a real 0.91 agreement read 0.95."""
    from calibgate.serving.monitor import monitor

    log = served_project / "reused.jsonl"
    server = serve("router@v1.0.0", "--shadow", "router@v1.1.0", "--log", str(log))
    for text in TEXTS:
        assert server.predict({"text": text}, request_id="same-client")[0] == 200
    server.stop()
    lines = read_log(log)
    answers = {line["line_id"]: line for line in lines if line["role"] == "primary"}
    shadows = [line for line in lines if line["role"] == "shadow"]
    assert len(answers) == len(shadows) == len(TEXTS)
    assert all(answers[s["shadow_of"]]["items"][0]["text_sha256"] == s["items"][0]["text_sha256"] for s in shadows)
    served = labels_of(runs(served_project) / "a", TEXTS)
    shadow = labels_of(runs(served_project) / "b", TEXTS)
    report = monitor(log)
    assert report.shadow.requests == len(TEXTS)
    assert report.shadow.agreement == pytest.approx(sum(a == b for a, b in zip(served, shadow)) / len(TEXTS), abs=1e-6)


def test_a_model_that_does_not_load_leaves_no_log(served_project, tmp_path):
    log = tmp_path / "new" / "dir" / "p.jsonl"
    out = _serve_cli(served_project, "router@v9.0.0", "--log", str(log))
    assert out.returncode == 2 and "not registered" in out.stderr
    assert not (tmp_path / "new").exists()


def test_the_same_run_by_another_path_is_refused_as_its_own_shadow(served_project):
    """Before: only the option strings were compared, so 'runs/a' shadowed by 'runs/a/.' served one model in two
    roles, whose log monitor then refuses."""
    run = runs(served_project) / "a"
    out = _serve_cli(served_project, str(run), "--shadow", f"{run}/.")
    assert out.returncode == 2 and "the same run a" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_a_run_directory_whose_path_holds_an_at_sign_is_served_as_a_directory(served_project, tmp_path):
    """'/tmp/at@dir/run' was read as a registry reference (it holds '@') and refused as none."""
    from calibgate.serving.models import load_served

    copy = tmp_path / "at@dir" / "run"
    shutil.copytree(served_project.parent / "runs" / "a", copy)
    served = load_served(str(copy))
    assert served.run_id == "a" and served.ref == "a"
