"""``calibgate drift``: has production moved away from the production model's training data?

Two views, both against the training data recorded in the production
version's lineage (:mod:`calibgate.drift.reference`):

1. the domain classifier on frozen embeddings (:func:`calibgate.signals.shift.measure_shift`),
   called with the policy's threshold and the reference's real name;
2. black-box shift on the production model's own outputs (:mod:`calibgate.drift.outputs`),
   against its outputs on the held-out test data of the same revision.

Either one past its threshold is drift. The result carries the report text,
the texts worth labeling (:mod:`calibgate.drift.suggest`) and, unless it is a
dry run, the issue it opened or commented on. With ``out`` the record
(``drift.json``), the report (``drift.md``) and ``to-label.jsonl`` are written
there for the next workflow step (``calibgate retrain --drift DIR``;
the record is :mod:`calibgate.drift.record`, the texts :mod:`calibgate.drift.render`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibgate.drift.outputs import OutputShift
from calibgate.drift.record import DriftRecord, check_outputs, load_thresholds, write_outputs
from calibgate.drift.reference import Reference
from calibgate.drift.render import drift_summary, issue_body
from calibgate.drift.suggest import Suggestion
from calibgate.errors import ConfigError
from calibgate.github.issues import PostedIssue
from calibgate.records.thresholds import DriftThresholds
from calibgate.runs.guard import check_outside_runs
from calibgate.settings import ProjectConfig, load_config


@dataclass(frozen=True)
class DriftResult:
    """The measurements, whether they count as drift, the issue text and what was posted."""

    drifted: bool
    auc: float | None
    threshold: float
    summary: str
    title: str
    body: str
    shift: Any  # the DomainShift record of the embedding view
    reference: Reference
    outputs: OutputShift | None = None
    outputs_note: str = ""
    suggestions: list[Suggestion] = field(default_factory=list)
    issue: PostedIssue | None = None
    record: DriftRecord | None = None


def drift(
    *,
    config: str | Path | None = None,
    production: str | Path | None = None,
    reference: str | Path | None = None,
    threshold: float | None = None,
    policy: str | Path | None = None,
    model: str | Path | None = None,
    repo: str | None = None,
    dry_run: bool = False,
    seed: int = 0,
    out: str | Path | None = None,
    links: Mapping[str, str] | None = None,
    client: Any = None,
) -> DriftResult:
    """Measure drift of a production sample from the production version's training data; open an issue on drift.

    ``threshold`` overrides the policy's ``drift.max_domain_auc`` (default:
    ``planner.max_shift_auc``). ``model``: a run directory to score outputs
    with (default: the production version, restored from the registry).
    Without ``dry_run`` and on drift, ``repo`` gets an issue (or a comment on
    the open one).
    """
    from calibgate.data.jsonl import load_unlabeled
    from calibgate.drift.reference import load_reference, production_version

    cfg = load_config(config)
    thresholds, planner_auc = load_thresholds(cfg, policy)
    threshold = threshold if threshold is not None else (thresholds.max_domain_auc or planner_auc)
    if not 0.5 <= threshold <= 1:
        raise ConfigError(f"drift threshold {threshold} is outside 0.5..1", fix="pass a domain-classifier AUC such as 0.75")
    production_path = Path(production) if production is not None else cfg.path(cfg.data.production)
    if production_path is None:
        raise ConfigError("no production sample configured", fix="pass --production prod.jsonl or set data.production")
    if not dry_run and not repo:
        raise ConfigError("opening a drift issue needs the repository", fix="pass --repo owner/name, or --dry-run")
    if not dry_run and client is None:  # a missing token is exit 2 now, not after measuring, with --out already written
        from calibgate.github import GitHubClient

        client = GitHubClient.from_env()
    if out is not None:
        check_outside_runs(out, what="--out")
        check_outputs(Path(out))

    prod_texts = list(load_unlabeled(production_path, min_rows=thresholds.min_production).texts)
    version = None if reference is not None else production_version(cfg)
    ref = load_reference(
        cfg, reference=reference, production=version, max_texts=thresholds.max_reference, seed=seed
    )
    shift, prod_vectors, ref_vectors = _domain(cfg, ref, prod_texts, threshold=threshold, seed=seed)
    heldout = ref
    if reference is None and (model is not None or version is not None):  # outputs are measured: held-out texts
        heldout = load_reference(cfg, production=version, role="test", max_texts=thresholds.max_reference, seed=seed)
    outputs, note, pool_probs, label_names = _outputs(cfg, heldout, prod_texts, thresholds, model=model, version=version,
                                                      reference_given=reference is not None)
    auc = shift.auc
    drifted = (auc is not None and auc > threshold) or (outputs is not None and outputs.drifted)
    suggestions = _suggest(prod_texts, prod_vectors, ref_vectors, pool_probs, label_names, thresholds.suggest, seed)
    summary = drift_summary(drifted, auc, threshold, outputs, note, len(prod_texts), len(ref.texts))
    title = (
        f"calibgate: production data drifted from {cfg.name}'s training data"
        + (f" (AUC {auc:.2f})" if auc is not None else "")
    )
    body = issue_body(cfg, summary, shift, outputs, note, production_path, prod_texts, ref, heldout, suggestions, links or {})
    record = DriftRecord(
        name=cfg.name, drifted=drifted, summary=summary, domain_auc=auc, domain_threshold=threshold,
        output_p_value=None if outputs is None else outputs.p_value, alpha=thresholds.alpha,
        moved_classes=[] if outputs is None else [m.label for m in outputs.moved], reference=ref.name,
        production_version=None if version is None else version.ref, n_production=len(prod_texts),
        n_reference=len(ref.texts), body=body, suggestions=[s.record() for s in suggestions],
    )
    if out is not None:
        write_outputs(Path(out), record, suggestions)
    issue = None
    if drifted and not dry_run:
        issue = _open_issue(cfg, repo, title, body, client)
    return DriftResult(
        drifted=drifted, auc=auc, threshold=threshold, summary=summary, title=title, body=body, shift=shift,
        reference=ref, outputs=outputs, outputs_note=note, suggestions=suggestions, issue=issue, record=record,
    )


# -- private ------------------------------------------------------------------------------------


def _domain(cfg: ProjectConfig, ref: Reference, prod_texts: list[str], *, threshold: float, seed: int):
    from calibgate.drift.scoring import embed
    from calibgate.signals.shift import measure_shift

    ref_vectors = embed(cfg, ref.texts)
    prod_vectors = embed(cfg, prod_texts)
    shift = measure_shift(ref_vectors, prod_vectors, max_shift_auc=threshold, seed=seed, reference_name=ref.label)
    return shift, prod_vectors, ref_vectors


def _outputs(cfg, ref: Reference, prod_texts, thresholds: DriftThresholds, *, model, version, reference_given: bool):
    """(OutputShift or None, why not, production probabilities or None, label names or None)."""
    from calibgate.drift.outputs import output_shift
    from calibgate.drift.scoring import model_probs, model_run_dir

    with model_run_dir(cfg, model=model, version=None if version is None else version.ref) as run_dir:
        if run_dir is None:
            why = ("--reference replaces the production version, so no model is restored to score with; pass --model RUN"
                   if reference_given else "no production version in the registry and no --model to score with")
            return None, f"not measured: {why}", None, None
        ref_probs, label_names = model_probs(run_dir, ref.texts)
        prod_probs, _ = model_probs(run_dir, prod_texts)
    result = output_shift(
        ref_probs, prod_probs, label_names, alpha=thresholds.alpha, min_class_shift=thresholds.min_class_shift
    )
    return result, "", prod_probs, label_names


def _suggest(texts, vectors, ref_vectors, probs, label_names, budget, seed) -> list[Suggestion]:
    from calibgate.drift.suggest import suggest_labels

    if budget < 1:
        return []
    return suggest_labels(
        texts, vectors, budget=budget, pred_probs=probs, label_names=label_names, reference_embeddings=ref_vectors, seed=seed
    )


def _open_issue(cfg, repo, title, body, client) -> PostedIssue:
    from calibgate.github import GitHubClient
    from calibgate.github.comments import marker
    from calibgate.github.issues import open_or_comment_issue

    return open_or_comment_issue(
        client or GitHubClient.from_env(), repo, title=title, body=body,
        mark=marker(cfg.name, kind="calibgate-drift"), labels=("calibgate-drift",),
    )
