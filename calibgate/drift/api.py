"""``calibgate suggest-labels``: the production texts most worth labeling next, as JSONL for a labeling tool."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibgate.drift.suggest import Suggestion
from calibgate.errors import ConfigError
from calibgate.runs.guard import check_outside_runs
from calibgate.settings import load_config


@dataclass(frozen=True)
class SuggestResult:
    suggestions: list[Suggestion]
    pool: str
    n_pool: int
    model: str | None  # what scored uncertainty: a run directory or name@version; None: not used
    reference: str | None  # what the shift score compared against
    notes: list[str] = field(default_factory=list)
    out: Path | None = None
    comment: dict | None = None  # {"pull": N, "id": comment id} when posted

    def records(self) -> list[dict]:
        return [s.record() for s in self.suggestions]


def suggest_labels(
    *,
    pool: str | Path | None = None,
    budget: int = 50,
    config: str | Path | None = None,
    policy: str | Path | None = None,
    model: str | Path | None = None,
    reference: str | Path | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    repo: str | None = None,
    comment: bool = False,
    client: Any = None,
) -> SuggestResult:
    """Pick ``budget`` texts of ``pool`` (default ``data.production``): uncertain, unlike the training data, diverse.

    ``model`` defaults to the production version in the registry and
    ``reference`` to that version's training data; without either, the
    corresponding part of the score is left out and a note says so. With
    ``comment``, the list is posted on the open retraining PR of ``repo``.
    """
    from calibgate.data.jsonl import load_unlabeled, write_jsonl
    from calibgate.drift.record import load_thresholds
    from calibgate.drift.reference import load_reference, production_version
    from calibgate.drift.scoring import embed, model_probs, model_run_dir
    from calibgate.drift.suggest import suggest_labels as pick

    if budget < 1:
        raise ConfigError(f"--budget {budget} must be at least 1", fix="e.g. --budget 50")
    if comment and not repo:
        raise ConfigError("commenting the suggestions needs the repository", fix="pass --repo owner/name")
    if comment and client is None:  # a missing token is exit 2 now, not after the scoring, with -o already written
        from calibgate.github import GitHubClient

        client = GitHubClient.from_env()
    if out is not None:
        check_outside_runs(out, what="--out", file=True)
    cfg = load_config(config)
    thresholds, _ = load_thresholds(cfg, policy)
    pool = pool if pool is not None else cfg.path(cfg.data.production)
    if pool is None:
        raise ConfigError("no pool of unlabeled texts", fix="pass --pool production.jsonl or set data.production")
    texts = list(load_unlabeled(pool).texts)
    notes: list[str] = []
    version = production_version(cfg) if model is None or reference is None else None
    ref_vectors = ref_name = None
    if reference is not None or version is not None:
        ref = load_reference(cfg, reference=reference, production=version, max_texts=thresholds.max_reference, seed=seed)
        ref_vectors, ref_name = embed(cfg, ref.texts), ref.name
    else:
        notes.append("no production version and no --reference: the shift score is not used")
    probs = label_names = None
    model_name = str(model) if model is not None else (None if version is None else version.ref)
    with model_run_dir(cfg, model=model, version=None if version is None else version.ref) as run_dir:
        if run_dir is not None:
            probs, label_names = model_probs(run_dir, texts)
        else:
            notes.append("no production version and no --model: uncertainty is not used")
    suggestions = pick(
        texts, embed(cfg, texts), budget=budget, pred_probs=probs, label_names=label_names,
        reference_embeddings=ref_vectors, seed=seed,
    )
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        write_jsonl(out_path, (s.record() for s in suggestions))
    posted = _comment(cfg, repo, suggestions, thresholds, client) if comment else None
    if comment and posted is None:
        notes.append("no open retraining pull request to comment on: the list was not posted")
    return SuggestResult(
        suggestions=suggestions, pool=str(pool), n_pool=len(texts), model=model_name, reference=ref_name,
        notes=notes, out=out_path, comment=posted,
    )


def _comment(cfg, repo, suggestions, thresholds, client) -> dict | None:
    """Post the list on the open retraining PR (found by its head branch), updating our earlier comment."""
    from calibgate.drift.render import suggestions_markdown
    from calibgate.github import GitHubClient, upsert_comment
    from calibgate.github.client import answer_number
    from calibgate.github.comments import marker

    github = client or GitHubClient.from_env()
    branch = f"{thresholds.retrain_branch}/{cfg.name}"
    pulls = github.list_pulls(repo, head=f"{repo.split('/')[0]}:{branch}", state="open")
    if not pulls:
        return None
    number = answer_number(pulls[0], "number", what=f"the open pull request of {branch}")
    body = marker(cfg.name, kind="calibgate-to-label") + "\n" + suggestions_markdown(suggestions)
    posted = upsert_comment(github, repo, number, body)
    return {"pull": number, "id": posted.id, "action": posted.action}
