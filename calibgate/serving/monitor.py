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

from calibgate.data.jsonl import DuplicateKey, unique_keys
from calibgate.errors import DataError
from calibgate.paths import decode_utf8, jsonl_lines, special_file
from calibgate.policy.rollout import MonitorThresholds, monitor_checks
from calibgate.records.monitor import (
    MAX_DISAGREEMENTS,
    Disagreement,
    Latency,
    ModelStats,
    MonitorReport,
    Reference,
    ShadowStats,
    Window,
)
from calibgate.runs.parsing import first_problem
from calibgate.serving.predlog import LogRecord, text_hash

CLOCK_SKEW_SECONDS = 300  # a serving host's clock may run this far ahead of the one monitor runs on

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
    records, numbers = [], []
    seen: dict[tuple, int] = {}
    for number, line in enumerate(jsonl_lines(text), 1):
        if not line.strip():
            continue
        try:
            record = LogRecord.model_validate(json.loads(line, object_pairs_hook=unique_keys))
        except DuplicateKey as exc:
            raise DataError(f"{path}:{number}: names the key '{exc.key[:40]}' twice, which 'calibgate serve' never writes",
                            fix=fix) from None
        except (ValueError, RecursionError) as exc:
            problem = first_problem(exc) if isinstance(exc, ValidationError) else f"not JSON: {str(exc).splitlines()[0][:80]}"
            raise DataError(f"{path}:{number}: not a prediction log record ({problem})", fix=fix) from None
        # the server writes one line per answer: the same answer twice is a log copied into itself, which would
        # count its requests twice (and meet a rollout's min_requests); a client's retry has its own arrival time
        key = (record.line_id,) if record.line_id else (record.request_id, record.role, record.model, record.ts)
        if key in seen:
            raise DataError(f"{path}:{number}: repeats the line {seen[key]} (request {record.request_id[:40]}, "
                            f"{record.role}): a log concatenated with itself?", fix="monitor each served log once, unmerged")
        seen[key] = number
        for item in record.items:
            if item.text is not None and text_hash(item.text) != item.text_sha256:
                raise DataError(f"{path}:{number}: a logged text does not hash to its text_sha256: the line was edited",
                                fix=fix)
        records.append(record)
        numbers.append(number)
    if not records:
        raise DataError(f"{path}: the prediction log is empty", fix="serve some traffic with 'calibgate serve --log' first")
    _check_roles(path, records, numbers)
    return records, data


def _check_roles(path: Path, records: list[LogRecord], numbers: list[int]) -> None:
    """A log 'calibgate serve' could have written: answers served, one model per role, none in two roles."""
    fix = "monitor the log of one 'calibgate serve' run, as it wrote it"
    by_role: dict[str, set[str]] = defaultdict(set)
    for r in records:
        by_role[r.role].add(r.model)
    if not by_role.get("primary") and not by_role.get("canary"):
        raise DataError(f"{path}: the log holds no served answer (only shadow lines): there is nothing to compare",
                        fix=fix)
    for role in ("primary", "canary", "shadow"):
        if len(by_role.get(role, ())) > 1:
            raise DataError(f"{path}: the log has {len(by_role[role])} {role} models ({', '.join(sorted(by_role[role]))})",
                            fix="monitor one served configuration per log")
    for a, b in (("primary", "canary"), ("primary", "shadow"), ("canary", "shadow")):
        both = by_role.get(a, set()) & by_role.get(b, set())
        if both:
            raise DataError(f"{path}: {next(iter(both))} is both the {a} and the {b}: it cannot be compared with itself "
                            "('calibgate serve' refuses that)", fix=fix)
    ids = {r.line_id for r in records if r.line_id}
    served = {r.line_id: (r, n) for r, n in zip(records, numbers) if r.line_id and r.role != "shadow"}
    shadowed: dict[str, int] = {}
    for r, n in zip(records, numbers):
        if r.role != "shadow" or r.shadow_of is None:
            continue
        answer = served.get(r.shadow_of)
        if r.shadow_of in shadowed:
            raise DataError(f"{path}:{n}: shadows the answer line {shadowed[r.shadow_of]} shadowed already", fix=fix)
        shadowed[r.shadow_of] = n
        if answer is None:
            if r.shadow_of in ids:
                raise DataError(f"{path}:{n}: names a shadow line as the answer it shadowed", fix=fix)
            continue  # the answer's own line was lost (a full disk): this shadow line pairs with nothing
        served_line, number = answer
        if r.items and not _same_texts(r, served_line):
            raise DataError(f"{path}:{n}: the shadow's texts are not those of the answer it shadowed (line {number})", fix=fix)
    taken: set[int] = set()
    for s, answer in _schema_1_pairs(records):
        if id(answer) in taken:
            raise DataError(f"request {s.request_id[:40]}'s answer has two shadow lines", fix=fix)
        if not _same_texts(s, answer):
            raise DataError(f"request {s.request_id[:40]}'s shadow line holds other texts than its answer", fix=fix)
        taken.add(id(answer))


def _same_texts(a: LogRecord, b: LogRecord) -> bool:
    return [i.text_sha256 for i in a.items] == [i.text_sha256 for i in b.items]


def _schema_1_pairs(records: list[LogRecord]):
    """(schema-1 shadow line, its answer) for each answered schema-1 shadow line whose request id was answered: such a
    line names only its request id, so it pairs only with a schema-1 answer, and only where that id was answered once
    (a schema-2 answer is paired by its own line_id, never by request id)."""
    answers: dict[str, list[LogRecord]] = defaultdict(list)
    for r in records:
        if r.role != "shadow" and r.status == 200 and r.line_id is None:
            answers[r.request_id].append(r)
    for s in records:
        if s.role != "shadow" or s.status != 200 or s.shadow_of is not None:
            continue
        found = answers.get(s.request_id, [])
        if len(found) > 1:
            raise DataError(f"request id {s.request_id[:40]} was answered {len(found)} times, and this log's shadow lines "
                            "(schema 1) name only request ids: their answers cannot be told apart",
                            fix="serve with this calibgate, whose log pairs each shadow line with its answer's line_id")
        if found:
            yield s, found[0]


def _pairs(records: list[LogRecord]) -> list[tuple[LogRecord, LogRecord]]:
    """(served answer, its shadow line) for every shadow line that answered, in a log :func:`read_log` checked: by
    ``shadow_of`` (schema 2), else by request id (:func:`_schema_1_pairs`)."""
    by_line = {r.line_id: r for r in records if r.line_id and r.role != "shadow" and r.status == 200}
    by_request = {id(s): answer for s, answer in _schema_1_pairs(records)}
    pairs = []
    for s in records:  # in log order
        answer = by_line.get(s.shadow_of) if s.shadow_of is not None else by_request.get(id(s))
        if s.role == "shadow" and s.status == 200 and answer is not None:
            pairs.append((answer, s))
    return pairs


def monitor(
    log: str | Path,
    *,
    thresholds: MonitorThresholds | None = None,
    evaluations: dict | None = None,
    policy_source: str | None = None,
    policy_sha256: str | None = None,
    read: tuple[list[LogRecord], bytes] | None = None,
) -> MonitorReport:
    """Measure a prediction log; ``evaluations``: model ref -> :class:`EvaluationResult` to compare against;
    ``read``: what :func:`read_log` gave for ``log`` already (a big log is parsed once)."""
    thresholds = thresholds or MonitorThresholds()
    records, data = read if read is not None else read_log(log)
    for ref, evaluation in (evaluations or {}).items():
        unknown = sorted({i.label for r in records if r.model == ref for i in r.items} - set(evaluation.label_names))
        if unknown:
            raise DataError(f"{log}: {ref} is logged predicting '{unknown[0][:60]}', a label it does not have "
                            f"({len(evaluation.label_names)} labels in its evaluation)",
                            fix="monitor the log of one 'calibgate serve' run, as it wrote it")
    served = [r for r in records if r.role != "shadow"]
    models = [_model_stats(ref, role, group, thresholds.low_confidence, (evaluations or {}).get(ref))
              for (ref, role), group in _groups(served).items()]
    shadow = _shadow_stats(records) if any(r.role == "shadow" for r in records) else None
    ts = [r.ts for r in records]
    created = datetime.now(timezone.utc).timestamp()
    if max(ts) > created + CLOCK_SKEW_SECONDS:
        raise DataError(f"{log}: the log's last line is stamped {_iso(max(ts))}, "
                        f"{max(ts) - created:.0f} s ahead of this machine's clock", fix="fix the serving host's clock (NTP), "
                        "or monitor on a machine whose clock agrees with it")
    window = Window(first_ts=min(ts), last_ts=max(ts), first=_iso(min(ts)), last=_iso(max(ts)),
                    requests=len(served), lines=len(records))
    checks = monitor_checks(models, shadow, thresholds)
    status = "fail" if any(c.status != "PASS" for c in checks) else "pass"
    try:
        return MonitorReport(
            log=str(log), log_sha256=hashlib.sha256(data).hexdigest(), created_at=_iso(max(created, max(ts))),
            policy=policy_source, policy_sha256=policy_sha256, window=window, low_confidence=thresholds.low_confidence,
            models=models, shadow=shadow, checks=checks, status=status,
        )
    except ValidationError as exc:  # figures no unedited log gives: the log, not calibgate, is wrong (exit 2, not 3)
        raise DataError(f"{log}: the log's figures do not fit together ({first_problem(exc)})",
                        fix="monitor the log of one 'calibgate serve' run, as it wrote it") from None


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
    shadows = [r for r in records if r.role == "shadow"]
    refs = sorted({r.model for r in shadows})
    paired = _pairs(records)
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
    read = read_log(log)
    records = read[0]
    evaluations = {}
    if evaluation is not None:
        primary = next((r.model for r in records if r.role == "primary"), None)
        from calibgate.runs import read_record

        given = read_record(evaluation, EvaluationResult, what="evaluation record",
                            fix="pass the evaluation.json 'calibgate evaluate' writes")
        _check_evaluation_of(primary, given, evaluation, repo)
        evaluations[primary] = given
    for ref in sorted({r.model for r in records if "@" in r.model} - set(evaluations)):  # shadow too: its labels
        found = _registry_evaluation(ref, repo)
        if found is not None:
            evaluations[ref] = found
    return monitor(log, thresholds=loaded.monitor if loaded else None, evaluations=evaluations,
                   policy_source=loaded.source if loaded else None, policy_sha256=loaded.sha256 if loaded else None, read=read)


def _check_evaluation_of(primary: str | None, given, path, repo) -> None:
    """``--evaluation`` must be the served primary's own: figures against another model's evaluation (its label
    shares, its confidences) measure nothing about this one. A model served from its directory is logged by run id;
    a registered one by name@vX.Y.Z, whose run the registry names."""
    if primary is None:
        return
    run_id = primary if "@" not in primary else getattr(_registry_evaluation(primary, repo), "run_id", None)
    if run_id is None:
        raise DataError(f"{path}: cannot tell whether this evaluation is {primary}'s: the registry here does not name "
                        "its run", fix="leave --evaluation out (monitor reads the registry's), or run monitor in the project")
    if given.run_id != run_id:
        raise DataError(f"{path} is the evaluation of run {given.run_id}, but the log's primary model {primary} is run "
                        f"{run_id}", fix=f"pass the evaluation.json of run {run_id}, or leave --evaluation out")


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


def check_against_log(report_path: str | Path, report: MonitorReport, policy, repo_root) -> None:
    """Raise unless ``report`` is what ``calibgate monitor`` gives for its own log under ``policy`` (rollout evidence).

    A report is a JSON file anyone can edit: an agreement or a request count changed by hand promoted a version. The
    log is found at the path the report names, or beside the report under that name, and must hash to the report's
    ``log_sha256``; it is then measured again, and every figure, check and the window must agree.
    """
    import hashlib

    from calibgate.errors import RegistryError

    report_path = Path(report_path)
    named = Path(report.log)
    candidates = [named, report_path.parent / named.name]
    log = None
    for candidate in candidates:
        try:
            if candidate.is_file() and special_file(candidate) is None and \
                    hashlib.sha256(candidate.read_bytes()).hexdigest() == report.log_sha256:
                log = candidate
                break
        except OSError:
            continue
    if log is None:
        raise RegistryError(
            f"the evidence {report_path} names the log {report.log} (sha256 {report.log_sha256[:12]}...), and no file "
            "with that content is there or beside the report: its figures cannot be re-measured",
            fix=f"keep the log 'calibgate monitor' read beside {report_path.name} (under its name), unchanged",
        )
    fresh = monitor_log(log, policy=policy.source, repo=repo_root)
    for field in ("models", "shadow", "window", "checks", "status", "low_confidence", "policy_sha256"):
        if getattr(fresh, field) != getattr(report, field):
            raise RegistryError(
                f"the evidence {report_path} does not hold what its log {log} gives: its {field} differ from a fresh "
                "'calibgate monitor' of that log (an edited report?)",
                fix=f"calibgate monitor --log {log} --policy {policy.source} --json > {report_path.name}",
            )
