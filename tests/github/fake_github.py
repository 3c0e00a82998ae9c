"""A tiny GitHub REST API on 127.0.0.1 for the client's tests.

It answers the endpoints calibgate uses with GitHub's shapes: issue comments
(paginated by ``Link`` headers), issues, pull requests (create, list by head,
update), a workflow run's deployment reviews, and the git data API (refs, blobs,
trees, commits) holding files in memory; 401 without the right token, 404 for
other repositories, and a rate-limit, 5xx, refused-push or refused-PR mode on demand.
"""

from __future__ import annotations

import hashlib
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
    refs: dict[str, str] = field(default_factory=dict)  # "heads/main" -> commit sha
    blobs: dict[str, str] = field(default_factory=dict)  # sha -> text
    trees: dict[str, dict[str, str]] = field(default_factory=dict)  # sha -> {path: blob sha}, flat
    commits: dict[str, dict] = field(default_factory=dict)  # sha -> {"tree", "parents", "message"}
    refuse_push: int | None = None  # answer this status to every ref create/update (a protected branch, a read-only token)
    refuse_pulls: int | None = None  # answer this status to opening a pull request
    user: dict | None = None  # who the token is (GET /user, and the author of new comments); None: an Actions token

    def seed_branch(self, branch: str, sha: str, files: dict[str, str]) -> None:
        """Make ``branch`` point at a commit ``sha`` (e.g. the local HEAD) whose tree holds ``files``."""
        tree = self._store_tree({path: self._store_blob(text) for path, text in files.items()})
        self.commits[sha] = {"tree": tree, "parents": [], "message": "seed"}
        self.refs[f"heads/{branch}"] = sha

    def files_at(self, branch: str) -> dict[str, str]:
        """path -> text of every file at the head of ``branch``."""
        tree = self.trees[self.commits[self.refs[f"heads/{branch}"]]["tree"]]
        return {path: self.blobs[sha] for path, sha in tree.items()}

    def _store_blob(self, text: str) -> str:
        sha = hashlib.sha1(b"blob:" + text.encode()).hexdigest()
        self.blobs[sha] = text
        return sha

    def _store_tree(self, entries: dict[str, str]) -> str:
        sha = hashlib.sha1(b"tree:" + json.dumps(entries, sort_keys=True).encode()).hexdigest()
        self.trees[sha] = dict(entries)
        return sha


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

    def do_DELETE(self):
        self._dispatch("DELETE")

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
        if path == "/user" and method == "GET":  # an integration's token (GITHUB_TOKEN) is no user
            return self._send(200, state.user) if state.user else self._send(403, {"message": "Resource not accessible by integration"})
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
                "user": dict(state.user or {"login": "github-actions[bot]", "type": "Bot"}),
                "html_url": f"https://github.test/{REPO}/issues/{len(state.issues) + 1}",
            }
            state.issues.append(issue)
            return self._send(201, issue)
        if (m := re.fullmatch(r"actions/runs/(\d+)/approvals", rest)) and method == "GET":
            return self._page(state.approvals.get(int(m.group(1)), []), query, path)
        if rest == "pulls" and method == "POST":
            if state.refuse_pulls:
                return self._send(state.refuse_pulls, {"message": "GitHub Actions is not permitted to create pull requests."})
            number = 100 + len(state.pulls)
            state.pulls[number] = {
                "number": number,
                "state": "open",
                "title": body.get("title", ""),
                "body": body.get("body", ""),
                "base": {"ref": body.get("base")},
                "head": {"sha": state.refs.get(f"heads/{body['head']}", "0" * 40), "ref": body["head"],
                         "label": f"{REPO.split('/')[0]}:{body['head']}"},
                "html_url": f"https://github.test/pull/{number}",
            }
            return self._send(201, state.pulls[number])
        if rest == "pulls" and method == "GET":
            found = [p for p in state.pulls.values() if p.get("state", "open") == query.get("state", "open")
                     and ("head" not in query or p["head"].get("label") == query["head"])]
            return self._page(found, query, path)
        if (m := re.fullmatch(r"pulls/(\d+)", rest)) and method == "PATCH":
            pull = state.pulls.get(int(m.group(1)))
            if pull is None:
                return self._send(404, {"message": "Not Found"})
            pull.update({k: v for k, v in body.items() if k in ("title", "body", "state")})
            return self._send(200, pull)
        if rest.startswith("git/"):
            return self._git(method, rest[len("git/") :], body)
        return self._send(404, {"message": "Not Found"})

    def _git(self, method: str, rest: str, body) -> None:
        """The git data API: refs, blobs, trees (flat, with base_tree) and commits."""
        state = self.state
        if (m := re.fullmatch(r"ref/(heads/.+)", rest)) and method == "GET":
            sha = state.refs.get(m.group(1))
            if sha is None:
                return self._send(404, {"message": "Not Found"})
            return self._send(200, {"ref": f"refs/{m.group(1)}", "object": {"sha": sha, "type": "commit"}})
        if rest == "refs" and method == "POST":
            if state.refuse_push:
                return self._send(state.refuse_push, {"message": "Resource not accessible by integration"})
            name = body["ref"].removeprefix("refs/")
            if name in state.refs:
                return self._send(422, {"message": "Reference already exists"})
            if body["sha"] not in state.commits:
                return self._send(422, {"message": "Object does not exist"})
            state.refs[name] = body["sha"]
            return self._send(201, {"ref": body["ref"], "object": {"sha": body["sha"]}})
        if (m := re.fullmatch(r"refs/(heads/.+)", rest)) and method in ("PATCH", "DELETE"):
            name = m.group(1)
            if name not in state.refs:
                return self._send(422, {"message": "Reference does not exist"})
            if method == "DELETE":
                del state.refs[name]
                return self._send(204, None)
            if state.refuse_push:
                return self._send(state.refuse_push, {"message": "Resource not accessible by integration"})
            if body["sha"] not in state.commits:
                return self._send(422, {"message": "Object does not exist"})
            if not body.get("force") and state.refs[name] not in state.commits[body["sha"]]["parents"]:
                return self._send(422, {"message": "Update is not a fast forward"})
            state.refs[name] = body["sha"]
            return self._send(200, {"ref": f"refs/{name}", "object": {"sha": body["sha"]}})
        if rest == "blobs" and method == "POST":
            return self._send(201, {"sha": state._store_blob(body["content"])})
        if rest == "trees" and method == "POST":
            entries = dict(state.trees.get(body.get("base_tree"), {}))
            entries.update({e["path"]: e["sha"] for e in body["tree"]})
            return self._send(201, {"sha": state._store_tree(entries)})
        if (m := re.fullmatch(r"commits/([0-9a-f]{40})", rest)) and method == "GET":
            commit = state.commits.get(m.group(1))
            if commit is None:
                return self._send(404, {"message": "Not Found"})
            return self._send(200, {"sha": m.group(1), "tree": {"sha": commit["tree"]},
                                    "parents": [{"sha": p} for p in commit["parents"]], "message": commit["message"]})
        if rest == "commits" and method == "POST":
            if body["tree"] not in state.trees or any(p not in state.commits for p in body["parents"]):
                return self._send(422, {"message": "Tree or parent does not exist"})
            sha = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
            state.commits[sha] = {"tree": body["tree"], "parents": list(body["parents"]), "message": body["message"]}
            return self._send(201, {"sha": sha})
        return self._send(404, {"message": "Not Found"})

    def _new_comment(self, number: int, text: str) -> dict:
        state = self.state
        state.next_id += 1
        comment = {
            "id": state.next_id,
            "body": text,
            "user": dict(state.user or {"login": "github-actions[bot]", "type": "Bot"}),
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
        raw = b"" if payload is None else json.dumps(payload).encode()
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
