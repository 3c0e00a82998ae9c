"""Is a policy weaker than another? Each difference in what gates and approves a promotion, with its direction.

A pull request can change the policy it is gated with. The gate compares it
with the policy of the branch it would merge into (``calibgate gate
--policy-base REF``; in GitHub Actions the pull request's base branch), so a
change that would let more through is named and blocks, instead of passing
quietly in the same PR as the model it lets through.

Only the parts that decide a promotion are compared: ``checks``, ``approvals``,
``rollout`` and ``monitor`` (whose thresholds judge the evidence a rollout
stage needs). The planner's and drift's thresholds change advice, not what
may ship. Directions:

* a check, metric, class floor or rollout evidence that is gone: weaker; a new one: stricter;
* a bound is read from the policy's JSON Schema, not from the names a user gives: a field
  whose schema says ``"bound": "min"`` (a floor, such as ``class_recall_floor.classes``,
  whose keys are class names), or whose name starts with ``min`` (and ``required``,
  ``alpha``): lower is weaker; ``"bound": "max"`` or a name starting with ``max``: higher is
  weaker; a bound removed is weaker, one added stricter. Inside a map (class names, metric
  names) the map field's own bound applies, never the entry's name: a class called
  ``max_priority`` is still a floor. A field whose schema says ``"decides": false`` (what
  ``serve`` logs) is not compared; ``"bound": "steps"`` (``rollout.order``): a stage dropped, the order kept, is
  weaker, one added stricter; ``"bound": "named"`` (an artifact's ``precision``): left to the default is weaker;
* ``severity: fail`` to ``warn``, ``on_missing: error`` to ``skip``, ``require_gate``
  turned off, ``allow_gate_override`` turned on: weaker;
* approvers: a name added (or the list emptied, which lets anyone approve) is weaker;
* anything else that differs (the regression test's metric, a stage order) is a
  change whose direction cannot be told: reported for review, not blocking.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from calibgate.policy.schema import Policy, approver_key

Direction = Literal["weaker", "stricter", "changed"]

_HIGHER_IS_STRICTER = ("required", "alpha")
_ORDERED = {"severity": ["warn", "fail"], "on_missing": ["skip", "error"]}  # weakest first
_FLAGS = {"require_gate": True, "allow_gate_override": False}  # the stricter value
_COMPARED = ("checks", "approvals", "rollout", "monitor")


@dataclass(frozen=True)
class PolicyChange:
    """One difference between two policies, at a dotted key path."""

    key: str
    before: Any
    after: Any
    direction: Direction

    def describe(self) -> str:
        return f"{self.key} {_show(self.before)} -> {_show(self.after)}"


def policy_changes(base: Policy, new: Policy) -> list[PolicyChange]:
    """Every difference from ``base`` to ``new`` in the sections that decide a promotion, in key order."""
    changes: list[PolicyChange] = []
    old_data, new_data = base.model_dump(mode="json"), new.model_dump(mode="json")
    properties = _schema()["properties"]
    for section in _COMPARED:
        if section == "approvals":
            changes += _approvals(base, new)
        else:
            _walk(section, old_data.get(section), new_data.get(section), _node(properties[section]), None, changes)
    return changes


def weakenings(base: Policy, new: Policy) -> list[PolicyChange]:
    return [c for c in policy_changes(base, new) if c.direction == "weaker"]


def describe_changes(changes: list[PolicyChange], *, limit: int = 6) -> str:
    """The first ``limit`` changes, ``key before -> after`` joined by '; ', and how many more there are."""
    listed = "; ".join(c.describe() for c in changes[:limit])
    return listed + (f"; and {len(changes) - limit} more" if len(changes) > limit else "")


# -- private ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _schema() -> dict:
    from calibgate.policy.schema import policy_json_schema

    return policy_json_schema()


def _node(schema: dict | None) -> dict:
    """``schema`` with ``$ref`` resolved and an optional (``anyOf`` with null) unwrapped; {} when unknown."""
    if not schema:
        return {}
    if "$ref" in schema:
        resolved = _schema()["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
        return {**resolved, **{k: v for k, v in schema.items() if k != "$ref"}}
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [o for o in schema[union] if o.get("type") != "null"]
            if len(options) == 1:
                return {**_node(options[0]), **{k: v for k, v in schema.items() if k != union}}
    return schema


def _walk(key: str, before: Any, after: Any, schema: dict, bound: str | None, out: list[PolicyChange]) -> None:
    """Compare ``before`` with ``after`` at ``key``; ``schema`` is the JSON Schema of the value there, ``bound`` the
    enclosing map's bound (its entries are named by the user, so their names say nothing)."""
    if before == after or schema.get("decides") is False:
        return
    bound = schema.get("bound", bound)
    if isinstance(before, dict) and isinstance(after, dict):
        properties = schema.get("properties", {})
        entries = schema.get("additionalProperties")
        for name in sorted(set(before) | set(after)):
            if name in properties:
                child, child_bound = _node(properties[name]), None
            else:  # an entry of a map: a class, a metric, a stage
                child, child_bound = _node(entries if isinstance(entries, dict) else None), bound
            _walk(f"{key}.{name}", before.get(name), after.get(name), child, child_bound, out)
        return
    leaf = key.rsplit(".", 1)[-1]
    out.append(PolicyChange(key, before, after, _direction(leaf, before, after, bound=bound)))


def _direction(leaf: str, before: Any, after: Any, *, bound: str | None = None) -> Direction:
    if isinstance(before, dict) or isinstance(after, dict):  # a whole section added or removed
        if after is None:
            return "weaker"
        if before is None:
            return "stricter"
        return "changed"
    if bound == "steps":  # an ordered list of required steps: one dropped (order kept) is weaker, one added stricter
        old, cur = list(before or []), list(after or [])
        if _subsequence(cur, old):
            return "weaker"
        return "stricter" if _subsequence(old, cur) else "changed"
    if bound == "named":  # a value that names what is judged: left to the default ('the best one') is weaker
        return "weaker" if after is None else "stricter" if before is None else "changed"
    if bound is None:  # the schema says nothing: the field's name does (never a user's name: see _walk)
        if leaf in _ORDERED and before in _ORDERED[leaf] and after in _ORDERED[leaf]:
            return "weaker" if _ORDERED[leaf].index(after) < _ORDERED[leaf].index(before) else "stricter"
        if leaf in _FLAGS:
            return "stricter" if after == _FLAGS[leaf] else "weaker"
        bound = "min" if leaf.startswith("min") or leaf in _HIGHER_IS_STRICTER else "max" if leaf.startswith("max") else None
    if bound is None or isinstance(before, (bool, str, list)) or isinstance(after, (bool, str, list)):
        return "changed"
    if after is None:
        return "weaker"  # a bound removed
    if before is None:
        return "stricter"
    lower = after < before
    return ("weaker" if lower else "stricter") if bound == "min" else ("stricter" if lower else "weaker")


def _subsequence(short: list, long: list) -> bool:
    """``short`` is ``long`` with entries left out, in the same order, and shorter."""
    rest = iter(long)
    return len(short) < len(long) and all(item in rest for item in short)


def _approvals(base: Policy, new: Policy) -> list[PolicyChange]:
    """Per stage the base could promote to: fewer approvals, more approvers, or the gate made optional is weaker.

    A stage the new policy no longer declares cannot be promoted to at all, which is stricter.
    """
    out: list[PolicyChange] = []
    declared = set(new.declared_stages())
    for stage in base.declared_stages():
        key = f"approvals.{stage}"
        if stage not in declared:
            out.append(PolicyChange(key, "declared", "not declared", "stricter"))
            continue
        old, cur = base.approval_for(stage), new.approval_for(stage)
        for field in ("required", "require_gate", "allow_gate_override"):
            before, after = getattr(old, field), getattr(cur, field)
            if before != after:
                out.append(PolicyChange(f"{key}.{field}", before, after, _direction(field, before, after)))
        before_people, after_people = {approver_key(a) for a in old.approvers}, {approver_key(a) for a in cur.approvers}
        if before_people != after_people:
            if not after_people or (before_people and after_people - before_people):
                direction: Direction = "weaker"  # anyone may approve now, or someone new may
            else:
                direction = "stricter"
            out.append(PolicyChange(f"{key}.approvers", sorted(old.approvers) or "anyone", sorted(cur.approvers) or "anyone",
                                    direction))
    for stage in sorted(declared - set(base.declared_stages())):  # a new stage: nothing was promoted there before
        out.append(PolicyChange(f"approvals.{stage}", "not declared", f"required {new.approval_for(stage).required}", "changed"))
    return out


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, dict):
        return "{...}"
    return str(value)


POLICY_CHECK = "policy_change"


def policy_change_check(base: Policy | None, new: Policy, *, ref: str, problem: str | None = None):
    """The gate's ``policy_change`` check: FAIL when ``new`` is weaker than ``base`` (the policy at ``ref``).

    ``problem``: why the base's policy could not be read (a WARN: there is nothing
    this calibgate can compare with, e.g. the base branch's policy is invalid);
    ``base`` None without a problem: the base has no policy yet (SKIPPED).
    """
    from calibgate.records.decision import CheckResult

    config = {"base": ref}
    if problem is not None:
        return CheckResult(id=POLICY_CHECK, status="WARN", config=config,
                           message=f"the policy could not be compared with {ref}'s: {problem}")
    if base is None:
        return CheckResult(id=POLICY_CHECK, status="SKIPPED", config=config, message=f"{ref} has no policy to compare with")
    changes = policy_changes(base, new)
    weaker = [c for c in changes if c.direction == "weaker"]
    unclear = [c for c in changes if c.direction == "changed"]
    if weaker:
        listed = describe_changes(weaker)
        return CheckResult(
            id=POLICY_CHECK, status="FAIL", value=float(len(weaker)), threshold=0.0, config=config,
            message=f"the policy is weaker than {ref}'s in {len(weaker)} place(s): {listed}. A weaker policy is never adopted "
                    "beside the model it lets through: restore it, or merge the change alone after review (this check blocks "
                    "that pull request too, so a maintainer merges it deliberately)",
        )
    if unclear:
        listed = describe_changes(unclear)
        return CheckResult(id=POLICY_CHECK, status="WARN", config=config,
                           message=f"the policy differs from {ref}'s where calibgate cannot tell stricter from weaker: {listed}; review it")
    stricter = len(changes)
    return CheckResult(id=POLICY_CHECK, status="PASS", config=config,
                       message=f"the policy is as strict as {ref}'s" + (f" or stricter ({stricter} change(s))" if stricter else ""))
