"""Staged rollout end to end: real servers make shadow and canary logs, monitor reports are the evidence,
'registry promote' enforces the policy's order and thresholds and records the evidence; rollback stays one command."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest

from calibgate import schemas
from calibgate.export.serving import predict
from tests.conftest import invoke_in
from tests.registry.conftest import adopt_policy

from .conftest import LABELED, LABEL_NAMES, TEXTS, Server


@pytest.fixture
def project(served_project, tmp_path) -> Path:
    """A private copy of the served project (this test adds stage tags)."""
    copy = tmp_path / "project"
    shutil.copytree(served_project, copy)
    return copy


def traffic(project: Path, name: str, primary: str, *args: str) -> Path:
    """Serve ``primary`` (plus --shadow/--canary args) for one pass over TEXTS; the monitor report's path."""
    log = project / f"{name}.jsonl"
    server = Server(project, primary, *args, "--log", str(log))
    try:
        for i, text in enumerate(TEXTS):
            assert server.predict({"text": text}, request_id=f"{name}-{i}")[0] == 200
    finally:
        server.stop()
    report = project / f"{name}.json"
    out = invoke_in(project, "monitor", "--log", str(log), "--json", "-o", str(report))
    assert out.exit_code == 0, out.output
    return report


def crafted_shadow_log(project: Path, name: str, primary: str, shadow: str) -> Path:
    """A log as serve writes it, of ``primary`` answering TEXTS and ``shadow`` agreeing on each; its monitor report."""
    from calibgate.serving.predlog import LogRecord, PredictionLog, items_for, new_line_id

    log_path = project / f"{name}.jsonl"
    log_path.unlink(missing_ok=True)
    log = PredictionLog(log_path)
    log.open()
    now = time.time() + 1
    for i, text in enumerate(TEXTS):
        items = items_for([text], [(LABEL_NAMES[0], 0.9)], log_text=False)
        answer = new_line_id()
        log.write(LogRecord(line_id=answer, ts=now + i, request_id=f"{name}-{i}", role="primary", model=primary, status=200,
                            latency_ms=2.0, items=items))
        log.write(LogRecord(line_id=new_line_id(), ts=now + i, request_id=f"{name}-{i}", role="shadow", model=shadow,
                            status=200, latency_ms=2.0, items=items, shadow_of=answer))
    log.close()
    report = project / f"{name}.json"
    out = invoke_in(project, "monitor", "--log", str(log_path), "--json", "-o", str(report))
    assert out.exit_code == 0, out.output
    return report


def promote(project: Path, ref: str, stage: str, *evidence: Path, policy: str | None = None):
    args = ["registry", "promote", ref, "--stage", stage, "--approved-by", "alice"]
    for path in evidence:
        args += ["--evidence", str(path)]
    if policy:
        args += ["--policy", policy]
    return invoke_in(project, *args)


def test_promotion_follows_the_rollout_order_with_evidence(project, served_project):
    # nothing skips a stage
    out = promote(project, "router@v1.0.0", "canary")
    assert out.exit_code == 2 and "has not been in shadow" in out.output and "shadow -> canary -> production" in out.output
    out = promote(project, "router@v1.0.0", "production")
    assert out.exit_code == 2 and "has not been in canary" in out.output
    assert promote(project, "router@v1.0.0", "shadow").exit_code == 0  # the first stage needs no evidence

    # canary needs a shadow report of this version
    out = promote(project, "router@v1.0.0", "canary")
    assert out.exit_code == 2 and "needs a shadow monitor report of router@v1.0.0" in out.output
    s0 = traffic(project, "s0", "router@v1.1.0", "--shadow", "router@v1.0.0")
    assert promote(project, "router@v1.0.0", "canary", s0).exit_code == 0
    out = promote(project, "router@v1.0.0", "production", s0)
    assert out.exit_code == 2 and "needs a canary monitor report of router@v1.0.0" in out.output
    c0 = traffic(project, "c0", "router@v1.1.0", "--canary", "router@v1.0.0", "--share", "0.5")
    out = promote(project, "router@v1.0.0", "production", c0)
    assert out.exit_code == 0, out.output

    # the second version walks the same path; its shadow report is also checked as a monitor report
    assert promote(project, "router@v1.1.0", "shadow").exit_code == 0
    s1 = traffic(project, "s1", "router@v1.0.0", "--shadow", "router@v1.1.0")
    report = json.loads(s1.read_text())
    schemas.validate("monitor", report)
    (served_stats,) = report["models"]  # compared with the evaluation recorded in the registry
    assert served_stats["model"] == "router@v1.0.0" and served_stats["evaluation"]["n"] == len(LABELED)
    runs = served_project.parent / "runs"
    served = [r["label"] for r in predict(runs / "a", TEXTS)]
    shadow = [r["label"] for r in predict(runs / "b", TEXTS)]
    agree = sum(a == b for a, b in zip(served, shadow))
    assert report["shadow"]["agreement"] == pytest.approx(agree / len(TEXTS), abs=1e-6) and agree < len(TEXTS)
    assert report["shadow"]["disagreements_total"] == len(TEXTS) - agree
    first = report["shadow"]["disagreements"][0]
    i = TEXTS.index(first["text"])
    assert (first["served_label"], first["shadow_label"]) == (served[i], shadow[i])
    markdown = invoke_in(project, "monitor", "--log", str(project / "s1.jsonl"), "--markdown")
    assert markdown.exit_code == 0 and "### Shadow `router@v1.1.0`" in markdown.output and f"| `{first['request_id'][:16]}` |" in markdown.output
    table = invoke_in(project, "monitor", "--log", str(project / "s1.jsonl"))
    assert table.exit_code == 0 and "agreement" in table.output and "disagreements" in table.output

    strict = project / "policies" / "strict.yaml"
    strict.write_text((project / "policies" / "gate.yaml").read_text().replace("min_agreement: 0.0", "min_agreement: 1.0"))
    out = promote(project, "router@v1.1.0", "canary", s1, policy=str(strict))  # evidence checked under another policy
    assert out.exit_code == 2 and "was checked under policy sha256" in out.output and "strict.yaml" in out.output
    s1_strict = project / "s1-strict.json"
    out = invoke_in(project, "monitor", "--log", str(project / "s1.jsonl"), "--policy", str(strict), "--json", "-o", str(s1_strict))
    assert out.exit_code == 0, out.output
    out = promote(project, "router@v1.1.0", "canary", s1_strict, policy=str(strict))
    assert out.exit_code == 2 and "falls short: agreement" in out.output and "< 1.0" in out.output
    # a report whose checks were edited, or whose status a check's value does not earn, never promotes
    forged = project / "forged.json"
    checks = [c for c in report["checks"] if c["id"] != "error_rate"]
    assert len(checks) < len(report["checks"])
    forged.write_text(json.dumps({**report, "checks": checks}))
    out = promote(project, "router@v1.1.0", "canary", forged)
    assert out.exit_code == 2 and "does not hold the checks" in out.output, out.output
    loosened = [dict(c, threshold=1.0) if c["id"] == "error_rate" else c for c in report["checks"]]
    forged.write_text(json.dumps({**report, "checks": loosened}))
    out = promote(project, "router@v1.1.0", "canary", forged)
    assert out.exit_code == 2 and "does not hold the checks" in out.output, out.output
    # a figure edited with its check to match: only the log can tell (before: agreement 0.95 promoted a 0.13)
    edited_shadow = {**report["shadow"], "agreement": 1.0}
    forged.write_text(json.dumps({**report, "shadow": edited_shadow}))
    out = promote(project, "router@v1.1.0", "canary", forged)
    assert out.exit_code == 2 and "its shadow differ from a fresh 'calibgate monitor'" in out.output, out.output
    moved = project / "elsewhere"  # the report beside a copy of its log that gained a line: not the log it measured
    moved.mkdir()
    (moved / "s1.jsonl").write_bytes((project / "s1.jsonl").read_bytes() + (project / "s1.jsonl").read_bytes().splitlines(True)[0])
    (moved / "s1.json").write_text(json.dumps({**report, "log": str(moved / "gone" / "s1.jsonl")}))
    out = promote(project, "router@v1.1.0", "canary", moved / "s1.json")
    assert out.exit_code == 2 and "no file with that content is there or beside the report" in out.output, out.output
    passed = [dict(c, value=0.5) if c["id"] == "error_rate" else c for c in report["checks"]]  # 0.5 > 0.0 says PASS
    forged.write_text(json.dumps({**report, "checks": passed}))
    out = promote(project, "router@v1.1.0", "canary", forged)
    assert out.exit_code == 2 and "says PASS, but its value 0.5" in out.output, out.output
    stale = project / "stale.json"  # traffic from before the version entered shadow proves nothing about the stage
    from calibgate.serving.monitor import _iso

    stale.write_text(json.dumps({**report, "window": {**report["window"], "first_ts": 1_700_000_000.0, "first": _iso(1_700_000_000.0)}}))
    out = promote(project, "router@v1.1.0", "canary", stale)  # its window no longer matches its log: an edit
    assert out.exit_code == 2 and "does not hold what its log" in out.output and "its window differ" in out.output
    out = promote(project, "router@v1.1.0", "canary", s0)  # a report about another version is no evidence
    assert out.exit_code == 2 and "needs a shadow monitor report of router@v1.1.0" in out.output
    # beside its own run (served from its directory, which serve now refuses too), or beside a model that is not
    # production, the version agrees with whatever it is compared with: no evidence about replacing production
    own_run = json.loads((runs / "b" / "calibgate-run.json").read_text())["run_id"]
    for primary, needle in ((own_run, "own run as the model it is compared with"),
                            ("20260101-000000-embedding-probe-0000", "not with router@v1.0.0, which holds production")):
        crafted = crafted_shadow_log(project, "crafted", primary, "router@v1.1.0")
        out = promote(project, "router@v1.1.0", "canary", crafted)
        assert out.exit_code == 2 and needle in out.output, out.output
    assert promote(project, "router@v1.1.0", "canary", s1).exit_code == 0
    c1 = traffic(project, "c1", "router@v1.0.0", "--canary", "router@v1.1.0", "--share", "0.5")
    assert promote(project, "router@v1.1.0", "production", c1).exit_code == 0

    # the evidence is in the stage tags and 'registry show' prints it
    shown = json.loads(invoke_in(project, "registry", "show", "router@v1.1.0", "--json").output)
    events = {(e["stage"], e["version"]): e for e in shown["history"] if e["action"] == "promote"}
    canary_ev = events[("canary", "v1.1.0")]["rollout"]["evidence"][0]
    assert canary_ev["kind"] == "shadow" and canary_ev["report_sha256"] == hashlib.sha256(s1.read_bytes()).hexdigest()
    assert canary_ev["figures"]["agreement"] == report["shadow"]["agreement"]
    assert canary_ev["window"]["requests"] == len(TEXTS)
    prod_ev = events[("production", "v1.1.0")]["rollout"]["evidence"][0]
    c1_report = json.loads(c1.read_text())
    canary_stats = next(m for m in c1_report["models"] if m["role"] == "canary")
    assert prod_ev["kind"] == "canary" and prod_ev["figures"]["requests"] == canary_stats["answered"] > 0
    assert prod_ev["figures"]["error_rate"] == 0.0
    text = invoke_in(project, "registry", "show", "router@v1.1.0").output
    assert "rollout evidence" in text and hashlib.sha256(c1.read_bytes()).hexdigest()[:12] in text

    # rolling back is still one command, no evidence
    out = invoke_in(project, "registry", "rollback", "router", "--reason", "p95 doubled")
    assert out.exit_code == 0 and "rolled back router@v1.0.0 to production" in out.output


def test_evidence_without_a_rollout_section_is_refused(project):
    plain = project / "policies" / "plain.yaml"
    plain.write_text("checks:\n  accuracy_floor: {min: 0.0}\napprovals:\n  staging: {required: 0}\n  production: {required: 1}\n")
    adopt_policy(project, "policies/plain.yaml")
    report = project / "report.json"
    report.write_text("{}")
    out = promote(project, "router@v1.0.0", "staging", report, policy=str(plain))
    assert out.exit_code == 2 and "declares no rollout: section" in out.output
    # and without evidence the old behaviour holds: any declared stage, in any order
    assert promote(project, "router@v1.0.0", "production", policy=str(plain)).exit_code == 0
