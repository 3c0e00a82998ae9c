"""Render a :class:`~calibgate.records.plan.Plan` for a terminal (rich) or a PR comment (markdown).

A plan carries the data's own strings (label names, suspect texts, the file name) inside its readings and
sentences, so both views escape them: markdown through :mod:`calibgate.report.markdown` (a label or text cannot
close ``<details>``, open an HTML comment that hides the rest of a PR comment, mention anyone or form a link), the
terminal through rich's markup escape (a label ``[/x]`` crashed the view, ``[blink]x`` restyled it).
"""

from __future__ import annotations

from calibgate.records.strategies import DATA_ACTIONS, candidate_key
from calibgate.records.plan import Plan
from calibgate.report.markdown import code, inline

_STATUS_ICON = {"ok": "✅", "warn": "⚠️", "alert": "❌", "not-measured": "➖"}


def _headline(plan: Plan) -> str:
    rec = plan.recommendation
    name = rec.strategy + (f" (rank {rec.lora_rank})" if rec.lora_rank else "")
    if rec.strategy in DATA_ACTIONS:
        name += f", then train {rec.chosen_candidate}"
    return name


def render_markdown(plan: Plan, *, max_suspects: int = 25) -> str:
    """A markdown plan ready for a PR comment; every string from the data is escaped."""
    ds = plan.dataset
    rec = plan.recommendation
    lines = [
        f"### calibgate plan: **{inline(_headline(plan))}**",
        "",
        f"Calibration set {code(ds.source)}: {ds.n} examples, {ds.n_classes} classes; target size {ds.target_size}; "
        f"model {code(plan.model)}; data version {code(ds.dvc_md5 or 'untracked')} ({inline(ds.dvc_state)}).",
        "",
        "#### Why",
        "",
        *[f"{i}. {inline(sentence)}" for i, sentence in enumerate(rec.rationale, start=1)],
        "",
        "#### Signals",
        "",
        "| signal | status | value | reading |",
        "|---|---|---|---|",
    ]
    for name, record in plan.signals.items():
        title = plan.signals.title_of(name, record)
        lines.append(f"| {inline(title)} | {_STATUS_ICON[record.status]} {record.status} | {inline(record.value())} | "
                     f"{inline(record.reading)} |")
    lines += [
        "",
        f"#### Candidates (tolerance {rec.tolerance:g} points)",
        "",
        "| candidate | predicted accuracy | 95% interval | basis | est. training | latency | |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in rec.candidates:
        key = candidate_key(c.strategy, c.lora_rank)
        mark = "**← chosen**" if key == rec.chosen_candidate else ("" if c.eligible else "not eligible")
        ci = c.predicted_accuracy_ci
        lines.append(
            f"| {inline(key)} | {c.predicted_accuracy:.1%} | {ci.low:.1%}–{ci.high:.1%} | {inline(c.basis)} | "
            f"{c.estimated_train_seconds:.0f} s | {inline(c.latency_class)} | {mark} |"
        )
    suspects = plan.signals.label_noise.suspects
    if suspects:
        lines += ["", f"<details><summary>{len(suspects)} suspect labels (lowest label quality first)</summary>", ""]
        lines += ["| line | given | suggested | quality | text |", "|---|---|---|---|---|"]
        for s in suspects[:max_suspects]:
            lines.append(f"| {s.line or s.index} | {code(s.given_label)} | {code(s.suggested_label)} | {s.score:.2f} | "
                         f"{inline(s.text, limit=120)} |")
        if len(suspects) > max_suspects:
            lines.append(f"\n…and {len(suspects) - max_suspects} more in the plan JSON.")
        lines += ["", "</details>"]
    if plan.warnings:
        lines += ["", "#### Warnings", "", *[f"- {inline(w)}" for w in plan.warnings]]
    return "\n".join(lines) + "\n"


def render_terminal(plan: Plan, console) -> None:
    """Print the plan as rich tables on ``console``; every string from the data is markup-escaped."""
    from rich.markup import escape
    from rich.table import Table

    ds = plan.dataset
    rec = plan.recommendation
    console.print(f"[bold]Recommendation: {escape(_headline(plan))}[/bold]")
    console.print(escape(
        f"{ds.n} examples, {ds.n_classes} classes from {ds.source}; target size {ds.target_size}; model {plan.model}; "
        f"data {ds.dvc_md5 or 'untracked'} ({ds.dvc_state})"
    ))
    signals = Table(title="Signals", show_lines=False)
    for col in ("signal", "status", "value", "reading"):
        signals.add_column(col, overflow="fold")
    style = {"ok": "green", "warn": "yellow", "alert": "red", "not-measured": "dim"}
    for name, record in plan.signals.items():
        title = plan.signals.title_of(name, record)
        signals.add_row(escape(title), f"[{style[record.status]}]{record.status}[/]", escape(record.value()), escape(record.reading))
    console.print(signals)
    cands = Table(title=f"Candidates (tolerance {rec.tolerance:g} points)")
    for col in ("candidate", "predicted acc.", "95% interval", "basis", "est. train", "latency", ""):
        cands.add_column(col)
    for c in rec.candidates:
        key = candidate_key(c.strategy, c.lora_rank)
        ci = c.predicted_accuracy_ci
        cands.add_row(
            escape(key), f"{c.predicted_accuracy:.1%}", f"{ci.low:.1%}–{ci.high:.1%}", escape(c.basis),
            f"{c.estimated_train_seconds:.0f} s", escape(c.latency_class),
            "[bold]← chosen[/bold]" if key == rec.chosen_candidate else ("" if c.eligible else "not eligible"),
        )
    console.print(cands)
    console.print("[bold]Why[/bold]")
    for i, sentence in enumerate(rec.rationale, start=1):
        console.print(f" {i}. {escape(sentence)}")
    suspects = plan.signals.label_noise.suspects
    if suspects:
        console.print(f"[bold]{len(suspects)} suspect labels[/bold] (first 5; all in --json):")
        for s in suspects[:5]:
            console.print(escape(f"  line {s.line or s.index}: {s.given_label!r} → {s.suggested_label!r} ({s.score:.2f}) {s.text[:70]!r}"))
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")
