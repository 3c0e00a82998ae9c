"""Staged rollout in the registry: stage order and the evidence a promotion needs (the policy's ``rollout:``).

:func:`check_rollout` runs in ``registry promote`` before any tag is made.
With ``rollout.order: [shadow, canary, production]`` a version can enter
``canary`` only if it was promoted to ``shadow`` before, and ``production``
only after ``canary``; ``rollout.stages.<stage>`` asks for monitor reports
(``calibgate monitor --json``) of the version running as the shadow model or
as the canary, with thresholds on their figures. What was checked (report
sha256, its log's sha256, the window and the figures) is returned for the
stage tag's record, where ``registry show`` reads it back.

Without a ``rollout:`` section, or for a stage outside its order, nothing
changes: the promotion needs only its approvals (and gate decision).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from calibgate.errors import RegistryError
from calibgate.registry.state import ModelState


def check_rollout(policy, model: ModelState, version: str, stage: str, evidence: list[str | Path] | tuple = (), *,
                  rederive=None, repo_root: Path | None = None) -> dict | None:
    """The rollout evidence to record for promoting ``model.name@version`` to ``stage``; raises :class:`RegistryError`."""
    rollout = policy.rollout
    ref = f"{model.name}@{version}"
    if rollout is None or stage not in rollout.order:
        if evidence:
            where = "declares no rollout: section" if rollout is None else f"has no stage '{stage}' in rollout.order"
            raise RegistryError(f"--evidence was given but {policy.source} {where}, so nothing would check it",
                                fix="declare the stage under rollout: in the policy, or drop --evidence")
        return None
    previous = rollout.previous(stage)
    entered = [e.created_at for e in model.events if e.stage == previous and e.version == version and e.action == "promote"]
    if previous is not None and not entered:
        raise RegistryError(
            f"{ref} has not been in {previous}; the rollout order {' -> '.join(rollout.order)} in {policy.source} "
            f"does not let it skip to {stage}",
            fix=f"promote it to {previous} first (calibgate registry promote {ref} --stage {previous})",
        )
    reports = [_read_report(path, policy, rederive, repo_root) for path in evidence]
    needs = rollout.stages.get(stage)
    recorded = []
    if needs is not None and needs.shadow is not None:
        recorded.append(_shadow_evidence(ref, stage, needs.shadow, reports))
    if needs is not None and needs.canary is not None:
        recorded.append(_canary_evidence(ref, stage, needs.canary, reports))
    for entry, (path, report, _) in zip(recorded, _used(recorded, reports)):
        _served_against_production(model, version, rollout.order[-1], path, report, entry["kind"])
    if entered:
        _collected_after(recorded, ref, previous, max(entered))
    return {"order": list(rollout.order), "previous_stage": previous, "evidence": recorded}


def _used(recorded: list[dict], reports) -> list:
    """The (path, report, digest) each recorded piece of evidence came from."""
    by_digest = {digest: (path, report, digest) for path, report, digest in reports}
    return [by_digest[entry["report_sha256"]] for entry in recorded]


def _served_against_production(model: ModelState, version: str, last: str, path: Path, report, kind: str) -> None:
    """The model the candidate ran beside must be another run, and the one in the rollout's last stage when there is
    one: a version shadowing itself (by path, by a second registered name, by a copy of its run) agrees with itself
    100% of the time, and a report against an arbitrary model says nothing about replacing production.

    Served models are named in the log by ``name@vX.Y.Z`` or, served from a directory, by run id; both are compared
    by run."""
    ref = f"{model.name}@{version}"

    def run_of(served: str) -> str:
        name, _, v = served.partition("@")
        state = model.versions.get(v) if name == model.name else None
        return state.record.run_id if state is not None and state.record is not None else served

    candidate = run_of(ref)
    holder = model.current(last)
    for served in sorted({m.model for m in report.models if m.role == "primary"}):
        if served == ref or run_of(served) == candidate:
            raise RegistryError(
                f"the {kind} evidence {path} served {ref}'s own run as the model it is compared with ({served}): a model "
                "beside itself proves nothing", fix=f"calibgate serve <the {last} version> --{kind} {ref}, then monitor that log",
            )
        if holder is not None and served != f"{model.name}@{holder}" and run_of(served) != run_of(f"{model.name}@{holder}"):
            raise RegistryError(
                f"the {kind} evidence {path} compares {ref} with {served}, not with {model.name}@{holder}, which holds "
                f"{last}: it says nothing about replacing it",
                fix=f"calibgate serve {model.name}@{holder} --{kind} {ref}, then monitor that log",
            )


def _read_report(path: str | Path, policy, rederive, repo_root):
    from calibgate.records.monitor import MonitorReport
    from calibgate.runs import parse_record

    path = Path(path)
    fix = "pass the file 'calibgate monitor --json' wrote"
    from calibgate.paths import special_file

    if kind := special_file(path):
        raise RegistryError(f"{path} is {kind}, not a monitor report", fix=fix)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the evidence ({exc.strerror})", fix=fix) from None
    report = parse_record(data, MonitorReport, source=str(path), what="monitor report", fix=fix)
    if report.policy_sha256 != policy.sha256:
        measured = f"policy sha256 {report.policy_sha256[:12]}..." if report.policy_sha256 else "no policy"
        raise RegistryError(f"the evidence {path} was checked under {measured}, not {policy.source} "
                            f"({policy.sha256[:12]}...): its thresholds are not the ones this promotion answers to",
                            fix=f"calibgate monitor --log <log> --policy {policy.source} --json > {path.name}")
    _checks_follow_policy(path, report, policy)
    if report.status != "pass":  # refused as it stands: no need to measure its log again first
        failed = ", ".join(f"{c.id} ({c.subject})" for c in report.checks if c.status != "PASS")
        raise RegistryError(f"the evidence {path} says the served traffic failed its checks: {failed}",
                            fix="fix the candidate or the serving problem and monitor new traffic; failing evidence never promotes")
    if rederive is None:
        raise RegistryError(f"the evidence {path} cannot be re-measured from its log here, and a report alone is a "
                            "file anyone can edit", fix="promote through calibgate.api.promote or 'calibgate registry promote'")
    rederive(path, report, policy, repo_root)  # the figures are what the log gives, or RegistryError
    return path, report, hashlib.sha256(data).hexdigest()


def _checks_follow_policy(path: Path, report, policy) -> None:
    """The report's checks are the ones the policy's ``monitor:`` thresholds make of its own figures: a check dropped,
    a threshold loosened or a status edited is refused (the record itself refuses a status its value does not earn)."""
    from calibgate.policy.rollout import MonitorThresholds, monitor_checks

    expected = monitor_checks(report.models, report.shadow, policy.monitor or MonitorThresholds())
    key = lambda c: (c.id, c.subject, c.value, c.threshold, c.direction, c.status)  # noqa: E731
    if sorted(map(key, expected), key=str) != sorted(map(key, report.checks), key=str):
        raise RegistryError(f"the evidence {path} does not hold the checks {policy.source}'s monitor: thresholds make "
                            "of its figures (a check missing, moved or edited)",
                            fix="pass the unedited report 'calibgate monitor --json' wrote under this policy")


def _base(kind: str, path: Path, report, digest: str) -> dict:
    w = report.window
    return {"kind": kind, "report": path.name, "report_sha256": digest, "log_sha256": report.log_sha256,
            "window": {"first": w.first, "last": w.last, "first_ts": w.first_ts, "last_ts": w.last_ts, "requests": w.requests}}


def _shadow_evidence(ref: str, stage: str, needs, reports) -> dict:
    found = [(p, r, d) for p, r, d in reports if r.shadow is not None and r.shadow.model == ref]
    if not found:
        raise RegistryError(
            f"promotion of {ref} to {stage} needs a shadow monitor report of {ref} (rollout.stages.{stage}.shadow)",
            fix=f"calibgate serve <production> --shadow {ref} --log shadow.jsonl; calibgate monitor --log shadow.jsonl --json > shadow.json; "
                "then pass --evidence shadow.json",
        )
    path, report, digest = found[0]
    s = report.shadow
    figures = {"requests": s.requests, "agreement": s.agreement, "latency_ratio": s.latency_ratio}
    _require(figures, [("requests", needs.min_requests, "min"), ("agreement", needs.min_agreement, "min"),
                       ("latency_ratio", needs.max_latency_ratio, "max")], path, ref, f"rollout.stages.{stage}.shadow")
    return {**_base("shadow", path, report, digest), "against": sorted({m.model for m in report.models}),
            "figures": figures, "thresholds": needs.model_dump()}


def _canary_evidence(ref: str, stage: str, needs, reports) -> dict:
    found = [(p, r, d, r.stats(ref, "canary")) for p, r, d in reports if r.stats(ref, "canary") is not None]
    if not found:
        raise RegistryError(
            f"promotion of {ref} to {stage} needs a canary monitor report of {ref} (rollout.stages.{stage}.canary)",
            fix=f"calibgate serve <production> --canary {ref} --share 0.1 --log canary.jsonl; "
                "calibgate monitor --log canary.jsonl --json > canary.json; then pass --evidence canary.json",
        )
    path, report, digest, stats = found[0]
    figures = {"requests": stats.answered + stats.server_errors, "error_rate": stats.error_rate}
    _require(figures, [("requests", needs.min_requests, "min"), ("error_rate", needs.max_error_rate, "max")],
             path, ref, f"rollout.stages.{stage}.canary")
    return {**_base("canary", path, report, digest),
            "figures": {**figures, "p95_ms": stats.latency.p95_ms if stats.latency else None}, "thresholds": needs.model_dump()}


def _require(figures: dict, rules: list[tuple[str, float, str]], path: Path, ref: str, where: str) -> None:
    """RegistryError listing every figure on the wrong side of its threshold (a missing figure never passes)."""
    problems = []
    for key, threshold, direction in rules:
        value = figures[key]
        if value is None or (value < threshold if direction == "min" else value > threshold):
            problems.append(f"{key.replace('_', ' ')} {_fmt(value)} {'<' if direction == 'min' else '>'} {threshold}")
    if problems:
        raise RegistryError(f"the evidence {path} for {ref} falls short: {'; '.join(problems)}",
                            fix=f"fix the candidate or run it longer; the thresholds are {where}")


def _collected_after(recorded: list[dict], ref: str, previous: str, entered: str) -> None:
    """Evidence must come from traffic after the version entered the stage before (tag times have 1 s resolution)."""
    since = datetime.fromisoformat(entered).timestamp()
    for e in recorded:
        if e["window"]["first_ts"] < since - 1:
            raise RegistryError(
                f"the evidence {e['report']} covers traffic from {e['window']['first']}, before {ref} entered {previous} at {entered}",
                fix=f"serve {ref} in {previous} and monitor the traffic after its promotion",
            )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def describe(rollout: dict | None) -> list[str]:
    """One line per evidence item, for ``registry show``."""
    if not rollout:
        return []
    lines = []
    for e in rollout.get("evidence", []):
        figures = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in e.get("figures", {}).items())
        w = e.get("window", {})
        lines.append(f"{e.get('kind')}: {figures}; window {w.get('first')}..{w.get('last')} ({w.get('requests')} requests); "
                     f"report sha256 {str(e.get('report_sha256'))[:12]}...")
    return lines or [f"order {' -> '.join(rollout.get('order', []))} (no evidence required)"]
