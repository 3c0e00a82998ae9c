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

    def stack(self, stage: str) -> list[str]:
        """Versions that held ``stage``, oldest first; the last one holds it now."""
        held: list[str] = []
        for event in sorted((e for e in self.events if e.stage == stage), key=lambda e: e.counter):
            if event.version is None:
                continue
            if event.action == "promote":
                held = [v for v in held if v != event.version] + [event.version]
            elif event.action == "rollback":
                held = held[: held.index(event.version) + 1] if event.version in held else held + [event.version]
            elif event.action == "unassign":
                held = [v for v in held if v != event.version]
        return held

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
    for tag, ref in parsed:
        model = models[tag.name]
        if tag.kind == "deregister" and tag.version in model.versions:
            model.versions[tag.version].deprecated = True
            model.versions[tag.version].deprecation = parse_message(ref.message, DeprecationRecord)
        elif tag.kind == "deprecate":
            model.deprecated = True
        elif tag.kind in ("stage", "unassign"):
            record = parse_message(ref.message, StageRecord) if tag.kind == "stage" else None
            version = record.version if record else _version_at(model, ref.commit)
            action = "unassign" if tag.kind == "unassign" else (record.action if record else "promote")
            model.events.append(StageEvent(
                tag.name, tag.stage, version, tag.counter or 0, ref.name, action, ref.date, record,
            ))
    return models


def _version_at(model: ModelState, commit: str) -> str | None:
    """gto's rule: a stage tag names the version registered at the same commit."""
    found = [v.version for v in model.versions.values() if v.commit == commit]
    return found[0] if len(found) == 1 else None
