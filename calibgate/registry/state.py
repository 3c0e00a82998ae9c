"""The registry's state, read from tags: versions, deprecations and each stage's history.

Stage history is ordered by the tags' counters (monotonic per model), not by
tag time, so two events within the same second still have one order. A
stage's holder follows that history as a stack: a promotion pushes a
version, a rollback pops back to the version before, an unassignment
removes the version. gto orders the same tags by time, which agrees as long
as events are more than a second apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from calibgate.errors import RegistryError
from calibgate.registry.gitrepo import GitRepo, TagRef
from calibgate.registry.records import DeprecationRecord, StageRecord, VersionRecord, parse_message
from calibgate.registry.tags import Tag, semver_key, try_parse_tag


@dataclass
class VersionState:
    name: str
    version: str
    tag: str
    commit: str
    created_at: str
    record: VersionRecord | None  # None: registered by plain gto, not calibgate
    deprecated: bool = False
    deprecation: DeprecationRecord | None = None


@dataclass(frozen=True)
class StageEvent:
    name: str
    stage: str
    version: str | None
    counter: int
    tag: str
    action: str  # promote, rollback, unassign
    created_at: str
    record: StageRecord | None
    problem: str | None = None  # why this event cannot be read as a stage assignment (see read_state)


@dataclass
class ModelState:
    name: str
    versions: dict[str, VersionState] = field(default_factory=dict)
    events: list[StageEvent] = field(default_factory=list)
    deprecated: bool = False

    def sorted_versions(self) -> list[VersionState]:
        return sorted(self.versions.values(), key=lambda v: semver_key(v.version))

    def latest(self) -> str | None:
        versions = self.sorted_versions()
        return versions[-1].version if versions else None

    def stages(self) -> list[str]:
        return sorted({e.stage for e in self.events})

    def refuse_if_deprecated(self) -> None:
        """A model deprecated as a whole (gto's ``name@deprecated`` tag) is gone for gto, so for calibgate too."""
        if self.deprecated:
            raise RegistryError(
                f"{self.name} is deprecated as a whole (tag {self.name}@deprecated, 'gto deprecate {self.name}'): gto "
                "shows none of its versions or stages",
                fix=f"revive it by deleting that tag (git tag -d {self.name}@deprecated; git push --delete origin "
                    f"{self.name}@deprecated), or register the model under another name",
            )

    def stack(self, stage: str) -> list[str]:
        """Versions that held ``stage``, oldest first; the last one holds it now.

        An event that cannot be read (a tag made by hand, or whose record contradicts its commit) makes the whole
        stage unreadable: :class:`RegistryError`, never a holder guessed from the events around it. A model
        deprecated as a whole holds no stage, and neither does a deprecated version, as gto reads them (a version
        'gto deprecate router v1.1.0' retired while in production stayed production for calibgate, the gate's
        baseline included, while gto showed the version before it).
        """
        if self.deprecated:
            return []
        held: list[str] = []
        for event in sorted((e for e in self.events if e.stage == stage), key=lambda e: e.counter):
            if event.problem is not None:
                raise RegistryError(
                    f"the registry's {self.name} {stage} history is unreadable: tag {event.tag} {event.problem}",
                    fix=f"if the tag was made by hand, delete it (git tag -d '{event.tag}', and on the remote: "
                        f"git push --delete origin '{event.tag}'); assign stages only with calibgate registry promote/rollback",
                )
            if event.action == "promote":
                held = [v for v in held if v != event.version] + [event.version]
            elif event.action == "rollback":
                held = held[: held.index(event.version) + 1] if event.version in held else held + [event.version]
            elif event.action == "unassign":
                held = [v for v in held if v != event.version]
        return [v for v in held if not (v in self.versions and self.versions[v].deprecated)]

    def current(self, stage: str) -> str | None:
        stack = self.stack(stage)
        return stack[-1] if stack else None

    def stages_of(self, version: str) -> list[str]:
        return [s for s in self.stages() if self.current(s) == version]

    def history(self, stage: str | None = None) -> list[StageEvent]:
        return sorted((e for e in self.events if stage in (None, e.stage)), key=lambda e: e.counter)


def read_state(repo: GitRepo, name: str | None = None) -> dict[str, ModelState]:
    """Every model's state (or only ``name``'s) from the repo's local tags."""
    models: dict[str, ModelState] = {}
    parsed: list[tuple[Tag, TagRef]] = []
    for ref in repo.tags():
        tag = try_parse_tag(ref.name)
        if tag is None or not ref.annotated or (name and tag.name != name):
            continue  # gto ignores lightweight tags too
        parsed.append((tag, ref))
        models.setdefault(tag.name, ModelState(tag.name))
    for tag, ref in parsed:
        if tag.kind == "version":
            models[tag.name].versions[tag.version] = VersionState(
                tag.name, tag.version, ref.name, ref.commit, ref.date, parse_message(ref.message, VersionRecord),
            )
    deprecations: dict[str, list[str]] = {}
    for tag, ref in parsed:
        model = models[tag.name]
        if tag.kind == "deregister" and tag.version in model.versions:
            model.versions[tag.version].deprecated = True
            model.versions[tag.version].deprecation = parse_message(ref.message, DeprecationRecord)
        elif tag.kind == "deprecate":
            deprecations.setdefault(tag.name, []).append(ref.date)
        elif tag.kind in ("stage", "unassign"):
            record = parse_message(ref.message, StageRecord) if tag.kind == "stage" else None
            at_commit = _version_at(model, ref.commit)
            version = record.version if record else at_commit
            action = "unassign" if tag.kind == "unassign" else (record.action if record else "promote")
            model.events.append(StageEvent(
                tag.name, tag.stage, version, tag.counter or 0, ref.name, action, ref.date, record,
                _event_problem(tag, record, at_commit, model),
            ))
    for name, dates in deprecations.items():
        # gto's rule (gto/base.py, Artifact.is_active): deprecated while the deprecation is the model's latest event
        latest = max((_when(ref.date) for tag, ref in parsed if tag.name == name and tag.kind != "deprecate"),
                     default=float("-inf"))  # a deprecation tag alone: nothing after it
        model = models[name]
        model.deprecated = max(map(_when, dates)) > latest
        if model.deprecated:  # gto deprecates every version with the model: none may be promoted or served
            for v in model.versions.values():
                v.deprecated = True
    return models


def _when(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def _event_problem(tag: Tag, record: StageRecord | None, at_commit: str | None, model: ModelState) -> str | None:
    """Why a stage tag cannot be read the way both calibgate and gto would read it, or None.

    gto takes a stage tag's version from the version tag at the same commit; calibgate's record names it too. A
    tag without a record at no version's commit, or whose record names another version than its commit's (or one
    never registered), is where the two readings part, so neither is trusted.
    """
    if record is None:  # plain gto (or a hand-made tag): only the version at its commit names the holder
        return None if at_commit is not None else "has no calibgate record and points at a commit no registered version is at"
    if record.version not in model.versions:
        return f"records version {record.version}, which is not registered"
    if at_commit is not None and record.version != at_commit:
        return f"records version {record.version} but points at {at_commit}'s commit (gto would name {at_commit})"
    # at no version's commit with a record of a registered version: the version tag was moved since, which the
    # evidence verification of that version reports (calibgate.registry.api.version_evidence)
    if record.stage != tag.stage or (tag.counter is not None and record.counter != tag.counter):
        return f"records stage {record.stage} #{record.counter}, not its own name's"
    return None


def _version_at(model: ModelState, commit: str) -> str | None:
    """gto's rule: a stage tag names the version registered at the same commit."""
    found = [v.version for v in model.versions.values() if v.commit == commit]
    return found[0] if len(found) == 1 else None
