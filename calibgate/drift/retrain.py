"""``calibgate retrain``: newly labeled data -> merged training set -> new DVC version -> re-plan -> pull request.

1. rows under ``data.incoming`` are merged into ``data.train`` (:mod:`calibgate.drift.merge`);
2. ``dvc add <data.dvc_target>`` records the new data version and ``dvc push``
   stores it in the DVC remote;
3. the planner re-plans on the merged data;
4. on GitHub, through the git data API: a commit on top of the base branch
   that changes ``<dvc_target>.dvc``, then the branch ``drift.retrain_branch``
   + ``/<name>`` pointing at it, then a pull request with the merge report, the
   plan, the drift evidence and the texts worth labeling. The PR runs the usual
   gate, so nothing reaches the registry without it.

Safe under repetition: while the retraining PR is open, a second run moves its
branch to a fresh commit on the base and updates the PR (found by its head
branch) instead of opening another. Safe under failure: the workspace is
restored whatever happens (the PR carries the change, not the checkout); the
branch is only created or moved once the commit exists, and moved back or
deleted if the pull request cannot be opened; so a refused push or a failed
``dvc push`` leaves no branch, no tag and no commit on any branch behind, and
the error says which step failed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from calibgate.drift.merge import MergeReport
from calibgate.errors import ConfigError, EnvironmentFailure
from calibgate.paths import read_user_text
from calibgate.settings import ProjectConfig, load_config

Action = Literal["none", "dry-run", "opened", "updated"]
MAX_PLAN_CHARS = 20_000


@dataclass(frozen=True)
class RetrainResult:
    """What a retrain run did; ``action`` "none" means there was no new labeled data."""

    action: Action
    reason: str
    merge: MergeReport | None = None
    branch: str | None = None
    base: str | None = None
    commit: str | None = None
    data_md5: str | None = None
    pull_number: int | None = None
    pull_url: str | None = None
    title: str = ""
    body: str = ""
    plan_strategy: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    restored: list[str] = field(default_factory=list)  # files an interrupted retrain had left merged, put back first

    def summary(self) -> dict[str, Any]:
        """One-line JSON for workflows (``calibgate retrain --json``)."""
        merge = self.merge
        return {
            "action": self.action, "reason": self.reason, "branch": self.branch, "commit": self.commit,
            "data_md5": self.data_md5, "pull": self.pull_number, "url": self.pull_url, "strategy": self.plan_strategy,
            "added": None if merge is None else len(merge.added),
            "duplicates": None if merge is None else merge.duplicates,
            "conflicts": None if merge is None else len(merge.conflicts),
            "restored": self.restored,
        }


def retrain(
    *,
    config: str | Path | None = None,
    policy: str | Path | None = None,
    repo: str | None = None,
    base: str = "main",
    drift: str | Path | None = None,
    dvc_remote: str | None = None,
    allow_new_labels: bool = False,
    dry_run: bool = False,
    client: Any = None,
) -> RetrainResult:
    """Merge ``data.incoming`` into ``data.train``, record it with DVC, re-plan and open (or update) the retraining PR.

    ``drift``: a ``calibgate drift --out`` directory whose evidence and
    suggested texts go into the PR body. ``dry_run``: merge, ``dvc add`` and
    re-plan but push and open nothing (the workspace is restored either way).
    """
    import dataclasses

    cfg = load_config(config, required=True)
    restored = _restore_interrupted(cfg)  # a retrain killed midway left its merge in the workspace: put it back first
    result = _retrain(cfg, policy=policy, repo=repo, base=base, drift=drift, dvc_remote=dvc_remote,
                      allow_new_labels=allow_new_labels, dry_run=dry_run, client=client)
    return dataclasses.replace(result, restored=restored) if restored else result


def _retrain(cfg: ProjectConfig, *, policy, repo, base, drift, dvc_remote, allow_new_labels, dry_run, client) -> RetrainResult:
    from calibgate.data.versions import ensure_pulled, tracked_file_matches
    from calibgate.drift.merge import merge_labels, read_incoming
    from calibgate.drift.record import load_thresholds, read_record
    from calibgate.github.client import validate_branch

    target, train_path, incoming_path = _paths(cfg)
    if not dry_run and not repo:
        raise ConfigError("opening the retraining PR needs the repository", fix="pass --repo owner/name, or --dry-run")
    thresholds, _ = load_thresholds(cfg, policy)
    record = read_record(drift) if drift is not None else None
    branch = validate_branch(f"{thresholds.retrain_branch}/{cfg.name}")  # before anything is pushed
    ensure_pulled(cfg.root, target, [train_path])
    if not incoming_path.exists():
        return RetrainResult("none", f"no newly labeled data: {_rel(cfg, incoming_path)} does not exist")
    if tracked_file_matches(cfg.root, target, train_path) is False:  # a retrain killed midway left its merge behind
        raise ConfigError(
            f"{_rel(cfg, train_path)} differs from the version {target}.dvc records (a retrain stopped midway, or an "
            "edit not recorded): merging into it would record rows no one reviewed",
            fix=f"restore it with 'dvc checkout {target}', or record the edit with 'dvc add {target}' and commit, then rerun",
        )
    incoming = read_incoming(incoming_path)
    train_text = read_user_text(train_path, what="training data", fix="restore it (dvc pull / git checkout) or fix data.train in calibgate.yaml")
    merge = merge_labels(_rows(train_text, train_path), incoming, allow_new_labels=allow_new_labels)
    if not merge.added:
        why = f"{merge.duplicates} already in the training data" + (f", {len(merge.conflicts)} conflicting" if merge.conflicts else "")
        return RetrainResult("none", f"no new labeled rows in {_rel(cfg, incoming_path)} ({why})", merge=merge, branch=branch)

    github, base_sha = _preflight(cfg, target, repo, base, dry_run, client)
    dvc_file = f"{target}.dvc"
    data_md5, dvc_text, plan = _record_data(cfg, target, train_path, train_text, merge, dvc_remote, policy)
    title = f"calibgate: retrain {cfg.name} on {len(merge.added)} newly labeled examples"
    body = _body(cfg, merge, data_md5, plan, record, _rel(cfg, incoming_path), _rel(cfg, train_path))
    files = {dvc_file: dvc_text}
    if dry_run:
        return RetrainResult(
            "dry-run", "nothing pushed or opened (--dry-run)", merge=merge, branch=branch, base=base, data_md5=data_md5,
            title=title, body=body, plan_strategy=plan.recommendation.strategy, files=files,
        )
    message = f"{title}\n\nData version {data_md5} ({_rel(cfg, train_path)} +{len(merge.added)} rows), pushed to the DVC remote.\n"
    action, number, url, commit = _publish(github, repo, base_sha, branch, base, files, message, title, body)
    return RetrainResult(
        action, f"pull request #{number} {action}", merge=merge, branch=branch, base=base, commit=commit,
        data_md5=data_md5, pull_number=number, pull_url=url, title=title, body=body,
        plan_strategy=plan.recommendation.strategy, files=files,
    )


def retrain_marker(name: str) -> str:
    from calibgate.github.comments import marker

    return marker(name, kind="calibgate-retrain")


# -- steps -------------------------------------------------------------------------------------


def _paths(cfg: ProjectConfig) -> tuple[str, Path, Path]:
    if not cfg.data.incoming:
        raise ConfigError(
            "no data.incoming configured: retrain does not know where newly labeled data arrives",
            fix="set data.incoming in calibgate.yaml (a JSONL file or directory inside data.dvc_target)",
        )
    if not cfg.data.dvc_target:
        raise ConfigError("retrain records the new data version with DVC, but data.dvc_target is not set", fix="set data.dvc_target (e.g. datasets)")
    target = cfg.path(cfg.data.dvc_target).resolve()
    for key, value in (("data.train", cfg.data.train), ("data.incoming", cfg.data.incoming)):
        path = cfg.path(value)
        if path is None or not path.resolve().is_relative_to(target):  # outside: read from anywhere, recorded nowhere
            raise ConfigError(f"{key} {value!r} is not inside data.dvc_target {cfg.data.dvc_target!r}: retrain records "
                              "the merged data as that DVC version, so both must live in it",
                              fix=f"move it under {cfg.data.dvc_target}/ and point {key} there")
    return cfg.data.dvc_target, cfg.path(cfg.data.train), cfg.path(cfg.data.incoming)


def _preflight(cfg: ProjectConfig, target: str, repo, base: str, dry_run: bool, client):
    """Checks before anything is written: a clean ``<target>.dvc`` and, to publish, origin's base == this checkout."""
    from calibgate.registry.gitrepo import GitRepo

    git = GitRepo(cfg.root)
    if git.git("status", "--porcelain", "--", f"{target}.dvc").strip():
        raise ConfigError(f"{target}.dvc has uncommitted changes", fix=f"commit or revert {target}.dvc first")
    if dry_run:
        return None, git.head()
    from calibgate.github import GitHubClient

    github = client or GitHubClient.from_env()
    base_sha = github.get_branch_sha(repo, base)
    if base_sha is None:
        raise ConfigError(f"{repo} has no branch {base!r}", fix="pass --base the branch the PR should target")
    if base_sha != git.head():
        raise ConfigError(
            f"{repo}:{base} is at {base_sha[:12]} but this checkout is at {git.head()[:12]}",
            fix=f"check out the latest {base} (git pull) and rerun, so the PR changes only the data",
        )
    return github, base_sha


def _record_data(cfg, target, train_path: Path, train_text: str, merge: MergeReport, dvc_remote, policy):
    """Write the merged data, ``dvc add`` + ``dvc push``, re-plan; restore the workspace whatever happens."""
    from calibgate.data.versions import tracked_md5
    from calibgate.drift.merge import appended_text
    from calibgate.planner.api import plan as make_plan

    from calibgate.paths import atomic_write_text

    dvc_path = cfg.root / f"{target}.dvc"
    saved = {train_path: train_path.read_bytes(), dvc_path: dvc_path.read_bytes()}
    _write_journal(cfg, saved)  # before the first change: a kill -9 from here on is undone by the next retrain
    try:
        atomic_write_text(train_path, appended_text(train_text, merge.added))
        _dvc(cfg.root, "add", target=target)
        _dvc(cfg.root, "push", target=target, remote=dvc_remote)
        data_md5 = tracked_md5(cfg.root, target)
        plan = make_plan(config=cfg, policy=policy)
        return data_md5, dvc_path.read_text(encoding="utf-8"), plan
    finally:
        _restore_interrupted(cfg)


JOURNAL = Path(".dvc") / "tmp" / "calibgate-retrain-restore"  # under .dvc/tmp, which DVC keeps out of git


def _write_journal(cfg, saved: dict[Path, bytes]) -> None:
    """The files retrain is about to change, as they are, published whole (a directory renamed into place)."""
    import shutil

    from calibgate.paths import atomic_write_bytes

    journal = cfg.root / JOURNAL
    staging = journal.with_name(journal.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    index = {}
    for number, (path, data) in enumerate(saved.items()):
        atomic_write_bytes(staging / f"{number}.bin", data)
        index[path.resolve().relative_to(cfg.root.resolve()).as_posix()] = f"{number}.bin"
    atomic_write_bytes(staging / "index.json", json.dumps(index).encode("utf-8"))
    os.replace(staging, journal)


def _restore_interrupted(cfg) -> list[str]:
    """Put back what the journal saved (after retrain's own changes, or a retrain killed midway), then drop it; the
    files restored, relative to the project."""
    import shutil

    from calibgate.paths import atomic_write_bytes, safe_join

    journal = cfg.root / JOURNAL
    shutil.rmtree(journal.with_name(journal.name + ".new"), ignore_errors=True)  # killed before it was complete
    if not journal.is_dir():
        return []
    index = json.loads((journal / "index.json").read_text(encoding="utf-8"))
    for rel, name in index.items():
        atomic_write_bytes(safe_join(cfg.root, rel, what="retrain journal entry"), (journal / name).read_bytes())
    shutil.rmtree(journal)
    return sorted(index)


def _dvc(root: Path, step: str, *, target: str, remote: str | None = None) -> None:
    try:
        from dvc.repo import Repo
    except ImportError:
        from calibgate.errors import MissingDependencyError

        raise MissingDependencyError("retrain needs dvc", fix="pip install dvc") from None
    from calibgate.data.versions import quiet_dvc

    try:  # DVC's hints ('To track the changes with git, run: ...') went to stdout, before the --json line
        with quiet_dvc(), Repo(str(root)) as repo:
            if step == "add":
                repo.add(str(root / target))
            else:
                repo.push(targets=[str(root / f"{target}.dvc")], remote=remote)
    except Exception as exc:  # dvc raises many types; each means this step failed
        first = str(exc).splitlines()[0] if str(exc) else ""
        where = f"to remote {remote!r}" if remote else "to the default remote"
        raise EnvironmentFailure(
            f"'dvc {step} {target}' failed{' ' + where if step == 'push' else ''} ({type(exc).__name__}: {first}); "
            "the workspace was restored and no branch or pull request was made",
            fix="check the DVC remote ('dvc remote list') and its credentials, then rerun",
        ) from None


def _publish(github, repo, base_sha, branch, base, files, message, title, body):
    """Commit, then move or create the branch, then open or update the PR; undo the branch if the PR step fails."""
    from calibgate.github.client import answer_number, answer_url
    from calibgate.github.errors import GitHubError

    def failed(step: str, exc: GitHubError, undone: str) -> GitHubError:
        return type(exc)(f"retraining {step} failed: {exc.message}; {undone}", fix=exc.fix, status=exc.status)

    try:
        commit = github.create_commit(repo, parent=base_sha, files=files, message=message)
        previous = github.get_branch_sha(repo, branch)
        owner = repo.split("/")[0]
        open_pulls = github.list_pulls(repo, head=f"{owner}:{branch}", state="open")
        if previous is None:
            github.create_branch(repo, branch, commit)
        else:
            github.update_branch(repo, branch, commit, force=True)  # the bot's branch: always one commit on the base
    except GitHubError as exc:
        raise failed(f"push of branch {branch}", exc, "no branch was created or moved and no pull request opened") from None
    try:
        if open_pulls:
            pull = github.update_pull(repo, answer_number(open_pulls[0], "number", what=f"the open pull request of {branch}"),
                                      title=title, body=body)
            action = "updated"
        else:
            pull = github.create_pull(repo, title=title, head=branch, base=base, body=body)
            action = "opened"
    except GitHubError as exc:
        try:
            if previous is None:
                github.delete_branch(repo, branch)
                undone = f"branch {branch} was deleted again"
            else:
                github.update_branch(repo, branch, previous, force=True)
                undone = f"branch {branch} was moved back to {previous[:12]}"
        except GitHubError as undo:
            undone = f"and undoing branch {branch} failed too ({undo.message}): delete it by hand"
        raise failed("pull request", exc, undone) from None
    try:
        number = answer_number(pull, "number", what=f"the pull request of {branch}")
    except GitHubError as exc:
        raise failed("pull request", exc, f"branch {branch} was pushed and a pull request may be open: check it") from None
    return action, number, answer_url(pull), commit


# -- rendering ---------------------------------------------------------------------------------


def _body(cfg, merge: MergeReport, data_md5, plan, record, incoming_rel, train_rel) -> str:
    from calibgate.report.markdown import code, inline
    from calibgate.report.plan_view import render_markdown

    counts = ", ".join(f"{code(k)} {v}" for k, v in merge.label_counts.items())
    lines = [
        retrain_marker(cfg.name),
        f"## Retrain {inline(cfg.name)} on newly labeled data",
        "",
        f"- merged **{len(merge.added)}** new rows from {code(incoming_rel)} into {code(train_rel)} ({counts})",
        f"- skipped {merge.duplicates} duplicates of texts already labeled",
        f"- new data version: DVC md5 {code(data_md5 or '?')}, pushed to the DVC remote (`dvc pull` restores it)",
    ]
    if merge.new_labels:
        lines.append(f"- **new labels** (allowed with --allow-new-labels): {', '.join(code(x) for x in merge.new_labels)}")
    if merge.conflicts:
        lines += ["", f"**{len(merge.conflicts)} conflicting rows were not merged** (resolve them in {code(incoming_rel)}):", "",
                  "| text | labels | conflicts with |", "|---|---|---|"]
        for c in merge.conflicts[:50]:
            lines.append(f"| {inline(c.text, limit=200)} | {', '.join(code(x) for x in c.labels)} | {c.where} |")
    lines += [
        "",
        "The gate runs on this PR like on any data change: it retrains with the plan below, evaluates against the "
        "production model and blocks a regression. Merge only when it passes; promotion still needs its approvals.",
    ]
    if record is not None:  # the drift evidence, with the texts worth labeling next: re-rendered from its fields
        lines += ["", "### Why: drift", "", _drift_evidence(record)]
    plan_md = render_markdown(plan)
    if len(plan_md) > MAX_PLAN_CHARS:
        plan_md = plan_md[:MAX_PLAN_CHARS] + "\n\n…(plan cut; the gate's report has all of it)\n"
    lines += ["", "<details><summary>Plan on the merged data</summary>", "", plan_md.strip(), "", "</details>"]
    return "\n".join(lines) + "\n"


def _drift_evidence(record) -> str:
    """The drift record's findings, rendered from its fields and escaped: its ``body`` is text in a file on disk, and
    pasted as it stood, a hand-edited drift.json could put anything in the pull request."""
    from calibgate.drift.render import suggestions_markdown
    from calibgate.report.markdown import code, inline, num

    lines = [
        f"**{inline(record.summary, limit=400)}**",
        "",
        f"- domain classifier AUC {num(record.domain_auc)} (drifted above {num(record.domain_threshold)})",
        f"- output shift p-value {num(record.output_p_value)} (alpha {num(record.alpha)})",
        f"- reference: {inline(record.reference, limit=300)} ({record.n_reference:,} texts); production: "
        f"{record.n_production:,} texts" + (f", served by {code(record.production_version)}" if record.production_version else ""),
    ]
    if record.moved_classes:
        lines.append(f"- classes whose predicted share moved: {', '.join(code(c) for c in record.moved_classes[:20])}")
    table = suggestions_markdown(record.suggestions)
    return "\n".join(lines) + ("\n\n" + table.strip() if table else "")


def _rows(text: str, path: Path) -> list[dict]:
    """The training file's rows, checked as 'calibgate train' checks them: a row it would refuse was left out of the
    merge in silence (and then failed the pull request's training), a byte-order mark refused the whole file."""
    from calibgate.data.jsonl import load_labeled

    data = load_labeled(path, min_classes=1, content=text)
    return [{"text": t, "label": label} for t, label in zip(data.texts, data.label_strings(), strict=True)]


def _rel(cfg: ProjectConfig, path: Path) -> str:
    try:
        return path.resolve().relative_to(cfg.root.resolve()).as_posix()
    except ValueError:
        return str(path)
