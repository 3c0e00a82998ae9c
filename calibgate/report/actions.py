"""GitHub Actions integration: annotations for flagged checks, the step summary, links to the run.

Workflow commands follow docs.github.com/actions/reference/workflow-commands-for-github-actions;
values are escaped as @actions/core does (``%``, CR, LF; also ``:`` and ``,``
in properties), so a message can never smuggle in a second command. This
module builds lines and writes files; the CLI prints them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from calibgate.errors import ConfigError
from calibgate.paths import path_error, special_file
from calibgate.records.decision import GateDecision

_LEVEL = {"FAIL": "error", "ERROR": "error", "WARN": "warning"}
MAX_ANNOTATIONS = 50


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(decision: GateDecision) -> list[str]:
    """``::error title=...::message`` for FAIL/ERROR checks and ``::warning`` for WARN, worst first."""
    lines = []
    flagged = sorted((c for c in decision.checks if c.status in _LEVEL), key=lambda c: c.status != "ERROR")
    for check in flagged[:MAX_ANNOTATIONS]:
        title = f"calibgate {check.status}: {check.id}"
        detail = check.message
        if check.value is not None and check.threshold is not None:
            detail += f" (value {check.value:.4g}, threshold {check.threshold:.4g})"
        lines.append(f"::{_LEVEL[check.status]} title={_escape_property(title)}::{_escape_data(detail)}")
    if len(flagged) > MAX_ANNOTATIONS:
        lines.append(
            f"::warning title=calibgate::{len(flagged) - MAX_ANNOTATIONS} more flagged checks; see the step summary"
        )
    if decision.decision == "error":
        lines.append(f"::error title=calibgate gate error::{_escape_data(decision.summary)}")
    return lines


def step_summary_path(env: Mapping[str, str] | None = None) -> Path | None:
    """``$GITHUB_STEP_SUMMARY`` checked before anything is written: None when unset, ConfigError when it cannot be a file.

    Commands check it first, so a variable that names a directory, a FIFO, a
    device or a missing folder stops them before they write a report or
    records, not after.
    """
    env = os.environ if env is None else env
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    fix = "point GITHUB_STEP_SUMMARY at a file you can write"
    if path.is_dir():
        raise ConfigError(f"GITHUB_STEP_SUMMARY names a directory: {path}", fix=fix)
    if kind := special_file(path):  # a FIFO without a reader held the append open for ever (a hung CI job)
        raise ConfigError(f"GITHUB_STEP_SUMMARY names {kind}, not a file: {path}", fix=fix)
    if not path.parent.is_dir():
        raise ConfigError(f"GITHUB_STEP_SUMMARY is in a folder that does not exist: {path}", fix=fix)
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise ConfigError(f"GITHUB_STEP_SUMMARY is not writable: {path}", fix=fix)
    return path


def write_step_summary(markdown: str, *, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY``; None when it is not set (not in Actions)."""
    path = step_summary_path(env)
    if path is None:
        return None
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as exc:  # checked above; what is left here is the machine's (a full disk) or a race
        error = path_error(exc, path, "append the step summary to")
        if isinstance(error, ConfigError):
            error = ConfigError(error.message, fix="point GITHUB_STEP_SUMMARY at a file you can write")
        raise error from None
    return path


def run_links(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Links to the workflow run and commit the report is about, from the variables every Actions job has.

    In a ``workflow_run`` job (post-report.yml) ``GITHUB_RUN_ID`` is the posting job's run and ``GITHUB_SHA`` the
    default branch's head: a PR comment linked "commit" to a commit the gate never judged. There the links are the
    triggering run's and its head commit's, read from the event; none when the event does not say.
    """
    import re

    env = os.environ if env is None else env
    server, repo = env.get("GITHUB_SERVER_URL", "").rstrip("/"), env.get("GITHUB_REPOSITORY", "")
    links: dict[str, str] = {}
    if not (server and repo):
        return links
    run_id, attempt, sha = env.get("GITHUB_RUN_ID"), env.get("GITHUB_RUN_ATTEMPT"), env.get("GITHUB_SHA")
    if env.get("GITHUB_EVENT_NAME") == "workflow_run":
        run = (_event(env) or {}).get("workflow_run")
        run = run if isinstance(run, dict) else {}
        run_id = str(run["id"]) if _positive(run.get("id")) else None
        attempt = str(run["run_attempt"]) if _positive(run.get("run_attempt")) else None
        head = run.get("head_sha")
        sha = head if isinstance(head, str) and re.fullmatch(r"[0-9a-f]{40}", head) else None
    if run_id:
        links["workflow run"] = f"{server}/{repo}/actions/runs/{run_id}" + (
            f"/attempts/{attempt}" if attempt and attempt != "1" else ""
        )
    if sha:
        links["commit"] = f"{server}/{repo}/commit/{sha}"
    return links


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _event(env: Mapping[str, str]) -> dict | None:
    """The event payload at ``$GITHUB_EVENT_PATH`` as a JSON object; None when it is unset, unreadable or not one."""
    import json

    path = env.get("GITHUB_EVENT_PATH")
    if not path or special_file(path):  # a FIFO would block the read for ever; /dev/zero would never end
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


def in_actions(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("GITHUB_ACTIONS") == "true"


def event_pull_number(env: Mapping[str, str] | None = None) -> int | None:
    """The PR number of a ``pull_request`` event, read from ``$GITHUB_EVENT_PATH``; None otherwise."""
    env = os.environ if env is None else env
    if not env.get("GITHUB_EVENT_NAME", "").startswith("pull_request"):
        return None
    pull = (_event(env) or {}).get("pull_request")  # valid JSON of another shape: no PR either
    number = pull.get("number") if isinstance(pull, dict) else None
    return number if _positive(number) else None
