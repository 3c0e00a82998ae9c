"""Reading policy files: every problem as ``file:line: message``, unknown keys with the closest valid key.

YAML is parsed once into a node tree (for line numbers) and once into data;
pydantic errors are mapped back to the line of the offending key.

Every command that applies a policy (plan, train, gate, ci, registry
register/promote, drift) reads it through :func:`resolve_policy`, so a
missing, empty or weakened policy fails the same way everywhere: one line,
exit 2. What the loader refuses beyond the schema:

* a key given twice in one mapping, at any level (YAML would keep the last
  and silently drop the first block);
* an empty file, or a policy file that enables no check (``checks: {metrics: {}}``
  included), or whose every check only warns (it would promote
  anything; a :class:`Policy` built in memory may, e.g. to hold defaults);
* a threshold outside its check's range (:class:`~calibgate.policy.checks.Range`);
* a value of the wrong type that pydantic would coerce: every section is
  validated in strict mode, so ``min: true`` (YAML's ``true``/``false``/``yes``/``no``
  are booleans) or ``min: "0.7"`` is refused instead of read as 1.0 / 0.7, in
  every check, ``planner``, ``drift``, ``rollout``, ``monitor`` and ``approvals``
  alike. An integer is still a valid float (``min: 1`` is 1.0), as in the JSON Schema.

:func:`check_policy` with ``warnings=True`` also reports what is valid but
likely a mistake, as ``severity="warning"`` problems: a ``checks.metrics`` key
that is no built-in metric (a ``calibgate evaluate --metric`` module may add
it, so it cannot be refused here; the gate records ERROR, never a pass, when
the evaluation lacks it).
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from calibgate.errors import PolicyError
from calibgate.policy.checks import BUILTIN_METRICS, CHECKS
from calibgate.policy.schema import Policy
from calibgate.yamlio import DuplicateKey, describe_yaml_error, load_unique

if TYPE_CHECKING:
    from calibgate.settings import ProjectConfig


@dataclass(frozen=True)
class PolicyProblem:
    """One problem in a policy file; ``str()`` is the ``file:line: message`` line editors parse."""

    path: str
    line: int | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {'warning: ' if self.severity == 'warning' else ''}{self.message}"


def load_policy(path: str | Path) -> Policy:
    """Load and validate one policy file; raise :class:`PolicyError` (exit 2) naming file:line of the first problem."""
    policy, problems = _parse(Path(path))
    if problems:
        more = f" (and {len(problems) - 1} more; run 'calibgate policy check {path}')" if len(problems) > 1 else ""
        raise PolicyError(f"{problems[0]}{more}", fix="fix the policy file; 'calibgate policy schema' prints the schema")
    assert policy is not None
    return policy


def parse_policy(data: bytes, source: str) -> Policy:
    """A policy from its bytes (e.g. a file at another git revision), validated as :func:`load_policy` validates files."""
    policy, problems = _parse_bytes(data, source)
    if problems:
        raise PolicyError(str(problems[0]), fix="fix the policy file; 'calibgate policy schema' prints the schema")
    assert policy is not None
    return policy


def resolve_policy(policy: str | Path | Policy | None = None, config: ProjectConfig | None = None) -> Policy:
    """The policy a command applies: ``policy`` (an option) or the config's ``policy`` key, through :func:`load_policy`.

    A named file that is missing or invalid is :class:`PolicyError` (exit 2)
    for every command alike; nothing falls back to defaults silently.
    """
    if isinstance(policy, Policy):
        return policy
    if policy is None:
        from calibgate.settings import load_config

        config = config if config is not None else load_config()
        where = f" (named by 'policy' in {config.source})" if config.source else " (calibgate's default policy path)"
        path = config.path(config.policy)
        if path is None or not path.exists():
            raise PolicyError(f"{path}: no such policy file{where}",
                              fix="create it (copy policies/default.yaml), pass --policy FILE, or fix 'policy' in calibgate.yaml")
        return load_policy(path)
    if not Path(policy).exists():
        raise PolicyError(f"{policy}: no such policy file", fix="fix --policy (e.g. policies/default.yaml)")
    return load_policy(policy)


def advisory_policy_path(policy: str | Path | None, config: ProjectConfig) -> Path | None:
    """The policy file of a command that has built-in defaults (plan, drift): ``policy``, else the config's.

    None only when nothing names a policy: no ``--policy``, no ``policy:``
    key in a config file, and no file at the default path; the built-in
    planner thresholds then apply (and the plan records no policy). A policy
    that is named is read by :func:`resolve_policy`: missing is exit 2.
    """
    if policy is not None:
        return Path(policy)
    candidate = config.path(config.policy)
    named = config.source is not None and "policy" in config.model_fields_set
    if not named and (candidate is None or not candidate.exists()):
        return None
    return candidate


def check_policy(paths: list[str | Path] | str | Path, *, warnings: bool = False) -> list[PolicyProblem]:
    """Validate policy files for editors and pre-commit; returns every problem found (empty: all valid).

    ``warnings=True`` adds ``severity="warning"`` problems of valid files (see the module docstring);
    only ``severity="error"`` problems make a file invalid.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    problems: list[PolicyProblem] = []
    for path in paths:
        policy, found = _parse(Path(path))
        problems += found
        if warnings and policy is not None:
            problems += _warnings(policy, Path(path))
    return problems


def _warnings(policy: Policy, path: Path) -> list[PolicyProblem]:
    """What is valid but likely a mistake: metric keys the built-in evaluation does not write."""
    unknown = [key for key in (policy.checks.metrics or {}) if key not in BUILTIN_METRICS]
    if not unknown:
        return []
    node = yaml.compose(path.read_text(encoding="utf-8"))
    return [
        PolicyProblem(
            str(path), _line(node, ("checks", "metrics", key)),
            f"'checks.metrics.{key}' is not a built-in metric ({_suggest(key, list(BUILTIN_METRICS), 'built-in')}); unless "
            "'calibgate evaluate --metric MODULE' adds it, the gate records ERROR and does not promote",
            severity="warning",
        )
        for key in unknown
    ]


def _suggest(word: str, valid: list[str], what: str = "valid keys") -> str:
    """``did you mean 'x'?`` for the closest of ``valid``, else ``what: `` and the list of them."""
    close = difflib.get_close_matches(word, valid, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else f"{what}: {', '.join(valid)}"


def _parse(path: Path) -> tuple[Policy | None, list[PolicyProblem]]:
    name = str(path)
    if not path.exists():
        return None, [PolicyProblem(name, None, "no such policy file")]
    if not path.is_file():
        return None, [PolicyProblem(name, None, "not a file (name the policy YAML file, e.g. policies/default.yaml)")]
    return _parse_bytes(path.read_bytes(), name)


def _parse_bytes(data: bytes, name: str) -> tuple[Policy | None, list[PolicyProblem]]:
    try:
        text = data.decode("utf-8")
        node = yaml.compose(text)
        raw = load_unique(text)
    except UnicodeDecodeError as exc:
        from calibgate.paths import wide_encoding

        if wide := wide_encoding(data):
            return None, [PolicyProblem(name, None, f"{wide} text, not UTF-8: re-encode it, e.g. iconv -f {wide} -t UTF-8")]
        return None, [PolicyProblem(name, None, f"not UTF-8 text ({exc.reason})")]
    except RecursionError:
        return None, [PolicyProblem(name, None, "not valid YAML: nested too deeply")]
    except yaml.YAMLError as exc:
        line, problem = describe_yaml_error(exc, text)
        prefix = "" if isinstance(exc, DuplicateKey) else "not valid YAML: "
        return None, [PolicyProblem(name, line, f"{prefix}{problem}")]
    if raw is None:
        return None, [PolicyProblem(name, None, "empty policy: it would enable no checks and promote anything "
                                                "(start from policies/default.yaml)")]
    if not isinstance(raw, dict):
        return None, [PolicyProblem(name, 1, "expected a mapping at the top level (schema_version, checks, planner, approvals)")]
    try:
        policy = Policy.model_validate(raw, strict=True)  # no bool/str -> number coercion (see the docstring)
    except ValidationError as exc:
        found = [PolicyProblem(name, _line(node, err["loc"]), _describe(err)) for err in exc.errors()]
        return None, sorted(found, key=lambda p: p.line or 0)
    rules = {check: _rules(config) for check, config in policy.enabled_checks().items()}
    if not any(rules.values()):  # a file that runs no check promotes anything: never what its author meant
        return None, [PolicyProblem(name, _line(node, ("checks",)), "the policy enables no checks, so the gate would "
                                    f"promote anything; add at least one under 'checks:' ({', '.join(CHECKS)})")]
    if all(getattr(rule, "severity", "fail") == "warn" for found in rules.values() for rule in found):
        return None, [PolicyProblem(name, _line(node, ("checks",)), "every check has severity: warn, so the gate could "
                                    "never block; make at least one check blocking (severity: fail, the default)")]
    policy._source = name
    policy._sha256 = hashlib.sha256(data).hexdigest()
    return policy, []


def _rules(config) -> list:
    """The rules one enabled check section holds: itself, or each rule of a mapping (``metrics: {key: rule}``)."""
    if isinstance(config, dict):
        return list(config.values())
    if isinstance(config, (list, tuple)):
        return list(config)
    return [config]


def _describe(err: dict) -> str:
    loc = list(err["loc"])
    dotted = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        return f"unknown key '{dotted}' ({_suggest(str(loc[-1]), _valid_keys(loc[:-1]))})"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"'{dotted}': required key is missing"
    if err["type"] in _EXPECTED:
        return f"'{dotted}': {_wrong_type(err['type'], err.get('input'))}"
    if isinstance(err.get("input"), (dict, list)):  # a section's own validator: its message names what is wrong
        return f"'{dotted}': {msg}"
    return f"'{dotted}': {msg} (got {err.get('input')!r})" if loc else msg


_EXPECTED = {"float_type": "a number", "int_type": "a whole number", "bool_type": "true or false", "string_type": "text"}


def _wrong_type(kind: str, value: Any) -> str:
    """A strict-mode type error as problem, bad value and fix (``min: true`` is a YAML boolean, not 1.0)."""
    expected = _EXPECTED[kind]
    got = f"the boolean {str(value).lower()}" if isinstance(value, bool) else (
        f"the string {value!r}" if isinstance(value, str) else repr(value))
    if kind == "bool_type":
        return f"expected {expected}, got {got}; write true or false, unquoted"
    if kind == "string_type":
        return f"expected {expected}, got {got}; quote the value"
    number = None
    if isinstance(value, (str, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            pass
    exponent = re.fullmatch(r"\s*([-+]?\d+)[eE]([-+]?\d+)\s*", value) if isinstance(value, str) else None
    if number is not None and not math.isfinite(number):
        fix = f"{str(value).strip()} is past the largest number (about 1.8e+308): write a finite number"
    elif exponent and kind == "float_type":  # YAML 1.1 reads 1e-3 as text: its exponent form needs a dot
        power = exponent[2] if exponent[2][0] in "+-" else f"+{exponent[2]}"  # and a signed exponent
        fix = f"YAML reads {value.strip()} unquoted as text, not a number: write {exponent[1]}.0e{power}"
    elif number is not None and (kind == "float_type" or number.is_integer()):
        shown = value.strip() if isinstance(value, str) and kind == "float_type" else f"{number:.0f}" if kind == "int_type" else value
        fix = f"write {shown}" + (" (a number, unquoted)" if isinstance(value, str) else "")
    else:
        example = "0.5" if kind == "float_type" else "5"
        fix = f"write {expected} such as {example}" + (
            ", unquoted (YAML reads true/false/yes/no/on/off as booleans)" if isinstance(value, (bool, str)) else "")
    return f"expected {expected}, got {got}; {fix}"


def _valid_keys(parents: list) -> list[str]:
    """Keys allowed in the mapping at ``parents``, walking models and dict values."""
    from typing import get_args, get_origin

    current: Any = Policy
    for part in parents:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = None if field is None else field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return []
        # unwrap Optional / unions to the first model or dict member
        while current is not None and get_origin(current) not in (None, dict):
            members = [a for a in get_args(current) if a is not type(None)]
            current = members[0] if members else None
    if get_origin(current) is dict:
        return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _line(node: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the key at ``loc`` in the YAML node tree (the deepest one found)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
