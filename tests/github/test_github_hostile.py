"""The client against a server that is not GitHub's REST API, on 127.0.0.1: slow drips, endless bodies, odd shapes.

Each answer is one line and exit 3 (GitHubUnavailableError), never a hang or an internal error.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from calibgate.github import GitHubClient, GitHubUnavailableError, upsert_comment
from calibgate.github.client import MAX_RESPONSE_BYTES
from calibgate.github.comments import marker
from calibgate.github.issues import open_or_comment_issue

REPO = "octo/models"


class Hostile:
    """A server whose every answer ``answer(handler)`` writes."""

    def __init__(self, answer):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.answer(self)

            do_POST = do_PATCH = do_GET

        self.answer = answer
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile():
    servers = []

    def start(answer) -> GitHubClient:
        server = Hostile(answer)
        servers.append(server)
        return GitHubClient("t0ken", api_url=server.url, timeout=2, deadline=3, retries=0, backoff=0)

    yield start
    for server in servers:
        server.close()


def _json(status: int, body):
    def answer(handler):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    return answer


def test_a_body_dripped_a_byte_at_a_time_ends_at_the_deadline(hostile):
    """Each byte comes before the 2 s read timeout, so only a deadline for the whole answer ends it."""
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    client = hostile(drip)
    started = time.monotonic()
    with pytest.raises(GitHubUnavailableError, match="took over 3 s"):
        client.list_issue_comments(REPO, 1)
    assert time.monotonic() - started < 30  # the 1000-byte drip alone would take over eight minutes


def test_an_answer_larger_than_any_rest_answer_is_refused(hostile):
    def endless(handler):
        handler.send_response(200)
        handler.end_headers()
        chunk = b"[" + b" " * (1 << 20)
        try:
            for _ in range((MAX_RESPONSE_BYTES >> 20) + 2):
                handler.wfile.write(chunk)
        except OSError:
            pass

    client = GitHubClient("t0ken", api_url=(server := Hostile(endless)).url, timeout=5, deadline=60, retries=0)
    try:
        with pytest.raises(GitHubUnavailableError, match="answered more than 64 MiB"):
            client.get_pull(REPO, 1)
    finally:
        server.close()


@pytest.mark.parametrize("status, body, call", [
    (201, b"<html>created</html>", "create"),  # not JSON
    (201, {"id": "abc"}, "create"),  # an id that is not a number
    (201, {"id": True}, "create"),
    (201, ["not", "an", "object"], "create"),
    (200, ["a", "b"], "list"),  # a comment list of strings
    (200, "a string", "pull"),
])
def test_answers_of_another_shape_are_one_line_not_an_internal_error(hostile, status, body, call):
    client = hostile(_json(status, body))
    with pytest.raises(GitHubUnavailableError, match="REST API|list of objects") as info:
        if call == "create":
            upsert_comment(client, REPO, 1, marker("m"))  # lists (a non-list: refused too), then creates
        elif call == "list":
            client.list_issue_comments(REPO, 1)
        else:
            client.get_pull(REPO, 1)
    assert "\n" not in str(info.value)


def test_a_comment_whose_user_is_not_an_object_is_simply_not_a_bot(hostile):
    mark = marker("m")
    client = hostile(_json(200, [{"id": 1, "body": mark, "user": "octocat"}]))
    assert upsert_comment(client, REPO, 1, mark).action == "unchanged"


def test_a_pull_whose_head_is_not_an_object_is_not_the_gated_commit(hostile):
    from calibgate.errors import ConfigError
    from calibgate.github.comments import check_pull_head

    client = hostile(_json(200, {"head": "main"}))
    with pytest.raises(ConfigError, match="head is unknown, not the gated commit"):
        check_pull_head(client, REPO, 1, "a" * 40)


def test_an_issue_list_whose_number_is_not_one_is_refused(hostile):
    mark = marker("drift")
    client = hostile(_json(200, [{"number": "7", "body": mark, "state": "open"}]))
    with pytest.raises(GitHubUnavailableError, match="no positive integer 'number'"):
        open_or_comment_issue(client, REPO, title="t", body=mark + "\nx", mark=mark)
