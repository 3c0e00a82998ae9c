"""The few git operations the registry needs, through the ``git`` executable.

Plumbing instead of porcelain where it keeps the user's work tree and index
untouched: the evidence commit is built in a temporary index
(``read-tree`` / ``update-index`` / ``write-tree`` / ``commit-tree``) and is
reachable only through its version tag.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from calibgate.errors import EnvironmentFailure, RegistryError
from calibgate.paths import MACHINE_ERRNOS


class GitCommandError(RegistryError):
    """A git command exited non-zero; ``stderr`` keeps its full message for classification."""

    def __init__(self, message: str, *, stderr: str = ""):
        self.stderr = stderr
        super().__init__(message)


class PushRejected(RegistryError):
    """The remote refused the push because a tag of that name exists there (another clone won a race)."""


_REJECTED = ("rejected", "already exists", "would clobber")
# the errnos path_error calls the machine's fault, as git prints them (its strerror)
_MACHINE_FAULTS = tuple(os.strerror(code) for code in MACHINE_ERRNOS)


@dataclass(frozen=True)
class TagRef:
    name: str
    commit: str  # the commit an annotated tag points to
    annotated: bool
    tagger: str
    date: str  # ISO 8601
    message: str


# how a signature block starts in a signed tag's message: git's own rule (gpg-interface.c, parse_signed_buffer)
_SIGNATURE_STARTS = (b"-----BEGIN PGP SIGNATURE-----", b"-----BEGIN PGP MESSAGE-----", b"-----BEGIN SIGNED MESSAGE-----",
                     b"-----BEGIN SSH SIGNATURE-----")


def _unsigned(message: bytes) -> bytes:
    """A tag message without its signature: what is before the last line that starts a signature block, as git
    splits it (``%(contents:body)`` / ``%(contents:signature)``). A signed tag's record used to end in the
    signature, read as no record at all: the version looked registered by plain gto, a signed rollback a promotion."""
    cut, pos = len(message), 0
    while pos < len(message):
        if message.startswith(_SIGNATURE_STARTS, pos):
            cut = pos
        end = message.find(b"\n", pos)
        pos = len(message) if end < 0 else end + 1
    return message[:cut]


class GitRepo:
    """A git work tree; every method raises :class:`RegistryError` or :class:`EnvironmentFailure`, never prints."""

    def __init__(self, path: str | Path = "."):
        path = Path(path)
        try:
            top = self._git(path, "rev-parse", "--show-toplevel").strip()
        except RegistryError:
            raise RegistryError(
                f"{path.resolve()} is not inside a git repository",
                fix="run calibgate inside the project's git repository (git init there), or pass repo= to the Python API"
            ) from None
        self.root = Path(top)

    @staticmethod
    def _git(cwd: Path, *args: str, input: str | None = None, env: dict | None = None, raw: bool = False):
        """Standard output of ``git args`` as text, or as bytes with ``raw`` (output that may hold any bytes)."""
        try:
            proc = subprocess.run(
                ["git", *args], cwd=cwd, input=input, capture_output=True, text=not raw,
                env={**os.environ, **(env or {})}, check=False,
            )
        except FileNotFoundError:
            raise EnvironmentFailure("git is not installed or not on PATH", fix="install git") from None
        except NotADirectoryError:
            raise RegistryError(f"{cwd} is not a directory") from None
        if proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace") if raw else proc.stderr
            lines = [text.strip() for text in stderr.splitlines() if text.strip()]
            # git's reason is its 'fatal:' line; advice it prints after ('Please make sure ... and the repository
            # exists.') is no reason
            last = next((text for text in lines if text.startswith("fatal:")), lines[-1] if lines else f"exit code {proc.returncode}")
            if any(fault in stderr for fault in _MACHINE_FAULTS):  # the machine, not the registry or its input: exit 3
                raise EnvironmentFailure(f"git {args[0]} failed: {last}",
                                         fix="free disk space or make the repository writable, then retry")
            raise GitCommandError(f"git {args[0]} failed: {last}", stderr=stderr)
        return proc.stdout

    def git(self, *args: str, input: str | None = None, env: dict | None = None) -> str:
        return self._git(self.root, *args, input=input, env=env)

    def head(self) -> str:
        try:
            return self.git("rev-parse", "--verify", "HEAD^{commit}").strip()
        except RegistryError:
            raise RegistryError(f"{self.root} has no commits yet", fix="commit the project first (git commit)") from None

    def check_identity(self) -> None:
        """Refuse before any work when git cannot sign a commit or tag with a name and email (a bare CI runner)."""
        try:
            self.git("var", "GIT_COMMITTER_IDENT")
        except RegistryError:
            raise RegistryError(
                "git has no identity to tag with (user.name / user.email are not set)",
                fix="git config user.name 'Your Name' && git config user.email you@example.com (in CI, set them in the job)",
            ) from None

    def check_signing(self) -> None:
        """Refuse before any work when git is set to sign tags (``tag.gpgSign``) but cannot: the tag is the last step,
        so a missing key used to fail it after the run was pushed to the store, with git's line and no fix.

        The probe signs a commit of the empty tree (``commit-tree -S``: the same key and format as a tag), which is
        reachable from no ref.
        """
        try:
            signs = self.git("config", "--type=bool", "--get", "tag.gpgSign").strip() == "true"
        except RegistryError:  # unset (or not a boolean, which 'git tag' reports itself)
            return
        if not signs:
            return
        tree = self.git("mktree", input="").strip()
        try:
            self.git("commit-tree", "-S", tree, "-m", "calibgate: can git sign?")
        except GitCommandError as exc:
            raise RegistryError(
                f"git is set to sign tags (tag.gpgSign) but cannot sign ({exc.message})",
                fix="give git a key it can use (git config user.signingKey KEY; gpg.format for ssh or x509 keys), or "
                    "stop signing tags in this repository: git config tag.gpgSign false",
            ) from None

    def user(self) -> str:
        try:
            return self.git("config", "user.name").strip()
        except RegistryError:
            return ""

    def tags(self) -> list[TagRef]:
        """Every tag pointing at a commit, with its target, tagger, date and message (one ``for-each-ref`` call).

        Fields are NUL-separated and the message is read by its byte count (``contents:size``): a message is free
        text, so no separator inside it can end one record and forge the next (a tag message carrying a fake
        stage tag's fields used to appear as a promotion), and bytes that are not UTF-8 are replaced, not fatal.
        Tags of trees or blobs are no registry tags and are left out.
        """
        fields = ["%(refname:strip=2)", "%(objecttype)", "%(*objecttype)", "%(*objectname)", "%(objectname)",
                  "%(taggername)", "%(taggerdate:iso-strict)", "%(contents:size)"]
        out = self._git(self.root, "for-each-ref", "refs/tags", "--format=" + "%00".join(fields) + "%00%(contents)", raw=True)
        refs, pos = [], 0
        while pos < len(out):
            parts = []
            for _ in fields:
                end = out.index(b"\0", pos)
                parts.append(out[pos:end].decode("utf-8", "replace"))
                pos = end + 1
            name, objtype, peeled_type, peeled, obj, tagger, date, size = parts
            message = _unsigned(out[pos:pos + int(size)]).decode("utf-8", "replace")
            pos += int(size) + 1  # the record's closing newline
            annotated = objtype == "tag"
            if (peeled_type if annotated else objtype) != "commit":
                continue
            refs.append(TagRef(name, peeled if annotated else obj, annotated, tagger, date, message))
        return refs

    def tag_names(self) -> list[str]:
        """The name of every tag, those :meth:`tags` leaves out included (of a tree or blob, or of another tag)."""
        return self.git("for-each-ref", "refs/tags", "--format=%(refname:strip=2)").split("\n")[:-1]

    def tag_exists(self, name: str) -> bool:
        try:
            self.git("rev-parse", "--verify", "--quiet", f"refs/tags/{name}")
            return True
        except RegistryError:
            return False

    def create_tag(self, name: str, commit: str, message: str) -> None:
        if self.tag_exists(name):
            raise RegistryError(f"tag {name} already exists", fix="git fetch --tags, then retry (the registry moved on)")
        self.git("tag", "-a", name, commit, "-F", "-", input=message)

    def delete_tag(self, name: str) -> None:
        self.git("tag", "-d", name)

    def show_file(self, rev: str, path: str) -> str | None:
        try:
            return self.git("cat-file", "blob", f"{rev}:{path}")
        except RegistryError:
            return None

    def show_bytes(self, rev: str, path: str) -> bytes | None:
        """The blob at ``rev:path`` as bytes (hashes and parsers need them unchanged), or None when there is none."""
        try:
            return self._git(self.root, "cat-file", "blob", f"{rev}:{path}", raw=True)
        except RegistryError:
            return None

    def default_remote(self) -> str | None:
        remotes = self.git("remote").split()
        if not remotes:
            return None
        return "origin" if "origin" in remotes else remotes[0]

    def fetch_tags(self, remote: str) -> None:
        """Bring the remote's registry tags in; a conflicting local tag is an error, not overwritten."""
        try:
            self.git("fetch", "--quiet", "--no-tags", remote, "refs/tags/*:refs/tags/*")
        except GitCommandError as exc:
            if any(word in exc.stderr for word in _REJECTED):
                raise RegistryError(
                    f"a local tag clashes with the remote '{remote}' ({exc.message})",
                    fix="delete the local, unpushed tag (git tag -d NAME) and retry",
                ) from None
            raise EnvironmentFailure(f"cannot fetch tags from '{remote}' ({exc.message})", fix="check the remote URL and access") from None

    def push_atomic(self, remote: str, tags: list[str]) -> None:
        """Push tags all-or-nothing; an existing tag of that name on the remote rejects the whole push (:class:`PushRejected`).

        Only git's own '[rejected] ... (already exists)' is a lost race. The remote's rules refusing the tag (a
        protected tag, a pre-receive hook: '[remote rejected]') or a local pre-push hook are not: each used to be told
        "another clone changed the registry first; fetch and retry", or "failed to push some refs" without the
        hook's reason.
        """
        try:
            self.git("push", "--atomic", "--quiet", remote, *[f"refs/tags/{t}:refs/tags/{t}" for t in tags])
        except GitCommandError as exc:
            lines = [line.strip() for line in exc.stderr.splitlines() if line.strip()]
            if any(line.startswith("! [rejected]") and ("(already exists)" in line or "would clobber" in line) for line in lines):
                raise PushRejected(exc.message) from None
            said = [line.removeprefix("remote:").strip() for line in lines if line.startswith("remote:")]
            said = [line for line in said if line]
            refused = [line for line in lines if line.startswith("! [remote rejected]")]
            if refused:
                reason = "; ".join([*refused[:1], *said[:3]])[:400]
                raise EnvironmentFailure(f"the remote '{remote}' refused the tag ({reason})",
                                         fix="the remote's rules (protected tags, a pre-receive hook) do not let this "
                                             "user push it; nothing was tagged: ask its admins, or promote from where it is allowed") from None
            noise = ("To ", "error: failed to push some refs", "hint:", "fatal: the remote end hung up")
            reason = "; ".join([line for line in lines if not line.startswith(noise)][:3])[:400] or exc.message
            raise EnvironmentFailure(f"cannot push to '{remote}' ({reason})",
                                     fix="check the remote URL and access, and any pre-push hook, then retry (nothing was tagged)") from None

    def evidence_commit(self, parent: str, files: dict[str, str], message: str) -> str:
        """A commit whose tree is ``parent``'s plus ``files`` (path -> text); on no branch, the work tree untouched."""
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.git("read-tree", parent, env=env)
            for path, text in files.items():
                blob = self.git("hash-object", "-w", "--stdin", input=text).strip()
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env).strip()
        return self.git("commit-tree", tree, "-p", parent, "-F", "-", input=message).strip()
