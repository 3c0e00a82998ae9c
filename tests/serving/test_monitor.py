"""'calibgate monitor' on logs written by the server's own PredictionLog; the policy's rollout/monitor sections."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from calibgate import schemas
from calibgate.errors import DataError, PolicyError
from calibgate.policy.loader import load_policy
from calibgate.serving.monitor import monitor
from calibgate.serving.predlog import LogRecord, PredictionLog, items_for, new_line_id
from calibgate.policy.rollout import MonitorThresholds
from tests.conftest import invoke_in
from tests.policy.gate_records import evaluation

T0 = 1_767_225_600.0  # 2026-01-01: log lines carry real clock times (the log refuses ones before 2000)


def write_log(path: Path, *, n: int = 100, errors: int = 0, client_errors: int = 0) -> Path:
    """n answered requests of router@v1.0.0 (latency i+1 ms; a quarter card, the rest billing; every tenth at confidence 0.4), plus errors."""
    log = PredictionLog(path)
    log.open()
    for i in range(n):
        label = "billing" if i % 4 else "card"
        confidence = 0.4 if i % 10 == 0 else 0.9
        log.write(LogRecord(line_id=new_line_id(), ts=T0 + 1000.0 + i, request_id=f"r{i}", role="primary", model="router@v1.0.0", status=200,
                            latency_ms=float(i + 1), items=items_for([f"text {i}"], [(label, confidence)], log_text=False)))
    for i in range(errors):
        log.write(LogRecord(line_id=new_line_id(), ts=T0 + 2000.0 + i, request_id=f"e{i}", role="primary", model="router@v1.0.0", status=500, error="boom"))
    for i in range(client_errors):
        log.write(LogRecord(line_id=new_line_id(), ts=T0 + 3000.0 + i, request_id=f"c{i}", role="primary", model="router@v1.0.0", status=422, error="bad"))
    log.close()
    return path


def test_figures_follow_the_log(tmp_path):
    labels = np.array([0, 0, 0, 1] * 25)
    ev = evaluation(labels, labels, run_id="a")  # the evaluation predicts billing 75%, card 25%
    ev = ev.model_copy(update={"confidences": [0.95] * len(labels)})
    report = monitor(write_log(tmp_path / "p.jsonl", errors=4, client_errors=3),
                     thresholds=MonitorThresholds(max_error_rate=0.05, max_p95_ms=50, max_low_confidence_rate=0.05,
                                                  max_label_shift=0.1, max_confidence_drop=0.05),
                     evaluations={"router@v1.0.0": ev})
    schemas.validate("monitor", json.loads(report.model_dump_json()))
    (m,) = report.models
    assert (m.requests, m.answered, m.server_errors, m.client_errors) == (107, 100, 4, 3)
    assert m.error_rate == pytest.approx(4 / 104, abs=1e-6)  # client errors never reached the model
    assert m.latency.p50_ms == pytest.approx(50.5) and m.latency.p95_ms == pytest.approx(95.05)
    assert m.label_shares == {"billing": 0.75, "card": 0.25} and m.low_confidence_rate == pytest.approx(0.10, abs=1e-6)
    assert m.evaluation.label_shift == pytest.approx(0.0) and m.evaluation.label_shares == {"billing": 0.75, "card": 0.25}
    status = {c.id: c.status for c in report.checks}
    assert m.mean_confidence == pytest.approx(0.85, abs=1e-6) and m.evaluation.mean_confidence == pytest.approx(0.95)
    assert status == {"error_rate": "PASS", "p95_ms": "FAIL", "low_confidence_rate": "FAIL", "label_shift": "PASS",
                      "confidence_drop": "FAIL"}
    assert report.status == "fail" and report.window.requests == 107 and report.shadow is None


def test_a_figure_that_cannot_be_computed_fails(tmp_path):
    log = PredictionLog(tmp_path / "p.jsonl")
    log.open()
    log.write(LogRecord(line_id=new_line_id(), ts=T0 + 1.0, request_id="x", role="primary", model="m", status=500, error="boom"))
    log.close()
    report = monitor(tmp_path / "p.jsonl", thresholds=MonitorThresholds(max_p95_ms=10, max_label_shift=0.1))
    assert {c.id: c.status for c in report.checks} == {"error_rate": "FAIL", "p95_ms": "ERROR", "label_shift": "ERROR"}
    assert report.status == "fail"


def test_monitor_cli_exit_codes_and_formats(tmp_path):
    log = write_log(tmp_path / "p.jsonl")
    (tmp_path / "ok.yaml").write_text("checks:\n  accuracy_floor: {min: 0.5}\nmonitor:\n  max_error_rate: 0.0\n")
    (tmp_path / "tight.yaml").write_text("checks:\n  accuracy_floor: {min: 0.5}\nmonitor:\n  max_p95_ms: 5\n")
    ok = invoke_in(tmp_path, "monitor", "--log", str(log), "--policy", "ok.yaml", "--json")
    assert ok.exit_code == 0 and json.loads(ok.output)["status"] == "pass"
    tight = invoke_in(tmp_path, "monitor", "--log", str(log), "--policy", "tight.yaml", "--markdown")
    assert tight.exit_code == 1 and "## Monitor: FAIL" in tight.output and "| p95_ms | `router@v1.0.0` |" in tight.output
    (tmp_path / "bad.jsonl").write_text(log.read_text() + "{not json\n")
    bad = invoke_in(tmp_path, "monitor", "--log", "bad.jsonl")
    assert bad.exit_code == 2 and "bad.jsonl:101: not a prediction log record" in bad.output
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="empty"):
        monitor(tmp_path / "empty.jsonl")


@pytest.mark.parametrize("section, words", [
    ("rollout:\n  order: [shadow, shadow, production]\n", "appears twice"),
    ("rollout:\n  order: [production]\n", "at least two stages"),
    ("rollout:\n  order: [shadow, production]\n  stages:\n    canary:\n      canary: {}\n", "not in rollout.order"),
    ("rollout:\n  order: [shadow, production]\n  stages:\n    production: {}\n", "asks for no evidence"),
    ("rollout:\n  order: [shadow, production]\n  stages:\n    production:\n      shadow: {min_agreement: 1.5}\n", "less than or equal to 1"),
    ("rollout:\n  order: [shadow, production]\n  stages:\n    production:\n      canary: {min_requests: 0}\n", "greater than or equal to 1"),
    ("rollout:\n  order: [shadow, production]\n  stages:\n    production:\n      canary: {max_eror_rate: 0.1}\n", "max_eror_rate"),
    ("monitor:\n  low_confidence: -0.1\n", "greater than or equal to 0"),
    ("monitor:\n  max_shadow_latency_ratio: 0\n", "greater than 0"),
])
def test_rollout_and_monitor_sections_are_validated(tmp_path, section, words):
    path = tmp_path / "p.yaml"
    path.write_text(section)
    with pytest.raises(PolicyError, match=words):
        load_policy(path)


def test_policies_without_the_sections_are_unchanged(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("checks:\n  accuracy_floor: {min: 0.5}\n")
    policy = load_policy(path)
    assert policy.rollout is None and policy.monitor is None


def test_a_report_monitor_cannot_have_written_is_refused(tmp_path):
    """Forgeries of rollout evidence: more requests than the log had, a window after the report, a pass over a FAIL."""
    from calibgate.records.monitor import MonitorReport

    report = json.loads(monitor(write_log(tmp_path / "p.jsonl", n=20), thresholds=MonitorThresholds(max_error_rate=0.5))
                        .model_dump_json())
    MonitorReport.model_validate(report)  # the genuine one reads
    model = report["models"][0]
    cases = {
        "more requests than lines": {**report, "models": [{**model, "requests": 5000, "answered": 5000}]},
        "requests that do not add up": {**report, "models": [{**model, "answered": model["answered"] + 7}]},
        "a window after the report": {**report, "window": {**report["window"], "last_ts": 4_000_000_000.0,
                                                           "last": "2096-10-02T07:06:40+00:00"}},
        "a window time that is not its ts": {**report, "window": {**report["window"], "first": "2030-01-01T00:00:00+00:00"}},
        "a pass over a failing check": {**report, "checks": [{**report["checks"][0], "status": "FAIL"}]},
        "made in the future": {**report, "created_at": "2999-01-01T00:00:00+00:00"},
    }
    for name, forged in cases.items():
        with pytest.raises(ValueError):
            MonitorReport.model_validate(forged)
            pytest.fail(name)


def test_a_log_concatenated_with_itself_is_refused(tmp_path):
    log = write_log(tmp_path / "p.jsonl", n=5)
    twice = tmp_path / "twice.jsonl"
    twice.write_bytes(log.read_bytes() * 2)
    with pytest.raises(DataError, match="repeats the line 1"):
        monitor(twice)


def test_a_log_write_that_fails_is_counted_not_raised(tmp_path):
    """A full disk mid-serving: the answer still goes out, the failure is counted once per line."""
    import os

    log = PredictionLog(tmp_path / "p.jsonl")
    log.open()
    seen = []
    log.on_failure = seen.append
    os.close(log._fd)
    log.path, log._fd = Path("/dev/full"), os.open("/dev/full", os.O_WRONLY)  # a real full disk: every write is ENOSPC
    log.write(LogRecord(line_id=new_line_id(), ts=T0 + 1.0, request_id="r", role="primary", model="m@v1.0.0", status=200))
    log.write(LogRecord(line_id=new_line_id(), ts=T0 + 2.0, request_id="s", role="primary", model="m@v1.0.0", status=200))
    assert log.failures == 2 and len(seen) == 2 and all(isinstance(e, OSError) for e in seen)
    log.close()  # nothing is buffered, so nothing is left to fail at shutdown




def test_a_write_cut_short_by_a_full_disk_leaves_only_whole_lines(tmp_path):
    """Before: a full disk left half a line at the end of the log (monitor then refused the whole log), and the
    lines counted as lost were written later from the buffer, so log_error disagreed with the file. A file-size
    limit (RLIMIT_FSIZE) makes the kernel cut a write short exactly as a full disk does."""
    import subprocess
    import sys

    from tests.serving.conftest import REPO_ROOT

    path = tmp_path / "p.jsonl"
    script = f"""
import resource, signal
from pathlib import Path
from calibgate.serving.predlog import LogRecord, PredictionLog, items_for, new_line_id
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
log = PredictionLog(Path({str(path)!r}))
log.open()
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.RLIM_INFINITY))
for i in range(40):
    log.write(LogRecord(line_id=new_line_id(), ts={T0} + i, request_id=f"r{{i}}", role="primary", model="m@v1.0.0", status=200,
                        items=items_for([f"text {{i}}"], [("card", 0.9)], log_text=True)))
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
log.write(LogRecord(line_id=new_line_id(), ts={T0} + 99, request_id="after", role="primary", model="m@v1.0.0", status=200))
log.close()
print(log.failures)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr
    failures = int(out.stdout.strip())
    data = path.read_bytes()
    assert data.endswith(b"\n") and 0 < failures < 40
    ids = [json.loads(line)["request_id"] for line in data.decode().splitlines()]
    assert len(ids) == 41 - failures and ids[-1] == "after"  # every line whole; none of the lost ones came back
    assert monitor(path).window.lines == len(ids)


def test_line_separators_inside_a_logged_text_keep_the_log_readable(tmp_path):
    """Before: one request text holding U+2028 (written raw: JSON allows it) made str.splitlines() cut its line, and
    every monitor of the log refused it: any one client could block a rollout's evidence."""
    log = PredictionLog(tmp_path / "p.jsonl", log_text=True)
    log.open()
    for i, text in enumerate(["one\u2028two", "three\u2029four", "five\x85six", "plain"]):
        log.write(LogRecord(line_id=new_line_id(), ts=T0 + i, request_id=f"r{i}", role="primary", model="m@v1.0.0", status=200,
                            items=items_for([text], [("card", 0.9)], log_text=True)))
    log.close()
    assert "\u2028" in (tmp_path / "p.jsonl").read_text(encoding="utf-8")
    assert monitor(tmp_path / "p.jsonl").window.lines == 4


def _line(i: int, **over) -> dict:
    base = {"schema_version": 2, "ts": T0 + i, "request_id": f"r{i}", "line_id": f"{i:032x}", "role": "primary",
            "model": "router@v1.0.0", "status": 200, "latency_ms": 1.0,
            "items": [items_for([f"text {i}"], [("card", 0.9)], log_text=True)[0].model_dump()]}
    return {**base, **over}


@pytest.mark.parametrize("lines, words", [
    ([_line(0, role="shadow", shadow_of="f" * 32)], "no served answer"),
    ([_line(0), _line(1, model="router@v1.0.0", role="shadow", shadow_of=f"{0:032x}")], "is both the primary and the shadow"),
    ([_line(0), _line(1, model="router@v1.0.0", role="canary")], "is both the primary and the canary"),
    ([_line(0, items=[{**_line(0)["items"][0], "text": "edited"}])], "does not hash to its text_sha256"),
    ([_line(0, ts=0.0)], "greater than or equal to 946684800"),
    ([_line(0), _line(1, role="shadow", model="router@v1.1.0", shadow_of=f"{0:032x}", items=_line(0)["items"]),
      _line(2, role="shadow", model="router@v1.1.0", shadow_of=f"{0:032x}", items=_line(0)["items"])], "shadowed already"),
    ([_line(0), _line(1, role="shadow", model="router@v1.1.0", shadow_of=f"{0:032x}", items=_line(5)["items"])],
     "not those of the answer it shadowed"),
    ([_line(0, ts=T0 + 10**7)], "ahead of this machine's clock"),
    ([{k: v for k, v in _line(0).items() if k != "line_id"}], "a schema 2 line needs its line_id"),
    ([_line(0), _line(1, role="shadow", model="router@v1.1.0", items=_line(0)["items"])], "a schema 2 shadow line needs shadow_of"),
    ([_line(0, shadow_of="f" * 32)], "a primary line names shadow_of"),
])
def test_a_log_serve_could_not_have_written_is_refused(tmp_path, lines, words):
    """Before: these passed (exit 0) or were exit 3 with a pydantic trace; each is one line, exit 2."""
    import time

    if "clock" in words:
        lines = [_line(0, ts=time.time() + 3600)]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(DataError, match=words):
        monitor(path)


def test_a_key_named_twice_and_a_label_the_model_lacks_are_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(_line(0))[:-1] + ', "status": 500}\n', encoding="utf-8")
    with pytest.raises(DataError, match="names the key 'status' twice"):
        monitor(path)
    path.write_text(json.dumps(_line(0, items=[{**_line(0)["items"][0], "label": "nonsense"}])) + "\n", encoding="utf-8")
    labels = np.array([0, 1] * 5)
    with pytest.raises(DataError, match="predicting 'nonsense', a label it does not have"):
        monitor(path, evaluations={"router@v1.0.0": evaluation(labels, labels, run_id="a")})


def test_a_schema_1_log_with_reused_request_ids_cannot_pair_its_shadow(tmp_path):
    old = [{k: v for k, v in _line(i, request_id="same", schema_version=1).items() if k != "line_id"} for i in range(2)]
    old.append({k: v for k, v in _line(2, request_id="same", role="shadow", model="router@v1.1.0", schema_version=1).items()
                if k != "line_id"})
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in old), encoding="utf-8")
    with pytest.raises(DataError, match="answered 2 times"):
        monitor(path)


def test_a_fifo_put_at_the_log_path_is_a_log_error_not_a_frozen_server(tmp_path):
    """Before: the reopen after a rotation opened a FIFO at the path without O_NONBLOCK, in the event loop: every
    client and the signal handlers waited for a reader."""
    import os
    import threading

    path = tmp_path / "p.jsonl"
    log = PredictionLog(path)
    log.open()
    seen = []
    log.on_failure = seen.append
    path.rename(tmp_path / "p.1.jsonl")
    os.mkfifo(path)
    writer = threading.Thread(target=log.write, args=(LogRecord(line_id=new_line_id(), ts=T0, request_id="r", role="primary",
                                                                 model="m@v1.0.0", status=200),), daemon=True)
    writer.start()
    writer.join(timeout=10)
    assert not writer.is_alive() and log.failures == 1 and len(seen) == 1
    log.close()


def test_a_schema_1_shadow_line_never_pairs_with_a_schema_2_answer(tmp_path):
    """Before: a schema-1 shadow line was paired by request id with a schema-2 answer that had its own shadow, so one
    answer counted twice (13 shadow requests for 12 answers) and the agreement moved."""
    answer = _line(0, request_id="same")
    shadow = _line(1, request_id="same", role="shadow", model="router@v1.1.0", shadow_of=answer["line_id"], items=answer["items"])
    old = {k: v for k, v in _line(2, request_id="same", role="shadow", model="router@v1.1.0", schema_version=1,
                                  items=[{**answer["items"][0], "label": "other"}]).items() if k != "line_id"}
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in (answer, shadow, old)), encoding="utf-8")
    report = monitor(path)
    assert report.shadow.requests == 1 and report.shadow.agreement == 1.0


def test_a_served_text_or_label_cannot_break_the_monitor_views(tmp_path):
    """Served texts are whoever sent them: '[/x]' crashed the terminal view (rich markup), and in markdown a text could
    close a table or open an HTML comment that hides the rest of a PR comment."""
    hostile = "[/x] </details><!-- @octocat | [link](https://evil.example)"
    primary = items_for([hostile], [("[/card]", 0.9)], log_text=True)[0].model_dump()
    shadow = items_for([hostile], [("bill|ing", 0.6)], log_text=True)[0].model_dump()
    lines = [_line(0, items=[primary]),
             _line(1, role="shadow", model="router@v1.1.0", shadow_of=f"{0:032x}", items=[shadow])]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    shown = invoke_in(tmp_path, "monitor", "--log", "p.jsonl")
    assert shown.exit_code in (0, 1) and "internal error" not in shown.output, shown.output
    assert "[/x]" in shown.output and "[/card]" in shown.output
    markdown = invoke_in(tmp_path, "monitor", "--log", "p.jsonl", "--markdown").output
    outside_code = re.sub(r"`[^`\n]*`", "", markdown)
    assert "<!--" not in outside_code and "</details>" not in outside_code and "@octocat" not in outside_code
    assert all(row.count(" | ") == 3 for row in markdown.splitlines() if row.startswith("| `") and "evil" in row)


def test_an_evaluation_of_another_run_is_refused(tmp_path):
    """--evaluation was attached to the primary unchecked: label shift and confidence drop measured against another
    model's evaluation, exit 0."""
    log = PredictionLog(tmp_path / "p.jsonl")
    log.open()
    for i in range(20):
        log.write(LogRecord(line_id=new_line_id(), ts=T0 + i, request_id=f"r{i}", role="primary", model="run-a", status=200,
                            latency_ms=1.0, items=items_for([f"text {i}"], [("billing" if i % 4 else "card", 0.9)], log_text=False)))
    log.close()
    labels = np.array([0, 0, 0, 1] * 5)
    (tmp_path / "b.json").write_text(evaluation(labels, labels, run_id="run-b").model_dump_json())
    out = invoke_in(tmp_path, "monitor", "--log", "p.jsonl", "--evaluation", "b.json", "--json")
    assert out.exit_code == 2 and "is the evaluation of run run-b, but the log's primary model run-a is run run-a" in out.output
    (tmp_path / "a.json").write_text(evaluation(labels, labels, run_id="run-a").model_dump_json())
    out = invoke_in(tmp_path, "monitor", "--log", "p.jsonl", "--evaluation", "a.json", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["models"][0]["evaluation"]["n"] == len(labels)
