"""post-report.yml's own scripts, run with bash against the local fake API, on artifacts a fork could craft.

The artifact comes from a pull request's run: its pr-number and records are data. Whatever they hold, the job
posts only to the PR whose head is the gated commit, links that commit and that run (not the posting job's),
and refuses what it cannot vouch for, posting nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.github.fake_github import REPO, TOKEN
from tests.report.report_records import decision

ROOT = Path(__file__).resolve().parents[2]
HEAD = "b" * 40  # the gated commit: the workflow_run's head_sha
MAIN = "a" * 40  # GITHUB_SHA in a workflow_run job: the default branch's head
GATE_RUN, POST_RUN = 555, 999


def post_steps() -> dict[str, dict]:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "post-report.yml").read_text(encoding="utf-8"))
    return {s["name"]: s for s in wf["jobs"]["post"]["steps"] if "run" in s}


def step(kind: str) -> str:
    (script,) = [s["run"] for name, s in post_steps().items() if kind in name]
    return script


@pytest.fixture
def env(tmp_path, gh):
    """A workflow_run job's environment, with 'calibgate' on PATH running this checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "calibgate"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m calibgate "$@"\n')
    shim.chmod(0o755)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"workflow_run": {"id": GATE_RUN, "run_attempt": 1, "head_sha": HEAD,
                                                  "event": "pull_request"}}))
    (tmp_path / "runner").mkdir()
    (tmp_path / "summary.md").write_text("")
    (tmp_path / "output").write_text("")
    gh.state.pulls[7] = {"number": 7, "head": {"sha": HEAD}}
    gh.state.pulls[8] = {"number": 8, "head": {"sha": "c" * 40}}  # another PR: its head is another commit
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {
        **keep,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": gh.url,
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": str(POST_RUN),
        "GITHUB_SHA": MAIN,
        "GITHUB_EVENT_NAME": "workflow_run",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "RUNNER_TEMP": str(tmp_path / "runner"),
        "ARTIFACT": str(tmp_path / "artifact"),
        "HEAD_SHA": HEAD,
    }


def artifact(env, pr_number: bytes | None = b"7\n", record=None) -> Path:
    out = Path(env["ARTIFACT"])
    out.mkdir()
    if pr_number is not None:
        (out / "pr-number").write_bytes(pr_number)
    (out / "decision.json").write_text(record if isinstance(record, str) else (record or decision("promote")).model_dump_json())
    return out


def run(script: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=120)


def validated_number(env) -> subprocess.CompletedProcess:
    result = run(step("Validate the PR number"), env)
    if result.returncode == 0:
        lines = Path(env["GITHUB_OUTPUT"]).read_text().splitlines()
        env["PR_NUMBER"] = dict(line.split("=", 1) for line in lines)["number"]
    return result


def test_the_comment_links_the_gated_run_and_commit_not_the_posting_job(env, gh):
    artifact(env)
    assert validated_number(env).returncode == 0 and env["PR_NUMBER"] == "7"
    posted = run(step("Post or update"), env)
    assert posted.returncode == 0, posted.stderr
    (comment,) = gh.state.comments[7]
    body = comment["body"]
    assert f"[commit](<https://github.com/{REPO}/commit/{HEAD}>)" in body
    assert f"[workflow run](<https://github.com/{REPO}/actions/runs/{GATE_RUN}>)" in body
    assert MAIN not in body and f"/runs/{POST_RUN}" not in body, "the default branch's head and the posting job's run"
    assert "calibgate: PASS" in Path(env["GITHUB_STEP_SUMMARY"]).read_text(), "README: it writes the step summary"


@pytest.mark.parametrize("content", [b"12\n34\n", b"7\n\n\n\n\n\n\n\n\n9", b"7\r\n", b" 7\n", b"07\n", b"7abc", b"-7",
                                     b"1234567890\n", b"7" + b"\n" * 100, b"", b"\xff7"])
def test_a_pr_number_that_is_not_one_plain_integer_is_refused(env, content):
    artifact(env, content)
    result = validated_number(env)
    assert result.returncode == 1 and "::error title=calibgate::" in result.stdout, (content, result.stdout)
    assert "number=" not in Path(env["GITHUB_OUTPUT"]).read_text()


def test_a_pr_number_file_that_is_a_link_or_missing_is_refused(env, tmp_path):
    out = artifact(env, None)
    assert validated_number(env).returncode == 1
    (tmp_path / "elsewhere").write_text("7\n")
    (out / "pr-number").symlink_to(tmp_path / "elsewhere")
    assert validated_number(env).returncode == 1


def forged_pass():
    """A decision that says promote over a failed check."""
    record = json.loads(decision("block").model_dump_json())
    record["decision"] = "promote"
    return json.dumps(record)


@pytest.mark.parametrize("pr_number, record, why", [
    (b"8\n", None, "not the gated commit"),               # another PR's number: its head is not this run's
    (b"7\n", forged_pass(), "contradicts its checks"),    # promote while a check says FAIL
    (b"7\n", '{"decision": "promote"}', "not a GateDecision record"),
])
def test_a_crafted_artifact_posts_nothing_anywhere(env, gh, pr_number, record, why):
    artifact(env, pr_number, record)
    assert validated_number(env).returncode == 0
    posted = run(step("Post or update"), env)
    assert posted.returncode == 2 and why in posted.stderr, posted.stderr
    assert not gh.state.comments and not any(r["method"] in ("POST", "PATCH") for r in gh.state.requests)


@pytest.mark.parametrize("event", ['{"workflow_run": {"id": true, "head_sha": "main"}}', "[]", "not json", None])
def test_a_workflow_run_event_that_does_not_say_links_nothing_rather_than_this_job(env, event):
    from calibgate.report.actions import run_links

    if event is None:
        env.pop("GITHUB_EVENT_PATH")
    else:
        Path(env["GITHUB_EVENT_PATH"]).write_text(event)
    assert run_links(env) == {}
    assert set(run_links({**env, "GITHUB_EVENT_NAME": "pull_request"})) == {"workflow run", "commit"}
