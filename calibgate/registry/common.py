"""Result models of the registry API and the helpers its operations share (repo, remote, references)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from calibgate.errors import RegistryError
from calibgate.progress import line
from calibgate.registry.gitrepo import GitRepo, PushRejected
from calibgate.registry.records import StageRecord, VersionRecord
from calibgate.registry.state import ModelState, StageEvent, read_state
from calibgate.registry.tags import is_valid_name, is_valid_version, parse_tag

PRODUCTION = "production"


class VersionInfo(BaseModel):
    """One version as ``registry list`` shows it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    tag: str
    commit: str
    created_at: str
    stages: list[str] = Field(default_factory=list, description="stages this version holds now")
    deprecated: bool = False
    run_id: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    record: VersionRecord | None = Field(None, description="None for versions registered by plain gto")


class StageAssignment(BaseModel):
    """The result of promote / rollback: the tag created and its record."""

    model_config = ConfigDict(extra="forbid")

    tag: str
    pushed_to: str | None
    record: StageRecord


class StageEventInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    version: str | None
    action: str
    counter: int
    tag: str
    created_at: str
    approved_by: list[str] = Field(default_factory=list)
    reason: str = ""
    rollout: dict | None = Field(None, description="rollout order and evidence recorded with a promotion (calibgate.registry.rollout)")


class VersionDetail(VersionInfo):
    """``registry show``: a version with its stage history."""

    history: list[StageEventInfo] = Field(default_factory=list)


class VerifyResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    backend: str
    url: str
    files: int
    size_bytes: int
    ok: bool = True


def open_repo(repo: str | Path | GitRepo | None) -> GitRepo:
    return repo if isinstance(repo, GitRepo) else GitRepo(repo or ".")


LOCK_TIMEOUT_S = 300.0
LOCK_NOTICE_S = 2.0  # after this, a waiting process says on stderr what it waits for


def registry_locked(func):
    """Decorator: run a registry operation under the working copy's registry lock (see :func:`registry_lock`).

    The operation's ``repo`` keyword names the working copy, as everywhere in the registry API.
    """
    import functools

    @functools.wraps(func)
    def locked(*args, **kwargs):
        git = open_repo(kwargs.get("repo"))
        git.check_identity()  # every operation ends in a tag: refuse before anything is pushed to a store
        git.check_signing()
        with registry_lock(git):
            return func(*args, **kwargs)

    return locked


@contextlib.contextmanager
def registry_lock(git: GitRepo, *, timeout: float = LOCK_TIMEOUT_S):
    """Hold the registry lock of ``git``'s working copy: read tags, decide, write tags, as one step.

    Two processes in one working copy (two CI steps, a script and a person)
    would otherwise both read the same tags, pick the same next counter or
    version, and both tag. The lock file lives in the git directory
    (``.git/calibgate-registry.lock``, shared by linked worktrees), so it is
    never committed. Clones on other machines are kept apart by the remote's
    atomic push instead (:func:`publish_tag`).
    """
    from filelock import FileLock, Timeout

    common = Path(git.git("rev-parse", "--git-common-dir").strip())
    path = (common if common.is_absolute() else git.root / common) / "calibgate-registry.lock"
    lock = FileLock(str(path), timeout=timeout)
    try:
        try:
            lock.acquire(timeout=min(LOCK_NOTICE_S, timeout))
        except Timeout:
            if timeout <= LOCK_NOTICE_S:
                raise
            # minutes of silence read as a hang: say what it waits for, once, and keep waiting
            line(f"registry: waiting for another calibgate process to release {path} (up to {timeout:g} s)")
            lock.acquire(timeout=timeout - LOCK_NOTICE_S)
    except Timeout:
        raise RegistryError(
            f"another calibgate process has held the registry lock {path} for over {timeout:g} s",
            fix="wait for it to finish; if none is running, delete the lock file and retry",
        ) from None
    except OSError as exc:  # a read-only or foreign checkout: it was "the output could not be written; redirect it"
        from calibgate.errors import EnvironmentFailure

        raise EnvironmentFailure(
            f"cannot create the registry lock {path}: {exc.strerror or type(exc).__name__}",
            fix="register, promote, roll back and deprecate write a lock and tags into the git directory: make it "
                "writable, with nothing but that lock file at that path (list, show and verify only read it)",
        ) from None
    try:
        yield
    finally:
        lock.release()


def sync_remote(git: GitRepo, remote: str | None, push: bool | None, fetch: bool) -> str | None:
    """The remote to push to (None: local only), after fetching its tags when asked."""
    if remote is not None and push is not False:
        _check_remote(git, remote)
    remote = remote or git.default_remote()
    if remote is None or push is False:
        return None
    if fetch:
        git.fetch_tags(remote)
    return remote


def _check_remote(git: GitRepo, remote: str) -> None:
    """A ``--remote`` that is neither a configured remote nor a URL or path is a typo: exit 2 naming the remotes
    there are, before anything is stored. It was an environment failure (exit 3) whose message was the last line
    of git's advice, 'and the repository exists.'."""
    remotes = git.git("remote").split()
    if remote in remotes or "://" in remote or ":" in remote or (git.root / remote).exists():
        return
    raise RegistryError(f"git has no remote named '{remote}' (remotes: {', '.join(remotes) or 'none'})",
                        fix="pass --remote with one of them, or add it first: git remote add NAME URL")


def publish_tag(git: GitRepo, remote: str | None, tag: str, *, version_tag: str | None = None) -> None:
    """Push ``tag``; on any failure delete it locally, so a clone never holds a tag its remote lacks.

    ``version_tag``: the version a stage or deprecation tag is about, pushed in the same atomic push (a no-op where
    the remote has it). A version registered with ``--no-push`` (or whose push a killed process never made) and then
    promoted used to give the remote a stage tag for a version it did not have, and every other clone's registry
    became unreadable.
    """
    if remote is None:
        return
    try:
        git.push_atomic(remote, [version_tag, tag] if version_tag else [tag])
    except PushRejected as exc:
        git.delete_tag(tag)
        raise RegistryError(
            f"push of {tag} to '{remote}' was rejected ({exc.message}): another clone changed the registry first",
            fix=f"git fetch --tags {remote}, check the registry (calibgate registry list) and retry",
        ) from None
    except Exception:
        git.delete_tag(tag)
        raise


def check_tag_free(git: GitRepo, tag: str, *, instead: str) -> None:
    """Refuse, before anything is stored or tagged, a tag name another tag already has that the registry does not read.

    A lightweight tag with a registry name ('git tag router@v1.1.0'), or an annotated tag of a tree or blob, is no
    version for calibgate or gto, so the next version (or deprecation) is given that name, and git refuses the tag
    only after the run was pushed to the store, with advice to fetch and retry that could never succeed.
    """
    if git.tag_exists(tag):
        raise RegistryError(
            f"a tag named {tag} exists but is no registry tag (a lightweight tag, or one of a tree, blob or tag; "
            "gto ignores it too), so the registry cannot use that name",
            fix=f"delete it if it was made by mistake (git tag -d '{tag}'; on the remote: git push --delete origin '{tag}'){instead}",
        )


def resolve_ref(ref: str, name: str | None, git: GitRepo) -> tuple[str, str]:
    """'name@v1.2.0' or 'v1.2.0' (``name``, else calibgate.yaml's) -> (name, version)."""
    if "@" in ref:
        try:
            tag = parse_tag(ref)
        except ValueError:
            raise RegistryError(f"'{ref}' is not a version reference", fix="write name@vX.Y.Z, e.g. model@v1.0.0") from None
        if tag.kind != "version" or tag.counter is not None:
            raise RegistryError(f"'{ref}' is not a version reference", fix="write name@vX.Y.Z, e.g. model@v1.0.0")
        if name is not None and name != tag.name:  # two names for one command: neither may win silently
            raise RegistryError(f"'{ref}' names model {tag.name}, but --name says {name}",
                                fix=f"drop --name, or pass the version alone: {tag.version}")
        return tag.name, tag.version  # type: ignore[return-value]
    if is_valid_version(ref):
        return default_name(name, git), ref
    raise RegistryError(f"'{ref}' is not a version reference", fix="write name@vX.Y.Z, e.g. model@v1.0.0")


def model_state(git: GitRepo, name: str) -> ModelState:
    return read_state(git, name).get(name) or ModelState(name)


def find_version(model: ModelState, version: str):
    found = model.versions.get(version)
    if found is None:
        known = ", ".join(v.version for v in model.sorted_versions()) or "none"
        raise RegistryError(f"{model.name}@{version} is not registered (versions: {known})", fix="calibgate registry list")
    return found


def project_config(git: GitRepo):
    """The project's calibgate.yaml: found upwards from the working directory when it is inside the repo (a project in
    a subdirectory of a monorepo, as every other command finds it), else from the repo's root; defaults rooted there.
    Found from the root alone, registering in 'repo/sub' read no config (or the root's) and tagged the version
    'model@...' while plan, train and gate used sub/calibgate.yaml's name."""
    from calibgate.settings import ProjectConfig, find_config, load_config

    root = git.root.resolve()
    here = Path.cwd().resolve()
    found = find_config(here if here == root or root in here.parents else root)
    return load_config(found) if found else ProjectConfig(root=git.root)


def repo_relpath(git: GitRepo, path: str | Path) -> str:
    """``path`` relative to the repo root when inside it (records in git must not hold machine paths)."""
    try:
        return Path(path).resolve().relative_to(git.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def default_name(name: str | None, git: GitRepo) -> str:
    """``name`` as given (an empty or malformed one is refused, never replaced), else calibgate.yaml's."""
    if name is None:
        return project_config(git).name
    if not is_valid_name(name):
        raise RegistryError(f"model name '{name}' is not valid for gto",
                            fix="use letters, digits, '-', '_', '/', starting and ending with a letter or digit (e.g. ticket-router)")
    return name


def version_info(model: ModelState, v) -> VersionInfo:
    return VersionInfo(
        name=model.name, version=v.version, tag=v.tag, commit=v.commit, created_at=v.created_at,
        stages=model.stages_of(v.version), deprecated=v.deprecated, run_id=v.record.run_id if v.record else None,
        metrics=v.record.metrics if v.record else {}, record=v.record,
    )


def event_info(e: StageEvent) -> StageEventInfo:
    return StageEventInfo(
        stage=e.stage, version=e.version, action=e.action, counter=e.counter, tag=e.tag, created_at=e.created_at,
        approved_by=e.record.approved_by if e.record else [], reason=e.record.reason if e.record else "",
        rollout=e.record.rollout if e.record else None,
    )

