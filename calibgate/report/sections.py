"""The report's sections, each with shorter variants for when the comment is too long.

A :class:`Section` lists its renderings from fullest to shortest; each
rendering carries a note saying what was cut. The assembler in
:mod:`calibgate.report.api` steps the lowest-priority sections down first.
"""

from __future__ import annotations

from dataclasses import dataclass

from calibgate.records.evaluation import EvaluationResult
from calibgate.records.export import ExportResult, Latency
from calibgate.records.plan import Plan
from calibgate.records.strategies import candidate_key
from calibgate.records.decision import CheckResult, GateDecision
from calibgate.report import charts
from calibgate.report.markdown import code, details, inline, interval, link, megabytes, num, signed, table

# keep longest: decision > links > metrics > plan > regressions > latency > charts > suspects
PRIORITY = {
    "decision": 100,
    "links": 95,
    "metrics": 90,
    "plan": 80,
    "regressions": 70,
    "latency": 60,
    "class_chart": 40,
    "curve": 30,
    "suspects": 10,
}
STATUS_ORDER = {"ERROR": 0, "FAIL": 1, "WARN": 2, "PASS": 3, "SKIPPED": 4}
STATUS_ICON = {"PASS": "✅", "WARN": "⚠️", "FAIL": "❌", "ERROR": "🛑", "SKIPPED": "⏭️"}
SIGNAL_ICON = {"ok": "✅", "warn": "⚠️", "alert": "🚨", "not-measured": "➖"}
LOWER_IS_BETTER = frozenset({"ece", "brier", "log_loss", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"})


@dataclass(frozen=True)
class Variant:
    text: str
    note: str = ""  # what this rendering leaves out; empty for the full one


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    variants: tuple[Variant, ...]
    droppable: bool = True

    @property
    def priority(self) -> int:
        return PRIORITY[self.key]

    def all_variants(self) -> tuple[Variant, ...]:
        if self.droppable:
            return (*self.variants, Variant("", f"{self.title} omitted"))
        return self.variants


# -- decision -----------------------------------------------------------------------------------


def heading(decision: GateDecision, name: str) -> str:
    failed = sum(c.status == "FAIL" for c in decision.checks)
    errors = sum(c.status == "ERROR" for c in decision.checks)
    counts = f"{failed} of {len(decision.checks)} checks failed" + (f", {errors} in error" if errors else "")
    if decision.decision == "promote":
        title = f"## ✅ calibgate: PASS: {code(name)} may be promoted"
    elif decision.decision == "error":
        title = f"## 🛑 calibgate: BLOCK: the gate could not decide ({counts})"
    else:
        title = f"## ❌ calibgate: BLOCK: {counts}"
    against = f"baseline {code(decision.baseline)}" if decision.baseline else "no baseline (first model)"
    policy = f"policy {code(decision.policy)} ({code(decision.policy_sha256[:12])})"
    summary = inline(decision.summary, limit=1000)
    return f"{title}\n\n{summary}\n\nCandidate {code(decision.candidate)} against {against}; {policy}."


def _check_rows(checks: list[CheckResult], *, message_limit: int) -> list[list[str]]:
    return [
        [
            f"{STATUS_ICON[c.status]} {c.status}",
            code(c.id),
            num(c.value),
            num(c.threshold),
            num(c.baseline),
            inline(c.message, limit=message_limit),
        ]
        for c in checks
    ]


_CHECK_HEADERS = ["status", "check", "value", "threshold", "baseline", "why"]


def decision_section(decision: GateDecision) -> Section:
    ordered = sorted(decision.checks, key=lambda c: STATUS_ORDER[c.status])
    flagged = [c for c in ordered if c.status in ("ERROR", "FAIL", "WARN")]
    counts = ", ".join(
        f"{sum(c.status == s for c in ordered)} {s}" for s in STATUS_ORDER if any(c.status == s for c in ordered)
    )

    def render(*, message_limit: int, full: bool, max_rows: int | None) -> str:
        parts = [f"**Checks:** {counts or 'none'}"]
        shown = flagged if max_rows is None else flagged[:max_rows]
        if shown:
            parts.append(table(_CHECK_HEADERS, _check_rows(shown, message_limit=message_limit), align="llrrrl"))
        if len(shown) < len(flagged):
            parts.append(f"_{len(flagged) - len(shown)} more flagged checks not shown._")
        if full and ordered:
            parts.append(
                details(
                    f"All {len(ordered)} checks",
                    table(_CHECK_HEADERS, _check_rows(ordered, message_limit=message_limit), align="llrrrl"),
                )
            )
        return "\n\n".join(parts)

    return Section(
        "decision",
        "check list",
        (
            Variant(render(message_limit=300, full=True, max_rows=None)),
            Variant(render(message_limit=300, full=False, max_rows=None), "passing checks not listed"),
            Variant(render(message_limit=120, full=False, max_rows=50), "flagged checks cut to 50"),
            Variant(render(message_limit=80, full=False, max_rows=10), "flagged checks cut to 10"),
        ),
        droppable=False,
    )


# -- plan and signals ---------------------------------------------------------------------------


def plan_section(plan: Plan) -> Section:
    signal_table = table(
        ["signal", "status", "reading"],
        (
            [plan.signals.title_of(name, sig), f"{SIGNAL_ICON[sig.status]} {sig.status}", inline(sig.reading, limit=300)]
            for name, sig in plan.signals.items()
        ),
    )
    rec = plan.recommendation
    what = code(rec.strategy) + (f" (rank {rec.lora_rank})" if rec.lora_rank else "")
    if rec.modifiers:
        what += " with " + ", ".join(code(m) for m in rec.modifiers)
    reasons = "\n".join(f"{i}. {inline(r, limit=400)}" for i, r in enumerate(rec.rationale, 1))
    candidates = table(
        ["", "candidate", "predicted accuracy", "95% interval", "train time", "latency", "note"],
        (
            [
                "★" if candidate_key(c.strategy, c.lora_rank) == rec.chosen_candidate else ("" if c.eligible else "✗"),
                code(candidate_key(c.strategy, c.lora_rank)),
                num(c.predicted_accuracy),
                interval(c.predicted_accuracy_ci.low, c.predicted_accuracy_ci.high) if c.predicted_accuracy_ci else "–",
                "–" if c.estimated_train_seconds is None else f"{c.estimated_train_seconds:,.0f} s",
                inline(c.latency_class),
                inline(c.note, limit=120),
            ]
            for c in rec.candidates
        ),
        align="llrrrll",
    )
    warnings = "\n".join(f"- ⚠️ {inline(w, limit=300)}" for w in plan.warnings)
    head = f"### Signals and plan\n\n{signal_table}\n\n**Plan:** {what}, because:\n\n{reasons}"
    full = "\n\n".join(p for p in (head, details(f"Candidates ({len(rec.candidates)})", candidates), warnings) if p)
    return Section(
        "plan",
        "signals and plan",
        (
            Variant(full),
            Variant(head, "plan candidates and warnings omitted"),
        ),
    )




# -- metrics ------------------------------------------------------------------------------------


def metrics_section(candidate: EvaluationResult, baseline: EvaluationResult | None) -> Section:
    names = list(candidate.metrics)
    if baseline is not None:
        names += [m for m in baseline.metrics if m not in candidate.metrics]
    rows = []
    for name in names:
        value = candidate.metrics.get(name)
        base = baseline.metrics.get(name) if baseline is not None else None
        delta = None if value is None or base is None else value - base
        worse = delta is not None and round(delta, 3) != 0 and ((delta > 0) == (name in LOWER_IS_BETTER))
        ci = candidate.intervals.get(name)
        rows.append(
            [
                code(name),
                num(base),
                num(value),
                signed(delta) + (" 🔻" if worse else ""),
                interval(ci.low, ci.high) if ci else "–",
            ]
        )
    header = f"### Metrics on {code(candidate.test.source)} (n={candidate.test.n:,})"
    if baseline is not None and baseline.test.sha256 != candidate.test.sha256:
        header += "\n\n⚠️ The baseline was evaluated on a different test set: deltas compare different data."
    body = table(["metric", "baseline", "candidate", "Δ", "candidate 95% interval"], rows, align="lrrrr")
    return Section("metrics", "metrics", (Variant(f"{header}\n\n{body}"),))


def class_deltas(
    candidate: EvaluationResult, baseline: EvaluationResult
) -> list[tuple[str, float, float, float, float]]:
    """(label, baseline f1, candidate f1, f1 delta, recall delta) per shared class, worst f1 delta first."""
    rows = []
    for label, metrics in candidate.per_class.items():
        base = baseline.per_class.get(label)
        if base is not None:
            rows.append((label, base.f1, metrics.f1, metrics.f1 - base.f1, metrics.recall - base.recall))
    return sorted(rows, key=lambda r: (r[3], r[4]))


def regressions_section(
    candidate: EvaluationResult, baseline: EvaluationResult | None, *, threshold: float = 0.005
) -> Section:
    if baseline is None:
        weakest = sorted(candidate.per_class.items(), key=lambda kv: kv[1].f1)
        rows = [[code(label), num(m.precision), num(m.recall), num(m.f1), f"{m.support:,}"] for label, m in weakest]
        head = "### Weakest classes (no baseline to compare)"
        headers, align = ["class", "precision", "recall", "f1", "support"], "lrrrr"

        def render(limit: int | None) -> str:
            shown = rows if limit is None else rows[:limit]
            return f"{head}\n\n{table(headers, shown, align=align)}"

        return Section(
            "regressions", "per-class table", (Variant(render(10)), Variant(render(3), "per-class table cut to 3 rows"))
        )

    deltas = class_deltas(candidate, baseline)
    regressed = [d for d in deltas if d[3] < -threshold or d[4] < -threshold]
    improved = sum(1 for d in deltas if d[3] > threshold)
    head = (
        f"### Per-class changes\n\n{len(regressed)} of {len(deltas)} classes regressed by more than "
        f"{threshold:.3f} in f1 or recall; {improved} improved."
    )
    headers, align = ["class", "baseline f1", "candidate f1", "Δ f1", "Δ recall"], "lrrrr"

    def rows(items) -> list[list[str]]:
        return [[code(label), num(b), num(c), signed(df), signed(dr)] for label, b, c, df, dr in items]

    def render(limit: int, everything: bool) -> str:
        parts = [head]
        if regressed:
            parts.append(table(headers, rows(regressed[:limit]), align=align))
            if len(regressed) > limit:
                parts.append(f"_{len(regressed) - limit} more regressed classes not shown._")
        if everything:
            parts.append(details(f"All {len(deltas)} classes", table(headers, rows(deltas), align=align)))
        return "\n\n".join(parts)

    return Section(
        "regressions",
        "per-class table",
        (
            Variant(render(20, True)),
            Variant(render(20, False), "full per-class table omitted"),
            Variant(render(5, False), "regressed classes cut to 5"),
        ),
    )


def class_chart_section(
    candidate: EvaluationResult, baseline: EvaluationResult | None, *, bars: int = 20
) -> Section | None:
    if baseline is None:
        return None
    deltas = class_deltas(candidate, baseline)
    if not deltas:
        return None
    moved = sorted(deltas, key=lambda d: -abs(d[3]))[:bars]
    moved.sort(key=lambda d: d[3])
    title = "F1 change per class" + (f" ({bars} largest moves of {len(deltas)})" if len(deltas) > bars else "")
    chart = charts.bar_chart(title, [d[0] for d in moved], "Δ f1", [d[3] for d in moved])
    return Section("class_chart", "per-class chart", (Variant(chart),))


# -- learning curve -----------------------------------------------------------------------------


def curve_section(plan: Plan) -> Section | None:
    st = plan.signals.starvation
    if len(st.curve) < 2:
        return None
    chart = charts.line_chart(
        "Learning curve of the frozen-embedding probe",
        "labeled examples",
        [p.n for p in st.curve],
        "accuracy",
        [p.accuracy for p in st.curve],
    )
    text = (
        f"### Learning curve\n\n{chart}\n\nPredicted probe accuracy at the target size "
        f"({st.target_size:,} examples): {num(st.predicted_probe_accuracy_at_target)}; ceiling "
        f"{num(st.predicted_ceiling)}; {signed(st.gain_per_doubling, digits=1)} points per doubling."
    )
    return Section("curve", "learning curve", (Variant(text),))


# -- latency and size ---------------------------------------------------------------------------


def _latency_cells(lat: Latency | None) -> list[str]:
    if lat is None:
        return ["–"] * 4
    return [f"{lat.p50_ms:.1f}", f"{lat.p95_ms:.1f}", f"{lat.p99_ms:.1f}", f"{lat.throughput_batch32:,.0f}/s"]


def latency_section(export: ExportResult) -> Section:
    rows = []
    for art in export.artifacts:
        parity = "–" if art.max_abs_logit_diff is None else f"max Δlogit {art.max_abs_logit_diff:.1e}"
        if art.argmax_agreement is not None:
            parity = f"argmax agreement {art.argmax_agreement:.1%}"
        rows.append([code(art.path), art.precision, megabytes(art.size_bytes), *_latency_cells(art.latency), parity])
    if export.torch_latency is not None:
        rows.append(["torch (eager)", "fp32", "–", *_latency_cells(export.torch_latency), "reference"])
    body = table(
        ["artifact", "precision", "size", "p50 ms", "p95 ms", "p99 ms", "batch 32", "parity"], rows, align="llrrrrrl"
    )
    threads = next((a.latency.threads for a in export.artifacts if a.latency), None)
    note = (
        f"Batch-1 latency on the CI runner{f' with {threads} threads' if threads else ''}; ONNX opset {export.opset}."
    )
    return Section("latency", "latency and size", (Variant(f"### Latency and size\n\n{body}\n\n{note}"),))


# -- suspects -----------------------------------------------------------------------------------


def suspects_section(plan: Plan) -> Section | None:
    noise = plan.signals.label_noise
    if not noise.suspects:
        return None
    suspects = sorted(noise.suspects, key=lambda s: s.score)
    rate = f"estimated noise rate {noise.estimated_rate:.1%}"
    if noise.estimated_rate_ci:
        rate += f" (95% interval {noise.estimated_rate_ci.low:.1%}–{noise.estimated_rate_ci.high:.1%})"

    def render(limit: int, text_limit: int) -> str:
        shown = suspects[:limit]
        rows = [
            [
                str(s.line if s.line is not None else s.index),
                code(s.given_label, limit=40),
                code(s.suggested_label, limit=40),
                f"{s.score:.3f}",
                inline(s.text, limit=text_limit),
            ]
            for s in shown
        ]
        more = f"\n\n_{len(suspects) - len(shown):,} more in the plan's JSON._" if len(shown) < len(suspects) else ""
        body = table(["line", "given", "suggested", "quality", "text"], rows, align="lllrl") + more
        return details(f"🔎 Suspect labels: {len(suspects):,} ({rate}), lowest label quality first", body)

    variants = [Variant(render(len(suspects), 160))]
    for limit in (1000, 700, 500, 350, 250, 200, 150, 100, 50, 20, 10):
        if limit < len(suspects):
            variants.append(Variant(render(limit, 120), f"suspect labels: {limit} of {len(suspects):,} shown"))
    return Section("suspects", "suspect labels", tuple(variants))


# -- links --------------------------------------------------------------------------------------


def links_section(links: dict[str, str]) -> Section | None:
    shown = [made for label, url in links.items() if (made := link(label, url)) is not None]
    if not shown:
        return None
    text = " · ".join(shown)
    return Section("links", "links", (Variant(f"🔗 {text}"),))
