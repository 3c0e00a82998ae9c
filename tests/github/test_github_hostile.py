"""The client against a server that is not GitHub's REST API, on 127.0.0.1: slow drips, endless bodies, odd shapes.

Each answer is one line and exit 3 (GitHubUnavailableError), never a hang or an internal error.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from calibgate.github import GitHubAccessError, GitHubClient, GitHubUnavailableError, upsert_comment
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


@pytest.mark.parametrize("call", ["update_branch", "create_branch", "update_pull", "get_pull"])
def test_a_success_whose_body_is_not_json_is_not_taken_as_done(hostile, call):
    """Before: a 200 whose body was HTML read as {"message": "<html>..."}, an object, so every write passed."""
    client = hostile(_json(200, b"<html>maintenance</html>"))
    sha = "a" * 40
    with pytest.raises(GitHubUnavailableError, match="not JSON") as info:
        {"update_branch": lambda: client.update_branch(REPO, "calibgate/retrain", sha),
         "create_branch": lambda: client.create_branch(REPO, "calibgate/retrain", sha),
         "update_pull": lambda: client.update_pull(REPO, 1, title="t"),
         "get_pull": lambda: client.get_pull(REPO, 1)}[call]()
    assert info.value.exit_code == 3 and "\n" not in str(info.value)


def test_a_comment_whose_user_is_not_an_object_is_simply_not_a_bot(hostile):
    mark = marker("m")
    client = hostile(_json(200, [{"id": 1, "body": mark, "user": "octocat"}]))
    # not a bot, so not edited unless it is the token's user's: this server's answer to GET /user is no user either
    with pytest.raises(GitHubUnavailableError, match="token's user has no 'login'"):
        upsert_comment(client, REPO, 1, mark)


def test_a_pull_whose_head_is_not_an_object_is_not_the_gated_commit(hostile):
    from calibgate.errors import ConfigError
    from calibgate.github.comments import check_pull_head

    client = hostile(_json(200, {"head": "main"}))
    with pytest.raises(ConfigError, match="head is unknown, not the gated commit"):
        check_pull_head(client, REPO, 1, "a" * 40)


def test_an_issue_list_whose_number_is_not_one_is_refused(hostile):
    mark = marker("drift")
    client = hostile(_json(200, [{"number": "7", "body": mark, "state": "open", "user": {"login": "github-actions[bot]", "type": "Bot"}}]))
    with pytest.raises(GitHubUnavailableError, match="no positive integer 'number'"):
        open_or_comment_issue(client, REPO, title="t", body=mark + "\nx", mark=mark)


class _TlsOrPlain:
    """One port on 127.0.0.1 speaking https (a self-signed certificate, trusted through SSL_CERT_FILE) and noting every
    request that arrives in clear text instead: a token sent there has crossed the network readable."""

    def __init__(self, tmp_path, answer):
        import datetime
        import ipaddress
        import socket
        import ssl

        x509 = pytest.importorskip("cryptography.x509")
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1)
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
        self.cert = tmp_path / "cert.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyfile = tmp_path / "key.pem"
        keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.cert, keyfile)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.answer, self.plain, self.tls = answer, [], []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                if conn.recv(1, socket.MSG_PEEK) != b"\x16":  # not a TLS handshake: a request in clear text
                    self.plain.append(conn.recv(65536))
                    conn.close()
                    continue
                tls = self.context.wrap_socket(conn, server_side=True)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += tls.recv(65536)
                self.tls.append(head)
                tls.sendall(self.answer(self))
                tls.close()
            except OSError:
                conn.close()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("answer", ["link", "redirect"])
def test_the_token_never_leaves_an_https_api_for_http_on_its_host(tmp_path, monkeypatch, answer):
    """Before: origins were compared by netloc alone, so an https API whose pagination link or redirect said http://
    on the same host (a GitHub Enterprise behind a TLS proxy writes such links) got the token sent in clear text."""
    def page(server):
        if answer == "link":
            head = f'HTTP/1.1 200 OK\r\nLink: <http://127.0.0.1:{server.port}/next?page=2>; rel="next"\r\n'
        else:
            head = f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{server.port}/moved\r\n"
        return (head + "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]").encode()

    server = _TlsOrPlain(tmp_path, page)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
    try:
        client = GitHubClient("s3cret-t0ken", api_url=server.url, timeout=3, deadline=10, retries=0, backoff=0)
        with pytest.raises(GitHubUnavailableError, match="http://") as info:
            client.list_issue_comments(REPO, 1)
        assert "\n" not in str(info.value) and "s3cret" not in str(info.value)
        assert len(server.tls) == 1 and b"Bearer s3cret-t0ken" in server.tls[0]  # the first page went over TLS
        assert server.plain == []
    finally:
        server.close()


def test_a_redirected_write_is_refused_not_read_back_as_done(hostile):
    """Before: urllib turned a POST redirected with 302 into a GET of the new address, and its answer (an object with
    an id) was taken as the new comment's: 'comment created', exit 0, for a comment GitHub never took. GitHub's
    redirects of a write say to repeat it at the new address (a renamed repository)."""
    seen = []

    def answer(handler):
        seen.append(handler.command)
        if handler.command == "POST":
            handler.rfile.read(int(handler.headers["Content-Length"]))
            handler.send_response(302)
            handler.send_header("Location", "/repos/octo/renamed/issues/comments/5")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        listing = handler.path.startswith(f"/repos/{REPO}/issues/7/comments")
        _json(200, [] if listing else {"id": 5, "html_url": "http://x/5"})(handler)

    client = hostile(answer)
    with pytest.raises(GitHubAccessError, match=r"redirected POST .* \(302\) .* a write is not repeated") as info:
        upsert_comment(client, REPO, 7, marker("m") + "\nhello")
    assert info.value.exit_code == 2 and "new owner/name" in info.value.fix
    assert seen == ["GET", "POST"]  # the comment list, the write; never a GET taken for the write's answer


def _raw(data: bytes):
    def answer(handler):
        handler.wfile.write(data)
        handler.close_connection = True
    return answer


@pytest.mark.parametrize("data, words", [
    (b"garbage, not HTTP\r\n\r\n", "BadStatusLine"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\n[]", "LineTooLong"),
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"Content-Length: 2\r\n\r\n[]",
     "more than 100 headers"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "IncompleteRead"),  # a chunked body cut short
])
def test_an_answer_that_is_not_http_is_one_line_not_an_internal_error(hostile, data, words):
    """Before: http.client's errors (none is an OSError) escaped the client: 'internal error: BadStatusLine' (exit 3,
    'report it') for a GITHUB_API_URL that points at something else than an HTTP server."""
    client = hostile(_raw(data))
    with pytest.raises(GitHubUnavailableError, match=f"not valid HTTP .*{words}") as info:
        client.list_issue_comments(REPO, 1)
    assert "\n" not in str(info.value) and info.value.exit_code == 3


@pytest.mark.parametrize("reset", ["99999999999999999", "\u00b2"])  # past year 9999; a digit to isdigit(), not to int()
def test_a_rate_limit_reset_no_clock_reads_is_later_not_an_internal_error(hostile, reset):
    def limited(handler):
        body = b'{"message": "API rate limit exceeded"}'
        handler.send_response(403)
        handler.send_header("x-ratelimit-remaining", "0")
        handler.send_header("x-ratelimit-reset", reset)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    from calibgate.github import GitHubRateLimitError

    with pytest.raises(GitHubRateLimitError, match="rate limit exhausted, it resets later"):
        hostile(limited).list_issue_comments(REPO, 1)


def test_a_redirect_loop_is_the_server_not_bad_input(hostile):
    """Before: urllib's give-up on a loop surfaced as 'answered 302; fix: see the message' with exit 2, blaming the
    user's input for the server's answer."""
    def loop(handler):
        handler.send_response(302)
        handler.send_header("Location", handler.path)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with pytest.raises(GitHubUnavailableError, match="302: a redirect that was not followed") as info:
        hostile(loop).list_issue_comments(REPO, 1)
    assert info.value.exit_code == 3


def test_a_listing_that_never_ends_stops_at_the_page_cap_with_a_fix_a_user_can_apply(hostile):
    """Every page links to a next one (a loop, or a conversation past the cap): one line naming the cap, not a hang;
    the fix used to say 'raise max_pages', which no CLI option does."""
    def endless(handler):
        data = json.dumps([{"id": 1, "body": "x"}]).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Link", f'<http://{handler.headers["Host"]}/repos/{REPO}/issues/1/comments?page=2>; rel="next"')
        handler.end_headers()
        handler.wfile.write(data)

    client = hostile(endless)
    client.max_pages = 3
    with pytest.raises(GitHubUnavailableError, match="more than 3 pages of 100") as info:
        client.list_issue_comments(REPO, 1)
    assert "max_pages=" in info.value.fix and "\n" not in str(info.value)
