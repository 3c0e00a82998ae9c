"""``calibgate monitor``: a prediction log -> latency, errors, label shares, confidence and shadow agreement.

Per served model (role ``primary`` or ``canary``): requests, server errors
(5xx) and client errors (4xx) with the server-error rate, p50/p95/p99 of the
model latency of answered requests, predicted-label shares and mean
confidence next to the same figures on the version's evaluation (total
variation distance between the two label distributions), and the share of
predictions below the policy's ``low_confidence``. For a shadow log: the share
of texts where the shadow and the served model agree, the disagreeing
examples, and shadow p95 / served p95 over the same requests.

Each threshold in the policy's ``monitor:`` section becomes a check with its
value, threshold and status; a figure that cannot be computed (no answered
requests) is ERROR, which fails like FAIL. The report (a pydantic record,
schema ``calibgate/schemas/monitor.schema.json``) is also the evidence
``registry promote`` reads for a rollout stage.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from calibgate.errors import DataError
from calibgate.paths import decode_utf8, special_file
from calibgate.policy.rollout import MonitorThresholds
from calibgate.records.monitor import (
    MAX_DISAGREEMENTS,
    Disagreement,
    Latency,
    ModelStats,
    MonitorCheck,
    MonitorReport,
    Reference,
    ShadowStats,
    Window,
)
from calibgate.runs.parsing import first_problem
from calibgate.serving.predlog import LogRecord

def read_log(path: str | Path) -> tuple[list[LogRecord], bytes]:
    """Every record of a prediction log and its bytes; :class:`DataError` names the first bad line."""
    path = Path(path)
    if kind := special_file(path):
        raise DataError(f"{path} is {kind}, not a prediction log", fix="pass the file 'calibgate serve --log' writes")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})", fix="pass the file 'calibgate serve --log' writes") from None
    fix = "pass the JSONL file 'calibgate serve --log' writes"
    text = decode_utf8(data, source=str(path), fix=fix)
    records = []
    seen: dict[tuple, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = LogRecord.model_validate(json.loads(line))
        except (ValueError, RecursionError) as exc:
            problem = first_problem(exc) if isinstance(exc, ValidationError) else f"not JSON: {str(exc).splitlines()[0][:80]}"
            raise DataError(f"{path}:{number}: not a prediction log record ({problem})", fix=fix) from None
        # the server writes one line per answer: the same answer twice is a log copied into itself, which would
        # count its requests twice (and meet a rollout's min_requests); a client's retry has its own arrival time
        key = (record.request_id, record.role, record.model, record.ts)
        if key in seen:
            raise DataError(f"{path}:{number}: repeats the answer on line {seen[key]} (request {record.request_id[:40]}, "
                            f"{record.role}): a log concatenated with itself?", fix="monitor each served log once, unmerged")
        seen[key] = number
        records.append(record)
    if not records:
        raise DataError(f"{path}: the prediction log is empty", fix="serve some traffic with 'calibgate serve --log' first")
    return records, data


def monitor(
    log: str | Path,
    *,
    thresholds: MonitorThresholds | None = None,
    evaluations: dict | None = None,
    policy_source: str | None = None,
    policy_sha256: str | None = None,
) -> MonitorReport:
    """Measure a prediction log; ``evaluations``: model ref -> :class:`EvaluationResult` to compare against."""
    thresholds = thresholds or MonitorThresholds()
    records, data = read_log(log)
    served = [r for r in records if r.role != "shadow"]
    models = [_model_stats(ref, role, group, thresholds.low_confidence, (evaluations or {}).get(ref))
              for (ref, role), group in _groups(served).items()]
    shadow = _shadow_stats(records) if any(r.role == "shadow" for r in records) else None
    ts = [r.ts for r in records]
    window = Window(first_ts=min(ts), last_ts=max(ts), first=_iso(min(ts)), last=_iso(max(ts)),
                    requests=len({r.request_id for r in served}), lines=len(records))
    checks = _checks(models, shadow, thresholds)
    status = "fail" if any(c.status != "PASS" for c in checks) else "pass"
    return MonitorReport(
        log=str(log), log_sha256=hashlib.sha256(data).hexdigest(), created_at=_iso(datetime.now(timezone.utc).timestamp()),
        policy=policy_source, policy_sha256=policy_sha256, window=window, low_confidence=thresholds.low_confidence,
        models=models, shadow=shadow, checks=checks, status=status,
    )


def _groups(records: list[LogRecord]) -> dict[tuple[str, str], list[LogRecord]]:
    groups: dict[tuple[str, str], list[LogRecord]] = defaultdict(list)
    for r in records:
        groups[(r.model, r.role)].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][1] != "primary", kv[0])))


def _percentiles(values: list[float]) -> Latency | None:
    if not values:
        return None
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
    return Latency(p50_ms=round(float(p50), 3), p95_ms=round(float(p95), 3), p99_ms=round(float(p99), 3))


def _shares(labels: list[str]) -> dict[str, float]:
    counts = Counter(labels)
    total = sum(counts.values())
    return {k: round(v / total, 6) for k, v in sorted(counts.items())} if total else {}


def _model_stats(ref: str, role: str, group: list[LogRecord], low: float, evaluation) -> ModelStats:
    answered = [r for r in group if r.status == 200]
    server = sum(1 for r in group if r.status >= 500)
    client = sum(1 for r in group if 400 <= r.status < 500)
    reached = len(answered) + server
    items = [i for r in answered for i in r.items]
    confidences = [i.confidence for i in items]
    shares = _shares([i.label for i in items])
    reference = None
    if evaluation is not None and items:
        eval_labels = [evaluation.label_names[p] for p in evaluation.predictions]
        eval_shares = _shares(eval_labels)
        shift = 0.5 * sum(abs(shares.get(k, 0.0) - eval_shares.get(k, 0.0)) for k in set(shares) | set(eval_shares))
        conf = evaluation.confidences
        reference = Reference(source=f"{evaluation.test.source} (run {evaluation.run_id})", n=len(eval_labels), label_shares=eval_shares,
                              mean_confidence=round(float(np.mean(conf)), 6) if conf else None, label_shift=round(shift, 6))
    return ModelStats(
        model=ref, role=role, requests=len(group), answered=len(answered), server_errors=server, client_errors=client,
        error_rate=round(server / reached, 6) if reached else None,
        latency=_percentiles([r.latency_ms for r in answered if r.latency_ms is not None]),
        predictions=len(items), label_shares=shares,
        mean_confidence=round(float(np.mean(confidences)), 6) if confidences else None,
        low_confidence_rate=round(sum(c < low for c in confidences) / len(confidences), 6) if confidences else None,
        evaluation=reference,
    )


def _shadow_stats(records: list[LogRecord]) -> ShadowStats:
    answers = {r.request_id: r for r in records if r.role != "shadow" and r.status == 200}
    shadows = [r for r in records if r.role == "shadow"]
    refs = sorted({r.model for r in shadows})
    if len(refs) > 1:
        raise DataError(f"the log has {len(refs)} shadow models ({', '.join(refs)})", fix="monitor one shadow run per log")
    paired = [(answers[s.request_id], s) for s in shadows if s.status == 200 and s.request_id in answers]
    texts = agree = 0
    disagreements = []
    for served, shadow in paired:
        for a, b in zip(served.items, shadow.items):
            texts += 1
            if a.label == b.label:
                agree += 1
            else:
                disagreements.append(Disagreement(
                    request_id=served.request_id, text_sha256=a.text_sha256, text=a.text, served_model=served.model,
                    served_label=a.label, served_confidence=a.confidence, shadow_label=b.label, shadow_confidence=b.confidence))
    disagreements.sort(key=lambda d: (min(d.served_confidence, d.shadow_confidence), d.request_id))
    served_p95 = _percentiles([s.latency_ms for s, _ in paired if s.latency_ms is not None])
    shadow_p95 = _percentiles([h.latency_ms for _, h in paired if h.latency_ms is not None])
    ratio = None
    if served_p95 and shadow_p95 and served_p95.p95_ms > 0:
        ratio = round(shadow_p95.p95_ms / served_p95.p95_ms, 6)
    return ShadowStats(
        model=refs[0], requests=len(paired), skipped=sum(1 for s in shadows if s.status == 503),
        errors=sum(1 for s in shadows if s.status >= 500 and s.status != 503), texts=texts,
        agreement=round(agree / texts, 6) if texts else None,
        served_p95_ms=served_p95.p95_ms if served_p95 else None, shadow_p95_ms=shadow_p95.p95_ms if shadow_p95 else None,
        latency_ratio=ratio, disagreements=disagreements[:MAX_DISAGREEMENTS], disagreements_total=len(disagreements),
    )


def _check(id_: str, subject: str, value: float | None, threshold: float, direction: str) -> MonitorCheck:
    if value is None:
        status = "ERROR"
    elif direction == "max":
        status = "PASS" if value <= threshold else "FAIL"
    else:
        status = "PASS" if value >= threshold else "FAIL"
    return MonitorCheck(id=id_, subject=subject, value=value, threshold=threshold, direction=direction, status=status)


def _checks(models: list[ModelStats], shadow: ShadowStats | None, t: MonitorThresholds) -> list[MonitorCheck]:
    out = []
    for m in models:
        if t.max_error_rate is not None:
            out.append(_check("error_rate", m.model, m.error_rate, t.max_error_rate, "max"))
        if t.max_p95_ms is not None:
            out.append(_check("p95_ms", m.model, m.latency.p95_ms if m.latency else None, t.max_p95_ms, "max"))
        if t.max_low_confidence_rate is not None:
            out.append(_check("low_confidence_rate", m.model, m.low_confidence_rate, t.max_low_confidence_rate, "max"))
        if t.max_label_shift is not None:
            out.append(_check("label_shift", m.model, m.evaluation.label_shift if m.evaluation else None, t.max_label_shift, "max"))
        if t.max_confidence_drop is not None:
            drop = None
            if m.evaluation is not None and m.evaluation.mean_confidence is not None and m.mean_confidence is not None:
                drop = round(m.evaluation.mean_confidence - m.mean_confidence, 6)
            out.append(_check("confidence_drop", m.model, drop, t.max_confidence_drop, "max"))
    if shadow is not None:
        if t.min_shadow_agreement is not None:
            out.append(_check("shadow_agreement", shadow.model, shadow.agreement, t.min_shadow_agreement, "min"))
        if t.max_shadow_latency_ratio is not None:
            out.append(_check("shadow_latency_ratio", shadow.model, shadow.latency_ratio, t.max_shadow_latency_ratio, "max"))
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def monitor_log(
    log: str | Path, *, policy: str | Path | None = None, evaluation: str | Path | None = None, repo: str | Path | None = None,
) -> MonitorReport:
    """:func:`monitor` with the policy's ``monitor:`` thresholds and each served version's evaluation.

    ``evaluation``: an ``evaluation.json`` for the primary model; otherwise
    every ``name@vX.Y.Z`` in the log is looked up in the registry (its
    evidence commit's evaluation) when ``repo`` is a registry.
    """
    from calibgate.records.evaluation import EvaluationResult

    loaded = None
    if policy is not None:
        from calibgate.policy.loader import load_policy

        loaded = load_policy(policy)
    records, _ = read_log(log)
    evaluations = {}
    if evaluation is not None:
        primary = next((r.model for r in records if r.role == "primary"), None)
        from calibgate.runs import read_record

        evaluations[primary] = read_record(evaluation, EvaluationResult, what="evaluation record",
                                           fix="pass the evaluation.json 'calibgate evaluate' writes")
    for ref in sorted({r.model for r in records if r.role != "shadow" and "@" in r.model} - set(evaluations)):
        found = _registry_evaluation(ref, repo)
        if found is not None:
            evaluations[ref] = found
    return monitor(log, thresholds=loaded.monitor if loaded else None, evaluations=evaluations,
                   policy_source=loaded.source if loaded else None, policy_sha256=loaded.sha256 if loaded else None)


def _registry_evaluation(ref: str, repo):
    """The evaluation recorded with ``ref`` in the registry, or None (no registry here, not registered)."""
    from calibgate.errors import RegistryError
    from calibgate.records.evaluation import EvaluationResult
    from calibgate.registry.common import model_state, open_repo, resolve_ref
    from calibgate.registry.records import evidence_path
    from calibgate.runs import EVALUATION, parse_record

    try:
        git = open_repo(repo)
        name, version = resolve_ref(ref, None, git)
        v = model_state(git, name).versions.get(version)
    except RegistryError:
        return None
    text = git.show_file(v.commit, evidence_path(name, version, EVALUATION)) if v else None
    return parse_record(text, EvaluationResult, source=f"{ref}:{EVALUATION}", what="recorded evaluation",
                        fix="re-register the version with this calibgate") if text else None
