"""Rendering a :class:`~calibgate.serving.monitor.MonitorReport`: markdown (PR comments, files) and a terminal table.

Served texts come from whoever sent a request, and labels from the training data: markdown escapes them
(:mod:`calibgate.report.markdown`), the terminal markup-escapes every cell.
"""

from __future__ import annotations

from calibgate.records.monitor import MonitorReport
from calibgate.report.markdown import code, inline


def _num(value, digits: int = 3, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if pct else f"{value:.{digits}f}"


def _shares(shares: dict[str, float], top: int = 5) -> str:
    best = sorted(shares.items(), key=lambda kv: -kv[1])[:top]
    more = f" (+{len(shares) - top} more)" if len(shares) > top else ""
    return ", ".join(f"{k} {v:.0%}" for k, v in best) + more if best else "-"


def model_rows(report: MonitorReport) -> list[list[str]]:
    rows = []
    for m in report.models:
        lat = m.latency
        ev = m.evaluation
        rows.append([
            m.model, m.role, str(m.requests), _num(m.error_rate, pct=True), str(m.client_errors),
            _num(lat.p50_ms, 1) if lat else "-", _num(lat.p95_ms, 1) if lat else "-", _num(lat.p99_ms, 1) if lat else "-",
            _num(m.mean_confidence), _num(m.low_confidence_rate, pct=True), _shares(m.label_shares),
            f"{ev.label_shift:.3f} (eval n={ev.n})" if ev else "-",
        ])
    return rows


MODEL_COLUMNS = ["model", "role", "requests", "errors", "4xx", "p50 ms", "p95 ms", "p99 ms", "confidence", "low conf",
                 "label shares", "label shift"]


def markdown(report: MonitorReport) -> str:
    w = report.window
    lines = [f"## Monitor: {report.status.upper()}", "",
             f"{w.requests} requests, {w.first} .. {w.last}; log sha256 `{report.log_sha256[:12]}`"
             + (f"; policy `{report.policy}`" if report.policy else ""), "",
             "| " + " | ".join(MODEL_COLUMNS) + " |", "|" + "---|" * len(MODEL_COLUMNS)]
    lines += ["| " + " | ".join([code(row[0]), *(inline(cell) for cell in row[1:])]) + " |" for row in model_rows(report)]
    s = report.shadow
    if s is not None:
        lines += ["", f"### Shadow {code(s.model)}", "",
                  f"agreement **{_num(s.agreement, pct=True)}** on {s.texts} texts of {s.requests} requests; "
                  f"p95 {_num(s.shadow_p95_ms, 1)} ms vs served {_num(s.served_p95_ms, 1)} ms "
                  f"(ratio {_num(s.latency_ratio, 2)}); {s.skipped} skipped, {s.errors} errors"]
        if s.disagreements:
            lines += ["", f"{s.disagreements_total} disagreements (lowest confidence first):", "",
                      "| request | text | served | shadow |", "|---|---|---|---|"]
            lines += [f"| {code(d.request_id[:16])} | {inline(d.text, limit=60) if d.text else code(d.text_sha256[:12])} | "
                      f"{code(d.served_label)} ({d.served_confidence:.2f}) | {code(d.shadow_label)} ({d.shadow_confidence:.2f}) |"
                      for d in s.disagreements]
    if report.checks:
        lines += ["", "| check | model | value | threshold | status |", "|---|---|---|---|---|"]
        lines += [f"| {c.id} | {code(c.subject)} | {_num(c.value, 4)} | {c.direction} {c.threshold:g} | {c.status} |"
                  for c in report.checks]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def terminal(report: MonitorReport) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=180, highlight=False, soft_wrap=True)
    w = report.window
    table = Table(*MODEL_COLUMNS, box=box.SIMPLE_HEAD, title_justify="left",
                  title=f"monitor {report.status.upper()}: {w.requests} requests {w.first} .. {w.last}")
    for row in model_rows(report):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    s = report.shadow
    if s is not None:
        console.print(f"shadow {escape(s.model)}: agreement {_num(s.agreement, pct=True)} on {s.texts} texts, "
                      f"p95 ratio {_num(s.latency_ratio, 2)}, {s.skipped} skipped, {s.errors} errors")
        if s.disagreements:
            t = Table("request", "text", "served", "shadow", box=box.SIMPLE_HEAD, title="disagreements", title_justify="left")
            for d in s.disagreements:
                t.add_row(escape(d.request_id[:16]), escape(_cell(d.text)) if d.text else d.text_sha256[:12],
                          escape(f"{d.served_label} ({d.served_confidence:.2f})"),
                          escape(f"{d.shadow_label} ({d.shadow_confidence:.2f})"))
            console.print(t)
    if report.checks:
        t = Table("check", "model", "value", "threshold", "status", box=box.SIMPLE_HEAD, title="checks", title_justify="left")
        for c in report.checks:
            t.add_row(c.id, escape(c.subject), _num(c.value, 4), f"{c.direction} {c.threshold:g}", c.status)
        console.print(t)
