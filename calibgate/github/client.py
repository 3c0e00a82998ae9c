"""The GitHub REST client: headers, timeouts, pagination and one-line errors.

Follows GitHub's REST conventions (docs.github.com/rest): ``Accept:
application/vnd.github+json``, ``X-GitHub-Api-Version``, a ``User-Agent``,
pagination by ``Link: <...>; rel="next"`` headers, and rate limits reported by
``x-ratelimit-remaining`` / ``retry-after``. The token is only ever sent to the
origin of ``api_url`` (its scheme, host and port): redirects and pagination
links elsewhere, or from https to http, are refused, and only reads follow a
redirect. An answer that is not HTTP, or not the REST API's, is one line.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from calibgate import __version__
from calibgate.errors import ConfigError
from calibgate.paths import branch_problem
from calibgate.github.errors import GitHubAccessError, GitHubRateLimitError, GitHubUnavailableError

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
MAX_COMMENT_CHARS = 65536
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="([^"]+)"')
_SHA = re.compile(r"^[0-9a-f]{40}$")
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Response:
    """One API answer: status, headers (lower-cased names) and the decoded JSON body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    data: Any = None

    def link(self, rel: str) -> str | None:
        """The URL of ``rel`` ("next", "last"...) in the ``Link`` header, if any."""
        for url, name in _LINK.findall(self.headers.get("link", "")):
            if name == rel:
                return url
        return None


def validate_repo(repo: str) -> str:
    """``owner/name`` or a :class:`ConfigError` naming the bad value."""
    if not isinstance(repo, str) or not _REPO.match(repo) or any(part in (".", "..") for part in repo.split("/")):
        raise ConfigError(
            f"repository {repo!r} is not 'owner/name'", fix="pass --repo owner/name (or set GITHUB_REPOSITORY)"
        )
    return repo


def validate_number(number: Any, what: str = "pull request") -> int:
    """A positive issue or PR number; rejects anything that is not a plain integer."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ConfigError(f"{what} number {number!r} is not a positive integer", fix="pass --pr N with N the PR number")
    return number


def validate_branch(branch: Any) -> str:
    """A branch name git and GitHub accept (git check-ref-format's rules, the common subset)."""
    if problem := branch_problem(branch):
        raise ConfigError(f"branch name {str(branch)[:80]!r} is not valid", fix=problem)
    return branch


def validate_sha(sha: Any) -> str:
    if not isinstance(sha, str) or not _SHA.match(sha):
        raise ConfigError(f"commit {sha!r} is not a full 40-character sha", fix="pass the full commit sha")
    return sha


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: the token goes only where api_url's origin is.

    A netloc compared as text let ``https://host`` hand the token to ``http://host`` (port 80, in clear text)."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1  # a malformed port matches no origin
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port if port is not None else {"http": 80, "https": 443}.get(scheme)


def _elsewhere(url: str, base: str) -> str | None:
    """Why ``url`` is not on ``base``'s origin (scheme, host and port), or None when it is."""
    (scheme, host, port), (base_scheme, base_host, base_port) = _origin(url), _origin(base)
    if (host, port) != (base_host, base_port):
        return "another host"
    if scheme != base_scheme:
        return f"{scheme}:// instead of {base_scheme}://"
    return None


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects of reads only, and only on the API's origin, so the token never travels elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        method, path = req.get_method(), urllib.parse.urlsplit(req.full_url).path
        if where := _elsewhere(newurl, req.full_url):
            raise GitHubUnavailableError(
                f"GitHub API redirected {method} {path} to {where}", fix="check GITHUB_API_URL", status=code,
            )
        if method not in ("GET", "HEAD"):
            # urllib turns a redirected POST into a GET of the new address, whose answer then read as the write's
            # own ('comment created' for a comment never posted); GitHub's redirects say to repeat a write there
            raise GitHubAccessError(
                f"GitHub API redirected {method} {path} ({code}) to {_path(newurl)[:120]}: a write is not repeated at "
                "another address",
                fix="if the repository was renamed or moved, pass its new owner/name; else check GITHUB_API_URL",
                status=code,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _check_api_url(url: str) -> None:
    """An http(s) URL of a host, in ASCII, with no spaces, user, query or fragment: file:// would read local files, a
    bad IPv6 literal crashed urllib, and a host or path urllib cannot encode ('http://a..b', '/ä') was an internal
    error at the first request; a query or fragment would swallow every path appended to it."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
        ok = (parts.scheme in ("http", "https") and bool(parts.hostname) and url.isascii()
              and not any(c.isspace() or c in "@?#" for c in url))
        if ok:
            parts.hostname.encode("idna")  # an empty or over-long label ('a..b') is refused here, not in the socket
    except (ValueError, UnicodeError):
        ok = False
    if not ok:
        raise ConfigError(f"GITHUB_API_URL {url[:80]!r} is not an http(s) URL of a host",
                          fix="unset it (https://api.github.com) or set it to your GitHub Enterprise API, e.g. "
                              "https://ghe.example.com/api/v3 (ASCII: a host in punycode, no user, query or fragment)")


class GitHubClient:
    """Calls the GitHub REST API with a token.

    >>> client = GitHubClient.from_env()                      # doctest: +SKIP
    >>> client.create_issue_comment("owner/name", 7, "hi")    # doctest: +SKIP
    """

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
        deadline: float = 60.0,
        retries: int = 2,
        backoff: float = 1.0,
        max_pages: int = 50,
        user_agent: str = f"calibgate/{__version__}",
    ):
        if not token:
            raise ConfigError("no GitHub token given", fix="set GITHUB_TOKEN (in a workflow: secrets.GITHUB_TOKEN)")
        if not token.isprintable():  # a line break or control character would forge a header
            raise ConfigError("GITHUB_TOKEN holds a line break or control character", fix="set GITHUB_TOKEN to the token alone")
        if not token.isascii():  # http.client cannot send '€' in a header: an internal error at the first request
            raise ConfigError("GITHUB_TOKEN holds a character outside ASCII, which no GitHub token has",
                              fix="set GITHUB_TOKEN to the token alone")
        _check_api_url(api_url)
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout  # seconds one read may wait
        self.deadline = deadline  # seconds one attempt (connect, send, every read) may take in all: a slow drip ends too
        self.retries = retries
        self.backoff = backoff
        self.max_pages = max_pages
        self._headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": user_agent,
            "Authorization": f"Bearer {token}",
        }
        self._opener = urllib.request.build_opener(_SameHostRedirects())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> GitHubClient:
        """Token from ``GITHUB_TOKEN``, base URL from ``GITHUB_API_URL`` (GitHub Enterprise sets it)."""
        env = os.environ if env is None else env
        token = env.get("GITHUB_TOKEN", "")
        if not token:
            raise ConfigError(
                "GITHUB_TOKEN is not set, so nothing can be posted to GitHub",
                fix="export GITHUB_TOKEN, or in a workflow set env GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
            )
        return cls(token, api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL, **kwargs)

    # -- transport ---------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None
    ) -> Response:
        """One call; ``path`` is relative to ``api_url`` (``/repos/...``) or an absolute URL on its host."""
        method = method.upper()
        url = self._url(path, params)
        data = None if json_body is None else json.dumps(json_body).encode("utf-8")
        attempts = 1 + (self.retries if method in _IDEMPOTENT else 0)
        for attempt in range(attempts):
            req = urllib.request.Request(url, data=data, method=method, headers=dict(self._headers))
            if data is not None:
                req.add_header("Content-Type", "application/json")
            try:
                response, failed = _within(self.deadline, lambda: self._exchange(req), what=f"{method} {_path(url)}")
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                if attempt + 1 < attempts:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                reason = getattr(exc, "reason", exc)
                raise GitHubUnavailableError(
                    f"cannot reach the GitHub API at {self.api_url} ({reason})",
                    fix="check the network and GITHUB_API_URL",
                ) from None
            except http.client.HTTPException as exc:  # not HTTP: a bad status line, over-long or too many headers, a
                # body cut short; none is an OSError, and each was an internal error
                if attempt + 1 < attempts:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                detail = " ".join(str(exc).split())[:80]
                raise GitHubUnavailableError(
                    f"GitHub API: {method} {_path(url)}: the answer is not valid HTTP ({type(exc).__name__}"
                    + (f": {detail})" if detail else ")"),
                    fix="retry; check GITHUB_API_URL points at the GitHub REST API",
                ) from None
            if not failed:
                if isinstance(response.data, _NotJson):  # an HTML 200 read as {"message": ...} passed every write
                    raise GitHubUnavailableError(
                        f"GitHub API: {method} {_path(url)} answered {response.status} with a body that is not JSON"
                        " (not the REST API)", status=response.status,
                        fix="retry; check GITHUB_API_URL points at the GitHub REST API",
                    )
                return response
            if response.status >= 500 and attempt + 1 < attempts:
                time.sleep(self.backoff * 2**attempt)
                continue
            raise _http_error(method, url, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, req: urllib.request.Request) -> tuple[Response, bool]:
        """The answer (its body read, capped) and whether it is an HTTP error; all of it within one deadline."""
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return Response(resp.status, _lower(resp.headers), _decode(_read_capped(resp, req.get_method(), req.full_url))), False
        except urllib.error.HTTPError as exc:
            return Response(exc.code, _lower(exc.headers), _decode(_read_capped(exc, req.get_method(), req.full_url))), True

    def paginate(self, path: str, *, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Every item of a list endpoint, following ``Link: rel="next"`` up to ``max_pages`` pages."""
        url: str | None = self._url(path, {"per_page": 100, **(params or {})})
        for _ in range(self.max_pages):
            if url is None:
                return
            response = self.request("GET", url)
            if not isinstance(response.data, list) or not all(isinstance(item, dict) for item in response.data):
                raise GitHubUnavailableError(
                    f"GitHub API: GET {_path(url)} did not answer a list of objects", status=response.status,
                    fix="retry; check GITHUB_API_URL points at the GitHub REST API",
                )
            yield from response.data
            url = response.link("next")
        if url is not None:
            raise GitHubUnavailableError(
                f"GitHub API: GET {_path(path)} lists more than {self.max_pages} pages of 100 (calibgate reads no further)",
                fix="close or clean up the conversation so that fewer items remain, or in the Python API pass "
                    "GitHubClient(max_pages=...)"
            )

    def _url(self, path: str, params: Mapping[str, Any] | None) -> str:
        if path.startswith(("http://", "https://")):
            if _elsewhere(path, self.api_url):  # a pagination link to http:// of an https API sent the token in clear
                parts = urllib.parse.urlsplit(path)
                raise GitHubUnavailableError(
                    f"GitHub API pointed to {parts.scheme}://{parts.netloc}, not {self.api_url}",
                    fix="check GITHUB_API_URL",
                )
            url = path
        else:
            url = self.api_url + "/" + path.lstrip("/")
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        return url

    # -- endpoints ---------------------------------------------------------------------------

    def list_issue_comments(self, repo: str, number: int) -> list[dict]:
        """All comments of an issue or pull request (GET /repos/{repo}/issues/{number}/comments)."""
        repo, number = validate_repo(repo), validate_number(number)
        return list(self.paginate(f"/repos/{repo}/issues/{number}/comments"))

    def create_issue_comment(self, repo: str, number: int, body: str) -> dict:
        repo, number = validate_repo(repo), validate_number(number)
        return _object(self.request("POST", f"/repos/{repo}/issues/{number}/comments", json_body={"body": _body(body)}).data,
                       what=f"the new comment on {repo}#{number}")

    def update_issue_comment(self, repo: str, comment_id: int, body: str) -> dict:
        repo, comment_id = validate_repo(repo), validate_number(comment_id, "comment")
        return _object(self.request(
            "PATCH", f"/repos/{repo}/issues/comments/{comment_id}", json_body={"body": _body(body)}
        ).data, what=f"comment {comment_id}")

    def authenticated_login(self) -> str | None:
        """The login of the user the token belongs to (GET /user); None for an integration's token (an Actions
        GITHUB_TOKEN or an app's, which GitHub answers 403 or 404 here: it posts as a bot)."""
        try:
            data = self.request("GET", "/user").data
        except GitHubAccessError as exc:
            if exc.status in (403, 404):
                return None
            raise
        login = data.get("login") if isinstance(data, dict) else None
        if not isinstance(login, str) or not login:
            raise GitHubUnavailableError("GitHub's answer about the token's user has no 'login' (not the REST API's shape)",
                                         fix="retry; check GITHUB_API_URL points at the GitHub REST API")
        return login

    def get_pull(self, repo: str, number: int) -> dict:
        repo, number = validate_repo(repo), validate_number(number)
        return _object(self.request("GET", f"/repos/{repo}/pulls/{number}").data, what=f"{repo}#{number}")

    # -- branches, commits and pull requests (the retraining PR) -------------------------------

    def get_branch_sha(self, repo: str, branch: str) -> str | None:
        """Head commit of ``branch`` (GET /repos/{repo}/git/ref/heads/{branch}), None when it does not exist."""
        repo, branch = validate_repo(repo), validate_branch(branch)
        try:
            data = self.request("GET", f"/repos/{repo}/git/ref/heads/{_quote(branch)}").data
        except GitHubAccessError as exc:
            if exc.status == 404:
                return None
            raise
        return _dig(data, "object", "sha", what=f"the branch {branch}")

    def create_branch(self, repo: str, branch: str, sha: str) -> dict:
        """POST /repos/{repo}/git/refs: a new branch at commit ``sha``."""
        repo, branch = validate_repo(repo), validate_branch(branch)
        body = {"ref": f"refs/heads/{branch}", "sha": validate_sha(sha)}
        return _object(self.request("POST", f"/repos/{repo}/git/refs", json_body=body).data, what=f"the new branch {branch}")

    def update_branch(self, repo: str, branch: str, sha: str, *, force: bool = False) -> dict:
        """PATCH /repos/{repo}/git/refs/heads/{branch}: move the branch to ``sha`` (``force``: not a fast-forward)."""
        repo, branch = validate_repo(repo), validate_branch(branch)
        body = {"sha": validate_sha(sha), "force": force}
        return _object(self.request("PATCH", f"/repos/{repo}/git/refs/heads/{_quote(branch)}", json_body=body).data,
                       what=f"the branch {branch}")

    def delete_branch(self, repo: str, branch: str) -> None:
        """DELETE /repos/{repo}/git/refs/heads/{branch}."""
        repo, branch = validate_repo(repo), validate_branch(branch)
        self.request("DELETE", f"/repos/{repo}/git/refs/heads/{_quote(branch)}")

    def get_commit(self, repo: str, sha: str) -> dict:
        """GET /repos/{repo}/git/commits/{sha}: the commit object (its ``tree.sha`` and ``parents``)."""
        return _object(self.request("GET", f"/repos/{validate_repo(repo)}/git/commits/{validate_sha(sha)}").data,
                       what=f"commit {sha[:12]}")

    def create_commit(self, repo: str, *, parent: str, files: Mapping[str, str], message: str) -> str:
        """A commit on top of ``parent`` that changes ``files`` (path -> new UTF-8 text), via the git data API.

        Blobs, then a tree on the parent's tree, then the commit; no ref moves,
        so a failure here leaves nothing on any branch. Returns the commit sha.
        """
        repo, parent = validate_repo(repo), validate_sha(parent)
        base_tree = _dig(self.get_commit(repo, parent), "tree", "sha", what=f"commit {parent[:12]}")
        entries = []
        for path, text in files.items():
            blob = self.request("POST", f"/repos/{repo}/git/blobs", json_body={"content": text, "encoding": "utf-8"}).data
            entries.append({"path": path, "mode": "100644", "type": "blob", "sha": _dig(blob, "sha", what="a new blob")})
        tree = self.request("POST", f"/repos/{repo}/git/trees", json_body={"base_tree": base_tree, "tree": entries}).data
        commit = self.request(
            "POST", f"/repos/{repo}/git/commits", json_body={"message": message, "tree": _dig(tree, "sha", what="a new tree"), "parents": [parent]}
        ).data
        return _dig(commit, "sha", what="a new commit")

    def list_pulls(self, repo: str, *, head: str | None = None, base: str | None = None, state: str = "open") -> list[dict]:
        """GET /repos/{repo}/pulls; ``head`` is ``owner:branch`` (GitHub's filter), ``base`` a branch name."""
        params: dict[str, Any] = {"state": state}
        if head:
            params["head"] = head
        if base:
            params["base"] = base
        return list(self.paginate(f"/repos/{validate_repo(repo)}/pulls", params=params))

    def update_pull(self, repo: str, number: int, *, title: str | None = None, body: str | None = None) -> dict:
        """PATCH /repos/{repo}/pulls/{number}: new title and/or body."""
        repo, number = validate_repo(repo), validate_number(number)
        payload: dict[str, Any] = {}
        if title is not None:
            payload["title"] = title
        if body is not None:
            payload["body"] = _body(body)
        return _object(self.request("PATCH", f"/repos/{repo}/pulls/{number}", json_body=payload).data, what=f"{repo}#{number}")

    def list_issues(self, repo: str, *, state: str = "open", labels: tuple[str, ...] = ()) -> list[dict]:
        """Issues (and PRs, which the issues endpoint includes) with all of ``labels``."""
        params = {"state": state}
        if labels:
            params["labels"] = ",".join(labels)
        return list(self.paginate(f"/repos/{validate_repo(repo)}/issues", params=params))

    def create_issue(self, repo: str, *, title: str, body: str, labels: tuple[str, ...] = ()) -> dict:
        payload: dict[str, Any] = {"title": title, "body": _body(body)}
        if labels:
            payload["labels"] = list(labels)
        return _object(self.request("POST", f"/repos/{validate_repo(repo)}/issues", json_body=payload).data, what="the new issue")

    def create_pull(self, repo: str, *, title: str, head: str, base: str, body: str = "", draft: bool = False) -> dict:
        payload = {"title": title, "head": head, "base": base, "body": _body(body), "draft": draft}
        return _object(self.request("POST", f"/repos/{validate_repo(repo)}/pulls", json_body=payload).data,
                       what="the new pull request")

    def list_run_approvals(self, repo: str, run_id: int) -> list[dict]:
        """The deployment reviews of a workflow run: who approved or rejected which environment.

        GET /repos/{repo}/actions/runs/{run_id}/approvals (docs.github.com/rest/actions/workflow-runs);
        each item has ``state`` ("approved"/"rejected"), ``user.login``, ``environments[].name`` and ``comment``.
        """
        repo, run_id = validate_repo(repo), validate_number(run_id, "workflow run")
        # every page: a rejection on page 2 must refuse the promotion as surely as one on page 1
        return list(self.paginate(f"/repos/{repo}/actions/runs/{run_id}/approvals"))


MAX_RESPONSE_BYTES = 64 << 20  # a page of 100 comments at GitHub's 65,536 characters each is under 30 MB


def _read_capped(resp: Any, method: str, url: str) -> bytes:
    """The body, or GitHubUnavailableError when it is larger than any REST answer (it would be held in memory)."""
    raw = resp.read(MAX_RESPONSE_BYTES + 1)
    if len(raw) > MAX_RESPONSE_BYTES:
        raise GitHubUnavailableError(f"GitHub API: {method} {_path(url)} answered more than {MAX_RESPONSE_BYTES >> 20} MiB",
                                     fix="check GITHUB_API_URL points at the GitHub REST API")
    return raw


def _within(seconds: float, call, *, what: str):
    """``call()``, or TimeoutError after ``seconds``: the socket timeout bounds each read, not a server that sends a
    byte just before each would expire. The call runs on a daemon thread, left to the socket's timeout if it overruns."""
    import threading

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=run, name="calibgate-github", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"{what} took over {seconds:g} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


def _object(data: Any, *, what: str) -> dict:
    """``data`` when it is a JSON object, as every single-object REST answer is; else one line (exit 3)."""
    if not isinstance(data, dict):
        raise GitHubUnavailableError(f"GitHub's answer about {what} is not a JSON object (not the REST API's shape)",
                                     fix="retry; check GITHUB_API_URL points at the GitHub REST API")
    return data


def answer_number(data: Any, key: str, *, what: str) -> int:
    """``data[key]`` as a positive integer (an id, an issue number); GitHubUnavailableError when it is not one."""
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise GitHubUnavailableError(f"GitHub's answer about {what} has no positive integer '{key}' (not the REST API's shape)",
                                     fix="retry; check GITHUB_API_URL points at the GitHub REST API")
    return value


def answer_url(data: Any) -> str | None:
    """``data["html_url"]`` when it is text, else None (a link is shown, never followed)."""
    url = data.get("html_url") if isinstance(data, dict) else None
    return url if isinstance(url, str) and url.isprintable() else None


def _dig(data: Any, *keys: str, what: str) -> str:
    """``data[k1][k2]...`` as a string; GitHubUnavailableError (exit 3, one line) when the answer has another shape."""
    value = data
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise GitHubUnavailableError(f"GitHub's answer about {what} has no '{'.'.join(keys)}' (not the REST API's shape)",
                                         fix="retry; check GITHUB_API_URL points at the GitHub REST API")
        value = value[key]
    if not isinstance(value, str) or not value:
        raise GitHubUnavailableError(f"GitHub's answer about {what} has a '{'.'.join(keys)}' that is not text",
                                     fix="retry; check GITHUB_API_URL points at the GitHub REST API")
    return value


def _body(body: str) -> str:
    if len(body) > MAX_COMMENT_CHARS:
        raise ConfigError(
            f"comment body has {len(body):,} characters, over GitHub's {MAX_COMMENT_CHARS:,}",
            fix="render with max_chars below the limit (calibgate report does)",
        )
    return body


def _quote(branch: str) -> str:
    return urllib.parse.quote(branch, safe="/")


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers.items() if headers is not None else [])}


class _NotJson(dict):
    """A body that is not JSON, kept as ``{"message": <its start>}`` for an error's line; a success's is refused."""


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or an integer Python will not read
        return _NotJson(message=raw[:200].decode("utf-8", "replace"))


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path or url


def _reset_time(reset: str) -> str:
    """``x-ratelimit-reset`` (unix seconds) as "at" a UTC time of day, or "later": a value no clock reads ('²', which
    isdigit() takes, or a year past 9999) is no reason for an internal error."""
    if not re.fullmatch(r"[0-9]{1,12}", reset.strip()):
        return "later"
    try:
        return datetime.fromtimestamp(int(reset), tz=timezone.utc).strftime("at %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "later"


def _http_error(method: str, url: str, response: Response) -> Exception:
    """Map an HTTP error answer to one line naming the call, the status and the fix."""
    data = response.data if isinstance(response.data, dict) else {}
    detail = " ".join(str(data.get("message", "")).split())[:200]
    where = f"GitHub API: {method} {_path(url)} answered {response.status}" + (f" ({detail})" if detail else "")
    status, headers = response.status, response.headers
    if status in (403, 429) and headers.get("x-ratelimit-remaining") == "0":
        when = _reset_time(headers.get("x-ratelimit-reset", ""))
        return GitHubRateLimitError(
            f"{where}: rate limit exhausted, it resets {when}",
            fix="wait, or use a token with a higher limit",
            status=status,
        )
    if status == 429 or (status == 403 and ("retry-after" in headers or "rate limit" in detail.lower())):
        after = headers.get("retry-after", "60").strip()
        return GitHubRateLimitError(
            f"{where}: secondary rate limit hit",
            fix=f"retry after {after} seconds" if re.fullmatch(r"[0-9]{1,9}", after) else "retry in a minute or later",
            status=status,
        )
    if 300 <= status < 400:  # urllib follows a redirect at most 10 times, and not in a loop; an API never needs that
        return GitHubUnavailableError(f"{where}: a redirect that was not followed (a loop, or too many in a row)",
                                      fix="check GITHUB_API_URL points at the GitHub REST API", status=status)
    if status >= 500:
        return GitHubUnavailableError(where, fix="GitHub is failing; retry later (githubstatus.com)", status=status)
    fixes = {
        401: "the token is missing, expired or revoked; check GITHUB_TOKEN",
        403: "the token lacks permission; a workflow needs 'pull-requests: write' to comment, 'issues: write' to open issues",
        404: "check the repository and number; a token without access to a private repository also gets 404",
        422: "GitHub rejected the request's content; see the message",
    }
    return GitHubAccessError(where, fix=fixes.get(status, "see the message"), status=status)
