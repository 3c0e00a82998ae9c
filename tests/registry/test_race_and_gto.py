"""Two clones racing on one bare remote, and gto reading what calibgate wrote."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.registry.conftest import adopt_policy, git, local_tags, remote_tags

from calibgate.errors import RegistryError
from calibgate.registry import api

APPROVED = ["alice", "bob"]


def clone(project, name):
    target = project.parent / name
    git(project.parent, "clone", "-q", str(project.parent / "origin.git"), str(target))
    return target


def test_two_promotions_racing_end_with_one_winner(project):
    api.register("runs/a")
    api.register("runs/b")
    a, b = clone(project, "clone-a"), clone(project, "clone-b")  # both fetched the same state
    won = api.promote("router@v1.0.0", approved_by=APPROVED, repo=a, policy=a / "policies/gate.yaml")
    assert won.tag == "router#production#1"
    # b fetched before a pushed: it computes the same tag name, and the remote keeps a's
    with pytest.raises(RegistryError, match="rejected") as err:
        api.promote("router@v1.1.0", approved_by=APPROVED, repo=b, policy=b / "policies/gate.yaml", fetch=False)
    assert "git fetch --tags origin" in err.value.fix and err.value.exit_code == 2
    assert "router#production#1" not in local_tags(b)  # the loser's tag is gone: its clone stays consistent
    origin = project.parent / "origin.git"
    message = git(origin, "tag", "-l", "--format=%(contents)", "router#production#1")
    assert '"version": "v1.0.0"' in message
    # after fetching (the default), b's promotion is the next event and every clone agrees
    again = api.promote("router@v1.1.0", approved_by=APPROVED, repo=b, policy=b / "policies/gate.yaml")
    assert again.tag == "router#production#2" and again.record.previous == "v1.0.0"
    git(a, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*")
    assert local_tags(a) == local_tags(b) == remote_tags(origin)
    assert [v.stages for v in api.list_versions("router", repo=a)] == [[], ["production"]]


def test_concurrent_promotions_from_two_processes(project):
    """Real concurrency: both processes fetch, tag and push at once; the registry ends consistent either way."""
    api.register("runs/a")
    api.register("runs/b")
    a, b = clone(project, "clone-a"), clone(project, "clone-b")
    code = ("import sys; from calibgate.registry import api; from calibgate.errors import RegistryError\n"
            "try:\n api.promote(sys.argv[1], approved_by=['alice','bob'], policy='policies/gate.yaml'); print('won')\n"
            "except RegistryError as e: print('lost', e)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, ref], cwd=repo, stdout=subprocess.PIPE, text=True,
                              env={**__import__("os").environ, "PYTHONPATH": str(__import__("pathlib").Path(api.__file__).parents[2])})
             for repo, ref in ((a, "router@v1.0.0"), (b, "router@v1.1.0"))]
    outcomes = [p.communicate(timeout=60)[0] for p in procs]
    assert any(o.startswith("won") for o in outcomes), outcomes
    origin = project.parent / "origin.git"
    stage_tags = {t for t in remote_tags(origin) if "#" in t}
    assert stage_tags in ({"router#production#1"}, {"router#production#1", "router#production#2"})
    for repo, out in zip((a, b), outcomes):  # a loser keeps no tag the remote lacks
        assert local_tags(repo) <= remote_tags(origin), out


def test_gto_show_reads_our_registry(project):
    """gto orders stage events by tag time (1 s resolution), calibgate by counter; they agree even for fast sequences."""
    from gto.api import _show_versions, show

    for run in ("a", "b", "c"):
        api.register(f"runs/{run}")
    api.promote("router@v1.0.0", approved_by=APPROVED)
    api.promote("router@v1.1.0", approved_by=APPROVED)
    api.promote("router@v1.1.0", stage="staging")
    state = show(str(project))
    assert state["router"]["version"] == "v1.2.0"
    assert state["router"]["stage"] == {"production": "v1.1.0", "staging": "v1.1.0"}
    api.rollback("router")
    api.deprecate("router@v1.2.0")
    state = show(str(project))
    assert state["router"]["stage"]["production"] == "v1.0.0" and state["router"]["version"] == "v1.1.0"
    versions = {v["version"]: v for v in _show_versions(str(project), "router")}
    assert set(versions) == {"v1.0.0", "v1.1.0"}  # gto hides the deregistered v1.2.0 like we mark it deprecated
    assert versions["v1.0.0"]["commit_hexsha"] == api.show_version("router@v1.0.0").commit
    ours = {v.version: v.stages for v in api.list_versions("router")}
    assert ours == {"v1.0.0": ["production"], "v1.1.0": ["staging"], "v1.2.0": []}


def test_we_read_a_stage_gto_assigned(project):
    import gto.api

    api.register("runs/a")
    gto.api.assign(str(project), "router", "production", version="v1.0.0", message="by gto")
    assert api.list_versions("router")[0].stages == ["production"]
    assert api.show_version("router@v1.0.0").history[0].action == "promote"


RACER = """\
import json, os, sys, time
from pathlib import Path
from calibgate.registry import api
from calibgate.errors import CalibgateError
go = Path(sys.argv[2])
while not go.exists():  # every racer has imported calibgate: start together
    time.sleep(0.005)
try:
    if sys.argv[1] == 'register':
        print(json.dumps({'ok': api.register(sys.argv[3], push=False).version}))
    else:
        r = api.promote(sys.argv[3], approved_by=['alice', 'bob'], push=False, policy='policies/race.yaml')
        print(json.dumps({'ok': r.tag, 'previous': r.record.previous}))
except CalibgateError as e:
    print(json.dumps({'error': str(e)}))
"""


def _race(project, jobs: list[tuple[str, str]]) -> list[dict]:
    """Start one process per (operation, ref) in the same working copy, release them at once, return their results."""
    import json
    import os
    from pathlib import Path

    go = project.parent / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(api.__file__).parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, op, str(go), ref], cwd=project, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for op, ref in jobs]
    import time

    time.sleep(3)  # let every racer import calibgate and wait at the start line
    go.write_text("go")
    outs = [p.communicate(timeout=180) for p in procs]
    go.unlink()
    return [json.loads(out.strip().splitlines()[-1]) if out.strip() else {"crash": err[-400:]} for out, err in outs]


def test_processes_racing_in_one_working_copy_are_serialized(project):
    """Before: each process chose the tag from state read before the others tagged; now read-decide-write is locked."""
    (project / "policies" / "race.yaml").write_text(
        "checks:\n  accuracy_floor: {min: 0.5}\napprovals:\n  production: {required: 2, approvers: [alice, bob]}\n")
    adopt_policy(project, "policies/race.yaml")
    registered = _race(project, [("register", f"runs/{r}") for r in ("a", "b", "c")])
    assert all("ok" in r for r in registered), registered
    assert sorted(r["ok"] for r in registered) == ["v1.0.0", "v1.1.0", "v1.2.0"]  # three distinct versions
    promoted = _race(project, [("promote", f"router@{v}") for v in ("v1.0.0", "v1.1.0", "v1.2.0")])
    assert all("ok" in r for r in promoted), promoted
    tags = {t for t in local_tags(project) if "#" in t}
    assert tags == {"router#production#1", "router#production#2", "router#production#3"}
    history = api.show_version("router@v1.0.0").history
    # each promotion saw the one before it: the chain of 'previous' has no gap and no fork
    holders = [None] + [e.version for e in history]
    assert [r["previous"] for r in sorted(promoted, key=lambda r: r["ok"])] == holders[:-1]
    # the same version promoted by two processes at once: one wins, the other is told it is already there
    assert api.register("runs/worse", push=False).version == "v1.3.0"
    twice = _race(project, [("promote", "router@v1.3.0"), ("promote", "router@v1.3.0")])
    assert sorted("ok" in r for r in twice) == [False, True], twice
    assert "already in production" in next(r["error"] for r in twice if "error" in r)
    assert (project / ".git" / "calibgate-registry.lock").exists()  # in the git directory: never committed
    assert "lock" not in git(project, "status", "--porcelain", "--ignored")


def test_a_version_registered_without_a_push_goes_to_the_remote_with_its_first_stage_tag(project):
    """register --no-push, then promote: the remote got router#production#1 for a version it did not have, and every
    other clone's registry was unreadable ('records version v1.0.0, which is not registered'). The version tag now
    travels in the same atomic push as the stage (or deprecation) tag."""
    api.register("runs/a", push=False)
    origin = project.parent / "origin.git"
    assert remote_tags(origin) == set()
    api.promote("router@v1.0.0", approved_by=APPROVED)
    assert remote_tags(origin) == {"router@v1.0.0", "router#production#1"}
    api.register("runs/b", push=False)
    api.deprecate("router@v1.1.0", reason="trained on leaked data")
    assert {"router@v1.1.0", "router@v1.1.0!"} <= remote_tags(origin)
    other = clone(project, "clone-c")
    assert [v.stages for v in api.list_versions("router", repo=other)][0] == ["production"]


def test_a_process_waiting_for_the_registry_lock_says_so(project, capfd):
    """It waited up to five minutes without a word: a hang, to whoever watched it."""
    from filelock import FileLock

    from calibgate.registry.common import registry_lock
    from calibgate.registry.gitrepo import GitRepo

    held = FileLock(str(project / ".git" / "calibgate-registry.lock"))
    held.acquire()
    try:
        with pytest.raises(RegistryError, match="held the registry lock"):
            with registry_lock(GitRepo(project), timeout=3):
                pass
    finally:
        held.release()
    err = capfd.readouterr().err
    assert err.count("waiting for another calibgate process to release") == 1, err
    with registry_lock(GitRepo(project), timeout=3):
        pass
    assert "waiting" not in capfd.readouterr().err


def test_a_version_gto_deprecated_holds_no_stage_for_calibgate_either(project):
    """Before: after 'gto deprecate router v1.1.0' while v1.1.0 was in production, gto showed production = v1.0.0
    while calibgate kept the deprecated v1.1.0 there, as the gate's baseline too. A deprecated version further down
    a stage's history is passed over by a rollback, as gto passes over it."""
    import time

    from gto.api import deregister, show

    for run in ("a", "b", "c"):
        api.register(f"runs/{run}")
    api.promote("router@v1.0.0", approved_by=APPROVED)
    api.promote("router@v1.1.0", approved_by=APPROVED)
    time.sleep(1.1)  # tag dates have 1 s resolution: gto reads the deregistration as the version's latest event
    deregister(str(project), "router", version="v1.1.0")  # 'gto deprecate router v1.1.0' on the command line
    assert show(str(project))["router"]["stage"]["production"] == "v1.0.0"
    assert {v.version: v.stages for v in api.list_versions("router")} == {"v1.0.0": ["production"], "v1.1.0": [], "v1.2.0": []}
    assert api.production_baseline(project, "router")[0] == "router@v1.0.0"
    with pytest.raises(RegistryError, match="no earlier production version"):
        api.rollback("router")
    api.promote("router@v1.2.0", approved_by=APPROVED)
    assert api.rollback("router").record.version == "v1.0.0"
    assert show(str(project))["router"]["stage"]["production"] == "v1.0.0"


@pytest.mark.parametrize("where", ["remote", "local"])
def test_a_push_refused_by_a_hook_is_not_a_lost_race(project, where):
    """Before: a remote whose tag protection (a pre-receive hook) refuses the tag was reported as 'another clone
    changed the registry first; fetch and retry', which cannot help; a local pre-push hook's refusal lost the
    hook's words ('failed to push some refs')."""
    from click.testing import CliRunner

    from calibgate.cli import cli

    hooks = project.parent / "origin.git" / "hooks" if where == "remote" else project / ".git" / "hooks"
    hook = hooks / ("pre-receive" if where == "remote" else "pre-push")
    hook.write_text("#!/bin/sh\necho 'tags under router need a release manager' >&2\nexit 1\n")
    hook.chmod(0o755)
    result = CliRunner().invoke(cli, ["registry", "register", "runs/a"], catch_exceptions=False)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 3 and len(lines) == 1, result.output
    assert "tags under router need a release manager" in lines[0] and "another clone" not in lines[0]
    assert ("refused the tag" in lines[0]) == (where == "remote")
    assert local_tags(project) == set() and remote_tags(project.parent / "origin.git") == set()
