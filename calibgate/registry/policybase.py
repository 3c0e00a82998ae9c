"""The policy a git revision gates with, for comparing the one applied now with it (:mod:`calibgate.policy.compare`).

Used by the gate in a pull request (the base branch's policy) and by ``registry promote`` (the policy committed at
HEAD), so the policy of a change, or one named with ``--policy``, is never quietly weaker than the reviewed one.
"""

from __future__ import annotations

from pathlib import Path

from calibgate.policy.schema import Policy
from calibgate.registry.gitrepo import GitRepo


def compare_with_base(policy: Policy, ref: str, config, repo: str | Path):
    """The ``policy_change`` check: ``policy`` against the policy ``calibgate.yaml`` names at git revision ``ref``."""
    from calibgate.policy.compare import policy_change_check

    base, problem = policy_at(ref, config, repo)
    return policy_change_check(base, policy, ref=ref, problem=problem)


def policy_at(ref: str, config, repo: str | Path) -> tuple[Policy | None, str | None]:
    """(the policy, None) that calibgate.yaml names at git revision ``ref``; (None, why) when it cannot be read;
    (None, None) when the revision has no policy yet.

    The revision's own config says which policy file it gates with, so pointing
    calibgate.yaml (or ``--policy``) at a new, laxer file is compared too. A
    revision that does not resolve is :class:`ConfigError` (exit 2: in CI,
    fetch the base branch).
    """
    from posixpath import normpath

    import yaml

    from calibgate.errors import ConfigError, PolicyError, RegistryError
    from calibgate.policy.loader import parse_policy

    git = GitRepo(repo)
    try:
        commit = git.git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").strip()
    except RegistryError:
        raise ConfigError(f"--policy-base {ref!r} is not a commit in {git.root}",
                          fix="fetch the base branch (actions/checkout with fetch-depth: 0), or pass --policy-base REF") from None
    source = Path(config.source).resolve() if config.source else Path(config.root).resolve() / "calibgate.yaml"
    try:
        config_rel = source.relative_to(git.root.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"{source} is outside the git repository {git.root}", fix="run in the project's repository") from None
    policy_key = "policies/default.yaml"
    text = git.show_file(commit, config_rel)
    if text is not None:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError:
            raw = None
        if not isinstance(raw, dict) or not isinstance(raw.get("policy", policy_key), str):
            return None, f"its {config_rel} cannot be read"
        policy_key = raw.get("policy", policy_key)
    policy_rel = normpath(f"{Path(config_rel).parent.as_posix()}/{policy_key}")
    data = git.show_bytes(commit, policy_rel)
    if data is None:
        return None, None
    try:
        return parse_policy(data, f"{ref}:{policy_rel}"), None
    except PolicyError as exc:
        return None, exc.message
