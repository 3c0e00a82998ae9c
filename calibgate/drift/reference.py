"""The reference drift is measured against: the training data of the version in production.

The registry's version record carries the lineage: the git commit the run was
trained at and the DVC md5 of its data. The training file is read with
``dvc.api`` at that commit (through the DVC remote configured there), after
checking that ``<dvc_target>.dvc`` at that commit holds the recorded md5, so
a drift report never compares production with data the model never saw.
Without a production version (a new project) the reference is ``data.train``
in the workspace, and its name says so.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path


from calibgate.errors import DataError
from calibgate.paths import read_user_text
from calibgate.settings import ProjectConfig

PRODUCTION = "production"
ROLES = {"train": "training data", "test": "held-out test data"}


@dataclass(frozen=True)
class Reference:
    """Training texts and where they came from (``name`` goes into every sentence of the report)."""

    texts: list[str]
    name: str  # the full story: what, whose, which file at which commit, which DVC md5
    path: str
    n_total: int
    label: str = ""  # short form for sentences ("training data of router@v1.0.0")
    version: str | None = None  # "name@vX.Y.Z" of the production version, when there is one
    rev: str | None = None  # git commit the data was read at
    dvc_md5: str | None = None


@dataclass(frozen=True)
class ProductionVersion:
    ref: str  # name@vX.Y.Z
    rev: str | None  # commit the run was trained at
    dvc_md5: str | None
    label_names: list[str]


def production_version(cfg: ProjectConfig, *, stage: str = PRODUCTION) -> ProductionVersion | None:
    """The version of ``cfg.name`` in ``stage`` with its lineage, or None (no git repo, nothing promoted yet)."""
    from calibgate.errors import RegistryError
    from calibgate.registry.common import open_repo
    from calibgate.registry.state import read_state

    try:
        git = open_repo(cfg.root)
    except RegistryError:
        return None
    model = read_state(git, cfg.name).get(cfg.name)
    version = model.current(stage) if model else None
    if version is None:
        return None
    record = model.versions[version].record
    if record is None:
        raise DataError(
            f"{cfg.name}@{version} in {stage} has no calibgate record, so its training data is unknown",
            fix="pass --reference the training data JSONL, or register versions with calibgate",
        )
    lineage = record.lineage
    return ProductionVersion(
        f"{cfg.name}@{version}", lineage.run_git_commit or lineage.git_commit, lineage.data_dvc_md5, lineage.label_names
    )


def load_reference(
    cfg: ProjectConfig,
    *,
    reference: str | Path | None = None,
    production: ProductionVersion | None = None,
    role: str = "train",
    max_texts: int = 2000,
    seed: int = 0,
) -> Reference:
    """The texts drift compares against: ``reference`` if given, else the production version's ``data.<role>``.

    ``role`` "train" is what the model was trained on (the domain classifier's
    reference); "test" is held out at the same revision (the output-shift
    reference: a model is more confident on its own training texts, so its
    outputs there are not what it gives on unseen texts of the same source).
    """
    if reference is not None:
        text = read_user_text(reference, what="reference data", fix="pass --reference a JSONL file of {\"text\": ...} rows")
        texts = _texts(text, str(reference))
        return _sampled(texts, f"reference data {reference}", str(reference), max_texts, seed, "reference data")
    train = cfg.path(getattr(cfg.data, role))
    what = ROLES[role]
    rel = _relative(cfg, train)
    if production is None or production.rev is None:
        from calibgate.data.versions import ensure_pulled

        ensure_pulled(cfg.root, cfg.data.dvc_target, [train])
        texts = _texts(read_user_text(train, what=what, fix="set data.train in calibgate.yaml or pass --reference") if train.exists() else None, rel)
        why = "no production version in the registry" if production is None else f"{production.ref} records no commit"
        return _sampled(texts, f"{what} at HEAD ({rel}; {why})", rel, max_texts, seed, f"{what} at HEAD")
    _check_md5(cfg, production)
    text = read_at_revision(cfg.root, rel, production.rev)
    name = f"{what} of {production.ref} ({rel} at {production.rev[:7]}"
    name += f", DVC md5 {production.dvc_md5[:12]})" if production.dvc_md5 else ")"
    ref = _sampled(_texts(text, f"{rel}@{production.rev[:7]}"), name, rel, max_texts, seed, f"{what} of {production.ref}")
    return Reference(**{**ref.__dict__, "version": production.ref, "rev": production.rev, "dvc_md5": production.dvc_md5})


def read_at_revision(root: Path, path: str, rev: str) -> str:
    """Text of a DVC- or git-tracked file as of git ``rev``, through the DVC remote configured at that rev."""
    import dvc.api

    try:
        return dvc.api.read(path, repo=str(root), rev=rev, encoding="utf-8")
    except Exception as exc:  # dvc raises many types; all mean the data at that revision cannot be read
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(
            f"cannot read {path} at revision {rev[:12]} ({type(exc).__name__}: {first})",
            fix="fetch the full history (actions/checkout fetch-depth: 0) and check the data was pushed to the DVC remote",
        ) from None


def dvc_md5_at(root: Path, target: str, rev: str) -> str | None:
    """The md5 ``<target>.dvc`` records at git ``rev`` (None when the file is not there)."""
    from calibgate.registry.gitrepo import GitRepo

    from calibgate.data.versions import dvc_file_md5

    text = GitRepo(root).show_file(rev, f"{target}.dvc")
    if text is None:
        return None
    return dvc_file_md5(text, f"{target}.dvc at {rev[:12]}", target)


def _check_md5(cfg: ProjectConfig, production: ProductionVersion) -> None:
    target = cfg.data.dvc_target
    if not target or not production.dvc_md5:
        return
    at_rev = dvc_md5_at(cfg.root, target, production.rev)
    if at_rev != production.dvc_md5:
        raise DataError(
            f"{production.ref} was trained on data md5 {production.dvc_md5} but {target}.dvc at {production.rev[:12]} "
            f"records {at_rev}: its training data cannot be restored",
            fix="pass --reference the training data JSONL the production model was trained on",
        )


def _texts(text: str | None, source: str) -> list[str]:
    """The texts of a reference file, every row checked as the training and production readers check it: a row
    without a readable text was skipped in silence, and a byte-order mark that plan and train read refused the file."""
    from calibgate.data.jsonl import load_unlabeled

    if text is None:
        raise DataError(f"{source}: no such file", fix="pass --reference, or set data.train in calibgate.yaml")
    texts = list(load_unlabeled(source, content=text).texts)
    if len(texts) < 10:
        raise DataError(f"{source}: {len(texts)} texts, fewer than the 10 drift needs", fix="compare against the full training data")
    return texts


def _sampled(texts: list[str], name: str, path: str, max_texts: int, seed: int, label: str) -> Reference:
    n_total = len(texts)
    if n_total > max_texts:
        texts = random.Random(seed).sample(texts, max_texts)
    return Reference(texts=texts, name=name, path=path, n_total=n_total, label=label)


def _relative(cfg: ProjectConfig, path: Path) -> str:
    from calibgate.registry.gitrepo import GitRepo
    from calibgate.errors import RegistryError

    try:
        root = GitRepo(cfg.root).root
    except RegistryError:
        root = cfg.root
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)
