"""A tiny GitHub REST API on 127.0.0.1 for the client's tests.

It answers the endpoints calibgate uses with GitHub's shapes: issue comments
(paginated by ``Link`` headers), issues, pull requests, a workflow run's deployment reviews; 401 without the right
token, 404 for other repositories, and a rate-limit or 5xx mode on demand.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "test-token"
REPO = "octo/models"


@dataclass
class FakeState:
    page_size: int = 2
    comments: dict[int, list[dict]] = field(default_factory=dict)
    issues: list[dict] = field(default_factory=list)
    pulls: dict[int, dict] = field(default_factory=dict)
    approvals: dict[int, list[dict]] = field(default_factory=dict)  # workflow run id -> deployment reviews
    requests: list[dict] = field(default_factory=list)
    rate_limited: bool = False
    fail_5xx: int = 0
    redirect_to: str | None = None
    next_id: int = 1000


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeGitHub/1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    @property
    def state(self) -> FakeState:
        return self.server.state  # type: ignore[attr-defined]

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        state = self.state
        state.requests.append(
            {
                "method": method,
                "path": parts.path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        if state.rate_limited:
            return self._send(
                403,
                {"message": "API rate limit exceeded"},
                {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000000"},
            )
        if state.redirect_to:
            return self._send(301, {"message": "Moved Permanently"}, {"Location": state.redirect_to + parts.path})
        if state.fail_5xx > 0:
            state.fail_5xx -= 1
            return self._send(502, {"message": "Server Error"})
        path = parts.path
        if not path.startswith(f"/repos/{REPO}/"):
            return self._send(404, {"message": "Not Found"})
        rest = path[len(f"/repos/{REPO}/") :]
        if m := re.fullmatch(r"issues/(\d+)/comments", rest):
            number = int(m.group(1))
            if method == "GET":
                return self._page(state.comments.get(number, []), query, path)
            if method == "POST":
                return self._send(201, self._new_comment(number, body["body"]))
        if (m := re.fullmatch(r"issues/comments/(\d+)", rest)) and method == "PATCH":
            for comments in state.comments.values():
                for comment in comments:
                    if comment["id"] == int(m.group(1)):
                        comment["body"] = body["body"]
                        return self._send(200, comment)
            return self._send(404, {"message": "Not Found"})
        if (m := re.fullmatch(r"pulls/(\d+)", rest)) and method == "GET":
            pull = state.pulls.get(int(m.group(1)))
            return self._send(200, pull) if pull else self._send(404, {"message": "Not Found"})
        if rest == "issues" and method == "GET":
            labels = set(filter(None, query.get("labels", "").split(",")))
            found = [i for i in state.issues if i["state"] == query.get("state", "open") and labels <= set(i["labels"])]
            return self._page(found, query, path)
        if rest == "issues" and method == "POST":
            state.next_id += 1
            issue = {
                "number": len(state.issues) + 1,
                "title": body["title"],
                "body": body["body"],
                "state": "open",
                "labels": body.get("labels", []),
                "html_url": f"https://github.test/{REPO}/issues/{len(state.issues) + 1}",
            }
            state.issues.append(issue)
            return self._send(201, issue)
        if (m := re.fullmatch(r"actions/runs/(\d+)/approvals", rest)) and method == "GET":
            return self._send(200, state.approvals.get(int(m.group(1)), []))
        if rest == "pulls" and method == "POST":
            number = 100 + len(state.pulls)
            state.pulls[number] = {
                "number": number,
                "head": {"sha": "0" * 40, "ref": body["head"]},
                "html_url": f"https://github.test/pull/{number}",
            }
            return self._send(201, state.pulls[number])
        return self._send(404, {"message": "Not Found"})

    def _new_comment(self, number: int, text: str) -> dict:
        state = self.state
        state.next_id += 1
        comment = {
            "id": state.next_id,
            "body": text,
            "user": {"login": "github-actions[bot]", "type": "Bot"},
            "html_url": f"https://github.test/{REPO}/pull/{number}#issuecomment-{state.next_id}",
        }
        state.comments.setdefault(number, []).append(comment)
        return comment

    def _page(self, items: list, query: dict, path: str) -> None:
        size = min(int(query.get("per_page", 30)), self.state.page_size)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        if page * size < len(items):
            host, port = self.server.server_address[:2]  # type: ignore[attr-defined]
            rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "page")
            headers["Link"] = f'<http://{host}:{port}{path}?{rest}&page={page + 1}>; rel="next"'
        self._send(200, chunk, headers)

    def _send(self, status: int, payload, headers: dict | None = None) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)


class FakeGitHub:
    """Context manager: ``with FakeGitHub() as gh: gh.url, gh.state``."""

    def __init__(self):
        self.state = FakeState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.state = self.state  # type: ignore[attr-defined]
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
