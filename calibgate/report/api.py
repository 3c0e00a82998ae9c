"""``render_report``: gate decision, plan, evaluations and export -> one PR comment in markdown.

A pure function: records in, a string out. The comment starts with a hidden
marker so re-runs edit it in place, and stays under ``max_chars`` (GitHub
refuses comments over 65,536 characters) by shortening the lowest-priority
sections first and saying so in the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from calibgate import __version__
from calibgate.errors import ConfigError, InputError
from calibgate.records.evaluation import EvaluationResult
from calibgate.records.export import ExportResult
from calibgate.github.client import MAX_COMMENT_CHARS
from calibgate.github.comments import marker
from calibgate.records.plan import Plan
from calibgate.records.decision import GateDecision
from calibgate.report import sections as sec
from calibgate.settings import describe_validation_error

GITHUB_COMMENT_LIMIT = MAX_COMMENT_CHARS
MIN_CHARS = 2000
_M = TypeVar("_M", bound=BaseModel)


def render_report(
    *,
    decision: GateDecision | Mapping[str, Any],
    plan: Plan | Mapping[str, Any] | None = None,
    candidate_eval: EvaluationResult | Mapping[str, Any] | None = None,
    baseline_eval: EvaluationResult | Mapping[str, Any] | None = None,
    export: ExportResult | Mapping[str, Any] | None = None,
    links: Mapping[str, str] | None = None,
    max_chars: int = 65000,
    name: str = "model",
) -> str:
    """The PR report: decision first, then signals and plan, metrics, per-class changes, latency, charts, suspects.

    ``name`` (the model's registry name) goes into the marker
    ``<!-- calibgate-report:<name> -->`` that identifies the comment.
    """
    decision = coerce(GateDecision, decision, "decision")
    plan = coerce(Plan, plan, "plan")
    candidate_eval = coerce(EvaluationResult, candidate_eval, "candidate evaluation")
    baseline_eval = coerce(EvaluationResult, baseline_eval, "baseline evaluation")
    export = coerce(ExportResult, export, "export")
    if not isinstance(max_chars, int) or not MIN_CHARS <= max_chars <= GITHUB_COMMENT_LIMIT:
        raise ConfigError(
            f"max_chars {max_chars!r} is outside {MIN_CHARS:,}..{GITHUB_COMMENT_LIMIT:,}", fix="use the default 65000"
        )

    top = f"{marker(name)}\n{sec.heading(decision, name)}"
    parts: list[sec.Section | None] = [sec.decision_section(decision)]
    if plan is not None:
        parts.append(sec.plan_section(plan))
    if candidate_eval is not None:
        parts += [
            sec.metrics_section(candidate_eval, baseline_eval),
            sec.regressions_section(candidate_eval, baseline_eval),
            sec.class_chart_section(candidate_eval, baseline_eval),
        ]
    if export is not None:
        parts.append(sec.latency_section(export))
    if plan is not None:
        parts += [sec.curve_section(plan), sec.suspects_section(plan)]
    parts.append(sec.links_section(dict(links or {})))
    return _assemble(top, [p for p in parts if p is not None], max_chars)


def coerce(model: type[_M], value: Any, what: str) -> _M | None:
    """A record given as a model or a mapping (parsed JSON); a clear :class:`InputError` otherwise."""
    if value is None or isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        raise InputError(
            f"{what}: expected a {model.__name__} record (a JSON object), got {type(value).__name__}",
            fix="pass the JSON file the producing command wrote",
        )
    from calibgate.records.versions import version_problem

    if problem := version_problem(model, value):  # the plan's class does not check it itself
        raise InputError(f"{what}: not a {model.__name__} record: 'schema_version': {problem}",
                         fix="pass the JSON file the producing command wrote")
    try:
        return model.model_validate(dict(value))
    except ValidationError as exc:
        raise InputError(
            f"{what}: not a {model.__name__} record: {describe_validation_error(exc, model)}",
            fix="pass the JSON file the producing command wrote",
        ) from None


def _assemble(top: str, sections: list[sec.Section], max_chars: int) -> str:
    """Join sections; while too long, step the lowest-priority shrinkable section to its next shorter variant."""
    variants = [s.all_variants() for s in sections]
    levels = [0] * len(sections)
    footer = f"<sub>calibgate {__version__} · this comment is updated in place on every run</sub>"

    def compose() -> str:
        notes = [variants[i][lvl].note for i, lvl in enumerate(levels) if lvl > 0]
        chunks = [top]
        for i, s in enumerate(sections):
            text = variants[i][levels[i]].text
            if text:
                chunks.append(text)
            if s.key == "decision" and notes:
                chunks.append(
                    f"> ✂️ Shortened to fit GitHub's {GITHUB_COMMENT_LIMIT - 1:,}-character comment limit: "
                    + "; ".join(notes)
                    + ". The full records are in the run's artifact."
                )
        chunks.append(footer)
        return "\n\n".join(chunks) + "\n"

    text = compose()
    while len(text) > max_chars:
        shrinkable = [i for i in range(len(sections)) if levels[i] < len(variants[i]) - 1]
        if not shrinkable:
            return _hard_cut(text, max_chars)
        levels[min(shrinkable, key=lambda i: sections[i].priority)] += 1
        text = compose()
    return text


def _hard_cut(text: str, max_chars: int) -> str:
    """Last resort: cut at a line boundary and close an open code fence or details block."""
    note = "\n\n> ✂️ The report was cut here to fit GitHub's comment limit; see the run's artifact.\n"
    room = max_chars - len(note) - len("\n```\n</details>")
    head = text[:room].rsplit("\n", 1)[0]
    if head.count("```") % 2:
        head += "\n```"
    if head.count("<details") > head.count("</details>"):
        head += "\n</details>"
    return head + note
