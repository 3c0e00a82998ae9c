"""Stage operations: promote (with approvals and, optionally, a gate decision), roll back, deprecate."""

from __future__ import annotations

from pathlib import Path

from calibgate.errors import RegistryError
from calibgate.policy.schema import approver_key
from calibgate.records.decision import GateDecision
from calibgate.registry.gitrepo import GitRepo
from calibgate.registry.rollout import check_rollout
from calibgate.registry.records import DeprecationRecord, StageRecord, format_message
from calibgate.registry.state import ModelState, VersionState
from calibgate.registry.tags import Tag, check_creatable, format_tag, is_valid_name, next_counter
from calibgate.registry.common import (
    PRODUCTION, StageAssignment, project_config, default_name, model_state, open_repo, publish_tag, repo_relpath, resolve_ref, sync_remote,
    find_version, registry_locked, check_tag_free,
)


@registry_locked
def promote(
    ref: str,
    *,
    stage: str = PRODUCTION,
    approved_by: list[str] | tuple[str, ...] = (),
    policy: str | Path | None = None,
    reason: str = "",
    gate: GateDecision | str | Path | None = None,
    evidence: list[str | Path] | tuple[str | Path, ...] = (),
    override_gate: bool = False,
    name: str | None = None,
    repo: str | Path | GitRepo | None = None,
    remote: str | None = None,
    push: bool | None = None,
    fetch: bool = True,
    rederive=None,
) -> StageAssignment:
    """Assign version ``ref`` (``name@vX.Y.Z``) to ``stage``, with the approvals and the passing gate the policy requires.

    ``rederive(path, report, policy, repo_root)`` re-measures each ``evidence`` report from the log it names and
    raises unless the figures agree (:func:`calibgate.serving.monitor.check_against_log`, which the facade
    :func:`calibgate.api.promote` passes): without it, evidence is refused, since a report is a file anyone can edit.

    Every promotion needs a gate decision that says ``promote``, recorded in
    the stage tag:

    * ``gate``: a :class:`GateDecision` (or its JSON file from ``calibgate gate
      --json``) for this version's run, under the same policy (sha256), against
      the version holding the stage now. Required when the stage's policy
      entry sets ``require_gate``.
    * otherwise the registry gates the version itself: its recorded (and
      verified) evaluation, export and plan against the stage holder's, under
      the policy. A ``block`` or ``error`` refuses the promotion.
    * ``override_gate`` skips the gate only when the stage's policy entry sets
      ``allow_gate_override``, with a ``reason``; the override is recorded.

    The policy (``policy`` or calibgate.yaml's) says per stage how many
    distinct approvers are needed and who may approve; too few or unlisted
    approvers raise :class:`RegistryError` and nothing is tagged; so does a
    stage the policy does not declare (:meth:`Policy.declared_stages`). Deprecated
    versions and the version already holding the stage are refused.
    ``evidence``: monitor reports (``calibgate monitor --json``) the policy's
    ``rollout.stages.<stage>`` asks for; with a ``rollout.order`` the version
    must have been promoted to the stage before (see
    :mod:`calibgate.registry.rollout`). What was checked is recorded.
    ``fetch=False`` skips updating tags from the remote first (offline use;
    a stale clone then loses any race at push time).
    """
    from calibgate.policy.loader import resolve_policy

    git = open_repo(repo)
    name, version = resolve_ref(ref, name, git)
    git.head()  # the policy reviewed is HEAD's: on an unborn branch, 'commit first', not "--policy-base 'HEAD'" unknown
    if not is_valid_name(stage):
        raise RegistryError(f"stage '{stage}' is not a valid gto stage name", fix="letters, digits, '-', '_', '/'")
    config = project_config(git)
    loaded = resolve_policy(policy, config)
    _not_weaker_than_committed(git, loaded, config)
    _check_declared(stage, loaded)
    rule = loaded.approval_for(stage)
    approvers = _distinct_approvers(approved_by)
    if rule.approvers:
        allowed = {approver_key(a) for a in rule.approvers}
        unknown = [a for a in approvers if approver_key(a) not in allowed]
        if unknown:
            raise RegistryError(
                f"{', '.join(unknown)} may not approve promotion to {stage} (allowed: {', '.join(rule.approvers)})",
                fix=f"get approval from the approvers listed under approvals.{stage} in {loaded.source}",
            )
    if len(approvers) < rule.required:
        raise RegistryError(
            f"promotion of {name}@{version} to {stage} needs {rule.required} approval(s), got {len(approvers)}"
            + (f" ({', '.join(approvers)})" if approvers else ""),
            fix="pass --approved-by NAME once per approver" + (f" (allowed: {', '.join(rule.approvers)})" if rule.approvers else ""),
        )
    target_remote = sync_remote(git, remote, push, fetch)
    model = model_state(git, name)
    model.refuse_if_deprecated()
    v = find_version(model, version)
    if v.deprecated:
        raise RegistryError(f"{name}@{version} is deprecated and cannot be promoted", fix="promote a current version")
    current = model.current(stage)
    if current == version:
        raise RegistryError(f"{name}@{version} is already in {stage}", fix="nothing to do")
    evidence = _names(evidence, "evidence", "pass evidence=['shadow.json'] (on the command line: --evidence once per report)")
    if not all(isinstance(path, (str, Path)) for path in evidence):
        raise RegistryError("evidence must list report paths", fix="pass evidence=['shadow.json']")
    rollout = check_rollout(loaded, model, version, stage, evidence, rederive=rederive, repo_root=git.root)
    if override_gate:
        gate_summary = _override(gate, rule.allow_gate_override, reason, loaded, stage, git.user())
    elif gate is None and not rule.require_gate:
        gate_summary = _gate_evidence(git, loaded, v, stage, model)
    else:
        gate_summary = _check_gate(git, gate, rule.require_gate, loaded, v, stage, model)
    record = StageRecord(
        name=name, version=version, stage=stage, counter=0, action="promote", previous=current, approved_by=approvers,
        required_approvals=rule.required, policy=repo_relpath(git, loaded.source), policy_sha256=loaded.sha256, reason=reason, actor=git.user(),
        gate=gate_summary, rollout=rollout,
    )
    return _assign(git, model, v, record, target_remote)


def _names(value, what: str, fix: str) -> list:
    """``value`` as a list of its entries: a list or tuple, never a bare string (iterated, 'alice' was five
    approvers, a, c, e, i and l, and a production tag was made on one person's word)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise RegistryError(f"{what} must be a list of names, got {type(value).__name__} {str(value)[:40]!r}", fix=fix)
    return list(value)


def _distinct_approvers(approved_by) -> list[str]:
    """One entry per person (the first spelling given), by :func:`approver_key`; blank names dropped."""
    fix = "pass approved_by=['alice', 'bob'] (on the command line: --approved-by once per approver)"
    seen: dict[str, str] = {}
    for name in _names(approved_by, "approved_by", fix):
        if not isinstance(name, str):
            raise RegistryError(f"approver {name!r} is {type(name).__name__}, not a name", fix=fix)
        key = approver_key(name)
        if key and key not in seen:
            seen[key] = name.strip()
    return sorted(seen.values())


def _not_weaker_than_committed(git: GitRepo, policy, config) -> None:
    """A promotion applies the reviewed policy: not a weaker one named with ``--policy`` or edited and not committed.

    The reference is the policy calibgate.yaml names at HEAD (what was reviewed and merged); a weaker policy is
    adopted by committing it, never by naming another file at promotion time.
    """
    from calibgate.policy.compare import describe_changes, weakenings
    from calibgate.registry.policybase import policy_at

    committed, _ = policy_at("HEAD", config, git.root)
    weaker = weakenings(committed, policy) if committed is not None else []
    if weaker:
        raise RegistryError(f"{policy.source} is weaker than the policy committed at HEAD: {describe_changes(weaker, limit=4)}",
                            fix="promote under the committed policy (drop --policy, or commit the policy change through review)")


def _check_declared(stage: str, policy) -> None:
    """Refuse a stage the policy does not name (a misspelt stage would need no approvals), with a did-you-mean."""
    import difflib

    declared = policy.declared_stages()
    if stage in declared:
        return
    if not declared:
        raise RegistryError(f"the policy {policy.source} declares no stages, so nothing may be promoted to '{stage}'",
                            fix=f"declare it under approvals: in the policy (e.g. approvals: {{{stage}: {{required: 1}}}})")
    close = difflib.get_close_matches(stage, declared, n=1, cutoff=0.6) or [d for d in declared if d.lower() == stage.lower()]
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise RegistryError(
        f"stage '{stage}' is not declared in {policy.source} (declared: {', '.join(declared)})",
        fix=f"{hint}promote to a declared stage, or add '{stage}' under approvals: in the policy in a reviewed PR",
    )


def _override(gate, allowed: bool, reason: str, policy, stage: str, actor: str) -> dict:
    """The recorded override of the gate: only where the policy allows it, never silently."""
    if gate is not None:
        raise RegistryError("--override-gate and --gate together", fix="present the gate decision or override it, not both")
    if not allowed:
        raise RegistryError(f"the policy does not allow overriding the gate for {stage} (approvals.{stage}.allow_gate_override "
                            f"in {policy.source})", fix="promote a version whose gate passes, or change the policy in a reviewed PR")
    if not reason.strip():
        raise RegistryError("overriding the gate needs a reason", fix="pass --reason 'why this version ships despite its gate'")
    return {"decision": "override", "baseline": None, "policy_sha256": policy.sha256,
            "summary": f"gate overridden by {actor or 'unknown'}: {reason.strip()}"}


def _gate_evidence(git: GitRepo, policy, v, stage: str, model: ModelState) -> dict:
    """Gate version ``v``'s recorded evidence against the holder of ``stage`` (both verified); refuse unless it passes."""
    from calibgate.policy.api import gate as run_gate
    from calibgate.registry.api import version_evidence

    candidate = version_evidence(git, v, verify_store=False)
    holder = model.current(stage)
    baseline = None if holder is None else version_evidence(git, model.versions[holder], verify_store=False)
    decision = run_gate(
        policy, candidate.evaluation, candidate_export=candidate.export, plan=candidate.plan,
        baseline=None if baseline is None else baseline.evaluation, baseline_export=None if baseline is None else baseline.export,
        candidate_id=candidate.ref, baseline_id=None if baseline is None else baseline.ref,
    )
    if decision.decision != "promote":
        raise RegistryError(
            f"the gate on {candidate.ref}'s recorded evidence against {decision.baseline or f'an empty {stage}'} says "
            f"'{decision.decision}': {decision.summary}",
            fix="fix the candidate; or gate it on the current data (calibgate ci / calibgate gate --json > gate.json) and pass --gate gate.json",
        )
    return {"decision": decision.decision, "baseline": decision.baseline, "policy_sha256": decision.policy_sha256,
            "summary": decision.summary, "source": "registry evidence"}


def _check_gate(git: GitRepo, gate, required: bool, policy, v, stage: str, model: ModelState) -> dict | None:
    """The presented gate decision, checked: it passed, for this version's run, under this policy,
    against the version that holds the stage now (a decision against an older production is stale)."""
    from calibgate.runs import read_record

    if gate is None:
        if required:
            raise RegistryError(
                f"promotion to {stage} needs a passing gate decision (approvals.{stage}.require_gate in {policy.source})",
                fix="calibgate gate --candidate runs/<id> --json > gate.json, then pass --gate gate.json",
            )
        return None
    if not isinstance(gate, GateDecision):
        gate = read_record(gate, GateDecision, what="gate decision", fix="pass the JSON written by 'calibgate gate --json'")
    run_id = v.record.run_id if v.record else None
    pinned = v.record.manifest_sha256 if v.record else None
    if gate.candidate_manifest_sha256 is None or pinned is None or gate.candidate_manifest_sha256 != pinned:
        raise RegistryError(
            f"the gate decision is not about {v.name}@{v.version}'s files (its run manifest digest "
            f"{(gate.candidate_manifest_sha256 or 'none')[:12]} is not the version's {(pinned or 'none')[:12]})",
            fix=f"gate the version's own run: calibgate gate --candidate runs/{run_id} --json > gate.json",
        )
    if gate.decision != "promote":
        raise RegistryError(f"the gate decision says '{gate.decision}': {gate.summary}", fix="fix the candidate; a blocked gate cannot be promoted")
    if run_id is not None and gate.candidate != run_id:
        raise RegistryError(f"the gate decision is for run '{gate.candidate}', {v.name}@{v.version} is run '{run_id}'",
                            fix=f"gate run {run_id}: calibgate gate --candidate runs/{run_id} --json")
    if gate.policy_sha256 != policy.sha256:
        raise RegistryError(f"the gate decision used another policy (sha256 {gate.policy_sha256[:12]}...) than {policy.source}",
                            fix="re-run the gate with the current policy")
    holder = model.current(stage)
    if holder is not None:
        held = model.versions[holder]
        accepted = {f"{model.name}@{holder}"} | ({held.record.run_id} if held.record else set())
        if gate.baseline not in accepted:
            raise RegistryError(
                f"the gate decision compared against {gate.baseline or 'no baseline'}, but {model.name}@{holder} is in {stage} now",
                fix="re-run the gate against the current production (calibgate gate --baseline production --json)",
            )
    _agrees_with_evidence(git, policy, v, gate)
    return {"decision": gate.decision, "baseline": gate.baseline, "policy_sha256": gate.policy_sha256, "summary": gate.summary}


def _agrees_with_evidence(git: GitRepo, policy, v, gate: GateDecision) -> None:
    """The presented decision must say what the version's own recorded evidence says wherever that evidence decides.

    A decision is a JSON file anyone can write, and ``calibgate gate --plan`` can be handed another plan: so the
    registry re-runs the policy on the version's verified evaluation, export and plan alone (the checks that need
    no baseline) and refuses when one of them fails, or when a value the decision shows is not the evidence's.
    Checks against the baseline cannot be re-run here (the gate may have re-evaluated production on today's test
    set); those stay the decision's, bound to this version by its manifest digest and to this policy by its sha256.
    """
    import math

    from calibgate.policy.api import gate as run_gate
    from calibgate.registry.api import version_evidence

    evidence = version_evidence(git, v, verify_store=False)
    alone = run_gate(policy, evidence.evaluation, candidate_export=evidence.export, plan=evidence.plan, candidate_id=evidence.ref)
    shown = {c.id: c for c in gate.checks}
    fix = f"gate the version's own run, unmodified: calibgate gate --candidate runs/{v.record.run_id} --json > gate.json"
    for check in alone.checks:
        if check.status in ("FAIL", "ERROR"):
            raise RegistryError(f"{evidence.ref}'s recorded evidence gives {check.status} on {check.id} under "
                                f"{policy.source} ({check.message}), which the presented gate decision does not", fix=fix)
        presented = shown.get(check.id)
        if presented is None or check.status == "SKIPPED" or presented.status == "SKIPPED":
            continue
        if (check.value is None) != (presented.value is None) or (
            check.value is not None and not math.isclose(check.value, presented.value, rel_tol=1e-9, abs_tol=1e-12)
        ):
            raise RegistryError(f"the gate decision shows {check.id} = {presented.value}, but {evidence.ref}'s recorded "
                                f"evidence gives {check.value}", fix=fix)


@registry_locked
def rollback(
    name: str | None = None,
    *,
    stage: str = PRODUCTION,
    reason: str = "",
    approved_by: list[str] | tuple[str, ...] = (),
    repo: str | Path | GitRepo | None = None,
    remote: str | None = None,
    push: bool | None = None,
    fetch: bool = True,
) -> StageAssignment:
    """Re-assign ``stage`` to the version that held it before the current one (a new tag; history kept).

    Approvals are recorded, not required: the target already passed the
    stage's approvals when it was first promoted. Raises :class:`RegistryError`
    when there is no earlier version (deprecated versions hold no stage, so a rollback passes over them).
    """
    approvers = _distinct_approvers(approved_by)  # checked before anything is read or fetched
    git = open_repo(repo)
    name = default_name(name, git)
    target_remote = sync_remote(git, remote, push, fetch)
    model = model_state(git, name)
    stack = model.stack(stage)
    if len(stack) < 2:
        raise RegistryError(
            f"{name} has no earlier {stage} version to roll back to (history: {', '.join(stack) or 'empty'})",
            fix=f"promote a version explicitly: calibgate registry promote {name}@vX.Y.Z --stage {stage}",
        )
    current, target = stack[-1], stack[-2]
    v = find_version(model, target)
    if v.deprecated:
        raise RegistryError(f"the previous {stage} version {name}@{target} is deprecated", fix="promote a current version explicitly")
    record = StageRecord(
        name=name, version=target, stage=stage, counter=0, action="rollback", previous=current,
        approved_by=approvers, reason=reason, actor=git.user(),
    )
    return _assign(git, model, v, record, target_remote)


def _assign(git: GitRepo, model: ModelState, version: VersionState, record: StageRecord, remote: str | None) -> StageAssignment:
    counter = next_counter(git.tag_names(), model.name)  # every tag, so the stage tag's name is never taken
    record = record.model_copy(update={"counter": counter})
    tag = format_tag(Tag("stage", model.name, stage=record.stage, counter=counter))
    check_creatable(tag)
    verb = "Promote" if record.action == "promote" else "Roll back"
    headline = f"{verb} {model.name} {record.version} to {record.stage}"
    _wait_past_last_stage_tag(model)
    git.create_tag(tag, version.commit, format_message(headline, record))
    publish_tag(git, remote, tag, version_tag=version.tag)
    return StageAssignment(tag=tag, pushed_to=remote, record=record)


def _wait_past_last_stage_tag(model: ModelState) -> None:
    """Sleep (under a second) until the clock is past the newest stage tag's second.

    calibgate orders stage events by counter, gto by tag time, which git keeps
    to the second; two assignments within one second could make ``gto show``
    name a different holder than calibgate. Waiting keeps the two in agreement.
    """
    import time
    from datetime import datetime

    stamps = []
    for event in model.events:
        try:
            stamps.append(datetime.fromisoformat(event.created_at).timestamp())
        except ValueError:
            continue
    if not stamps:
        return
    last_second = int(max(stamps))
    give_up = time.monotonic() + 2.5  # a clock stepped far back is not worth waiting for
    while int(time.time()) <= last_second and time.monotonic() < give_up:
        time.sleep(0.05)


@registry_locked
def deprecate(
    ref: str,
    *,
    reason: str = "",
    name: str | None = None,
    repo: str | Path | GitRepo | None = None,
    remote: str | None = None,
    push: bool | None = None,
    fetch: bool = True,
) -> DeprecationRecord:
    """Mark a version deprecated with gto's deregistration tag ``name@vX.Y.Z!``.

    A version that holds a stage is refused (roll back or promote another first).
    """
    git = open_repo(repo)
    name, version = resolve_ref(ref, name, git)
    target_remote = sync_remote(git, remote, push, fetch)
    model = model_state(git, name)
    v = find_version(model, version)
    if v.deprecated:
        raise RegistryError(f"{name}@{version} is already deprecated", fix="nothing to do")
    holding = model.stages_of(version)
    if holding:
        raise RegistryError(
            f"{name}@{version} is in {', '.join(holding)}", fix=f"roll back or promote another version out of {holding[0]} first",
        )
    record = DeprecationRecord(name=name, version=version, reason=reason, actor=git.user())
    tag = format_tag(Tag("deregister", name, version=version))
    check_tag_free(git, tag, instead="")
    git.create_tag(tag, v.commit, format_message(f"Deprecate {name} {version}", record))
    publish_tag(git, target_remote, tag, version_tag=v.tag)
    return record

