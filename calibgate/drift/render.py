"""Markdown for the drift issue, the retraining PR and the suggestion comment (formatting only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from calibgate.drift.suggest import Suggestion

MAX_TEXT = 200


def suggestions_markdown(suggestions: Sequence[Suggestion | Mapping], *, limit: int = 50) -> str:
    """A numbered table of the texts to label with the reason for each (empty string when there are none).

    Takes :class:`Suggestion` objects or their JSONL records (``drift.json`` carries records).
    """
    from calibgate.report.markdown import inline

    if not suggestions:
        return ""
    lines = [
        f"**Texts worth labeling** ({len(suggestions)} picked for uncertainty under the production model, difference "
        "from its training data and diversity; `calibgate suggest-labels` writes them as JSONL for a labeling tool):",
        "",
        "| # | text | model says | why |",
        "|---|---|---|---|",
    ]
    for s in list(suggestions)[:limit]:
        r = s.record() if isinstance(s, Suggestion) else s  # a record read back from drift.json: any JSON, escaped
        confidence = r.get("confidence")
        shown = f" ({confidence:.2f})" if isinstance(confidence, (int, float)) and not isinstance(confidence, bool) else ""
        said = f"{inline(r['predicted'])}{shown}" if r.get("predicted") is not None else "-"
        lines.append(f"| {inline(r.get('rank', ''))} | {_cell(str(r.get('text', '')))} | {said} | {_cell(str(r.get('reason', '')))} |")
    if len(suggestions) > limit:
        lines.append(f"\n…and {len(suggestions) - limit} more in the JSONL file.")
    return "\n".join(lines) + "\n"


def drift_body(
    *,
    name: str,
    summary: str,
    domain_lines: Sequence[str],
    output_lines: Sequence[str],
    production: str,
    n_production: int,
    reference: str,
    n_reference: int,
    suggestions: Sequence[Suggestion | Mapping],
    links: Mapping[str, str],
    next_step: str,
) -> str:
    from calibgate.report.markdown import code, inline, link

    lines = [
        f"**{inline(summary, limit=400)}**",
        "",
        f"- production sample: {code(production)} ({n_production:,} texts)",
        f"- reference: {inline(reference, limit=300)} ({n_reference:,} texts compared)",
        "",
        "Domain classifier on frozen embeddings (0.5 means indistinguishable):",
        *[f"- {inline(line, limit=400)}" for line in domain_lines],
        "",
        f"Black-box shift on {inline(name)}'s own outputs (Rabanser et al. 2019, \"Failing Loudly\"):",
        *[f"- {inline(line, limit=400)}" for line in output_lines],
    ]
    table = suggestions_markdown(suggestions)
    if table:
        lines += ["", table.rstrip("\n")]
    lines += ["", f"**Next:** {next_step}"]
    if links:
        lines += ["", " · ".join(made for k, v in links.items() if v.startswith("https://") and (made := link(k, v)))]
    return "\n".join(lines) + "\n"


def drift_summary(drifted, auc, threshold, outputs, note, n_prod, n_ref) -> str:
    """One line: drift or not, the domain-classifier AUC against its threshold, the output test against alpha."""
    parts = []
    if auc is not None:
        parts.append(f"domain-classifier AUC {auc:.3f} {'>' if auc > threshold else '<='} {threshold:.2f}")
    else:
        parts.append("domain-classifier AUC not measured")
    if outputs is not None:
        moved = f"; moved: {', '.join(m.label for m in outputs.moved[:5])}" if outputs.moved else ""
        parts.append(
            f"model outputs p={outputs.p_value:.3g} {'<' if outputs.drifted else '>='} alpha {outputs.alpha:g}{moved}"
        )
    else:
        parts.append(f"model outputs {note}")
    return f"{'drift' if drifted else 'no drift'}: " + ", ".join(parts) + f" ({n_prod} production vs {n_ref} training texts)"


def issue_body(cfg, summary, shift, outputs, note, production_path, prod_texts, ref, heldout, suggestions, links) -> str:
    """The drift issue: both views' evidence, the references they compared against, the texts to label, what next."""
    domain = list(shift.evidence or []) + ([shift.reading] if shift.reading else [])
    return drift_body(
        name=cfg.name, summary=summary, domain_lines=domain,
        output_lines=(outputs.evidence() + [f"reference for the outputs: {heldout.name}"]) if outputs is not None else [note],
        production=str(production_path), n_production=len(prod_texts), reference=ref.name, n_reference=len(ref.texts),
        suggestions=suggestions, links=links,
        next_step="label the texts above (or a fresh production sample) into `data.incoming`, then "
        "`calibgate retrain` merges them, records the data version with DVC and opens a PR that the gate judges.",
    )


def _cell(text: str) -> str:
    from calibgate.report.markdown import inline

    return inline(text, limit=MAX_TEXT)  # inline() already escapes '|' for tables
