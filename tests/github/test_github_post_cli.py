"""calibgate report --post against the local fake API: one comment, updated in place on re-run."""

from __future__ import annotations


import pytest
from click.testing import CliRunner
from tests.github.fake_github import REPO, TOKEN

from tests.report.report_records import decision

from calibgate.cli import cli


def invoke(gh, args, **env):
    base = {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": gh.url,
        "GITHUB_ACTIONS": None,
        "GITHUB_STEP_SUMMARY": None,
        "GITHUB_REPOSITORY": None,
        "GITHUB_EVENT_NAME": None,
        "GITHUB_EVENT_PATH": None,
        "GITHUB_SERVER_URL": None,
    }
    return CliRunner().invoke(cli, args, env={**base, **env})


def test_post_then_update_same_comment(gh, tmp_path):
    path = tmp_path / "decision.json"
    path.write_text(decision("block").model_dump_json())
    args = [
        "report",
        "--decision",
        str(path),
        "--name",
        "intent-model",
        "-o",
        str(tmp_path / "r.md"),
        "--post",
        "--repo",
        REPO,
        "--pr",
        "7",
    ]
    first = invoke(gh, args)
    assert first.exit_code == 0, first.output
    assert f"comment created on {REPO}#7" in first.stderr
    path.write_text(decision("promote").model_dump_json())
    second = invoke(gh, args)
    assert second.exit_code == 0 and "comment updated" in second.stderr
    (comment,) = gh.state.comments[7]
    assert comment["body"].startswith("<!-- calibgate-report:intent-model -->\n## ✅ calibgate: PASS")


def test_pr_number_from_the_pull_request_event(gh, tmp_path):
    path = tmp_path / "decision.json"
    path.write_text(decision("block").model_dump_json())
    event = tmp_path / "event.json"
    event.write_text('{"pull_request": {"number": 12}}')
    result = invoke(
        gh,
        ["report", "--decision", str(path), "-o", str(tmp_path / "r.md"), "--post"],
        GITHUB_REPOSITORY=REPO,
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_EVENT_PATH=str(event),
    )
    assert result.exit_code == 0, result.output
    assert len(gh.state.comments[12]) == 1


def test_head_sha_mismatch_refuses_to_post(gh, tmp_path):
    gh.state.pulls[7] = {"number": 7, "head": {"sha": "a" * 40}}
    path = tmp_path / "decision.json"
    path.write_text(decision("block").model_dump_json())
    result = invoke(
        gh,
        [
            "report",
            "--decision",
            str(path),
            "-o",
            str(tmp_path / "r.md"),
            "--post",
            "--repo",
            REPO,
            "--pr",
            "7",
            "--expect-head-sha",
            "b" * 40,
        ],
    )
    assert result.exit_code == 2 and "not the gated commit" in result.stderr
    assert 7 not in gh.state.comments


def test_bad_token_one_line(gh, tmp_path):
    path = tmp_path / "decision.json"
    path.write_text(decision("block").model_dump_json())
    result = invoke(
        gh,
        ["report", "--decision", str(path), "-o", str(tmp_path / "r.md"), "--post", "--repo", REPO, "--pr", "7"],
        GITHUB_TOKEN="expired",
    )
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "401" in result.stderr and "Bad credentials" in result.stderr
    missing = invoke(
        gh,
        ["report", "--decision", str(path), "-o", str(tmp_path / "r.md"), "--post", "--repo", REPO, "--pr", "7"],
        GITHUB_TOKEN=None,
    )
    assert missing.exit_code == 2 and "GITHUB_TOKEN is not set" in missing.stderr


def test_drift_opens_issue_once(gh, tmp_path, tiny_bert_dir):
    """Real measurement on the tiny random encoder: production texts that look nothing like training texts."""
    from tests.conftest import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", [{"text": f"please reset my card {i}"} for i in range(60)])
    write_jsonl(tmp_path / "prod.jsonl", [{"text": " ".join(["zebra quantum violin"] * (3 + i % 4))} for i in range(60)])
    (tmp_path / "calibgate.yaml").write_text(
        f"name: intent-model\nmodel: {tiny_bert_dir}\ndata:\n  train: train.jsonl\n  production: prod.jsonl\n"
        "  dvc_target: null\n"
    )
    args = ["drift", "--config", str(tmp_path / "calibgate.yaml"), "--repo", REPO]
    first, second = invoke(gh, args), invoke(gh, args)
    assert first.exit_code == 0 and "issue #1 opened" in first.stdout
    assert second.exit_code == 0 and "issue #1 commented" in second.stdout
    assert gh.state.issues[0]["body"].startswith("<!-- calibgate-drift:intent-model -->")
    assert gh.state.issues[0]["labels"] == ["calibgate-drift"]


@pytest.mark.parametrize("event", ["[]", '"x"', "7", '{"pull_request": "7"}', '{"pull_request": [7]}',
                                   '{"pull_request": {"number": "12"}}', '{"pull_request": {"number": true}}'])
def test_an_event_file_of_another_shape_is_no_pr_number_not_a_crash(gh, tmp_path, event):
    path = tmp_path / "decision.json"
    path.write_text(decision("block").model_dump_json())
    (tmp_path / "event.json").write_text(event)
    result = invoke(gh, ["report", "--decision", str(path), "-o", str(tmp_path / "r.md"), "--post"],
                    GITHUB_REPOSITORY=REPO, GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(tmp_path / "event.json"))
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "--pr" in result.stderr and gh.state.comments == {}


def test_an_event_path_that_is_a_fifo_is_no_event_not_a_hang(gh, tmp_path):
    """Before: GITHUB_EVENT_PATH was read without asking what it is, so a FIFO without a writer blocked the command for
    ever. Here a writer waits for a reader, so without the check the event's PR number was read through the pipe."""
    import os
    import threading

    path = tmp_path / "decision.json"
    path.write_text(decision("block").model_dump_json())
    fifo = tmp_path / "event.json"
    os.mkfifo(fifo)

    def write_event():
        with open(fifo, "w") as fh:  # blocks until a reader opens the pipe
            fh.write('{"pull_request": {"number": 12}}')

    writer = threading.Thread(target=write_event, daemon=True)
    writer.start()
    try:
        result = invoke(gh, ["report", "--decision", str(path), "-o", str(tmp_path / "r.md"), "--post"],
                        GITHUB_REPOSITORY=REPO, GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(fifo))
    finally:
        if writer.is_alive():  # the command never opened the pipe: open it here, so the writer ends
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            writer.join(timeout=10)
            os.close(reader)
    assert result.exit_code == 2, result.output
    assert "--pr" in result.stderr and 12 not in gh.state.comments
