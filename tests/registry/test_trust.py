"""What the registry trusts: every byte of a run (its manifest included), nothing outside it, no path out of a root.

Real git, a real DVC directory remote and a real bare origin (tests/registry/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.registry.conftest import git, init_project, local_tags

from calibgate.errors import IntegrityError, RegistryError
from calibgate.registry import api
from calibgate.runs import MANIFEST, manifest_digest, read_manifest, sha256_file


def _edit_manifest(run: Path, edit) -> None:
    """Edit calibgate-run.json by hand, as an attacker or a careless user would."""
    data = json.loads((run / MANIFEST).read_text())
    edit(data)
    (run / MANIFEST).write_text(json.dumps(data, indent=2))


def _remote_bytes(project: Path) -> bytes:
    remote = project.parent / "dvc-remote"
    return b"".join(p.read_bytes() for p in sorted(remote.rglob("*")) if p.is_file()) if remote.exists() else b""


@pytest.mark.parametrize("edit", [
    lambda m: m.update(label_names=[m["label_names"][1], m["label_names"][0], *m["label_names"][2:]]),
    lambda m: m.update(pooling="last"),
    lambda m: m.update(strategy="lora"),
    lambda m: m["files"].pop("head.safetensors"),
], ids=["swap-labels", "pooling", "strategy", "drop-file"])
def test_a_hand_edited_manifest_is_refused_everywhere(project, edit):
    from calibgate.runs import load_run

    _edit_manifest(project / "runs" / "a", edit)
    with pytest.raises(IntegrityError, match="edited after it was written"):
        load_run(project / "runs" / "a")
    with pytest.raises(IntegrityError, match="edited after it was written"):
        api.register("runs/a")
    assert local_tags(project) == set()


def test_the_tag_pins_the_manifest_digest_and_pull_checks_it(project):
    info = api.register("runs/a")
    manifest = read_manifest("runs/a")
    assert info.record.manifest_sha256 == manifest.manifest_sha256 == manifest_digest(manifest)
    message = git(project, "tag", "-l", "--format=%(contents)", info.tag)
    assert json.loads(message[message.index("\n\n{") + 2:])["manifest_sha256"] == manifest_digest(manifest)
    assert api.verify_version(info.tag).ok
    out = api.fetch_version(info.tag, project / "pulled")
    assert manifest_digest(read_manifest(out)) == info.record.manifest_sha256


def test_a_re_sealed_manifest_in_the_store_is_refused_by_verify_and_pull(project, tmp_path):
    """An attacker who rewrites the stored run *and* recomputes every hash and seal still differs from the tag."""
    import shutil

    from calibgate.runs import write_manifest

    info = api.register("runs/a", store="../store")  # a plain directory store: objects named by sha256
    store = project.parent / "store"
    run = tmp_path / "evil"
    shutil.copytree(project / "runs" / "a", run)
    manifest = read_manifest(run)
    evil = write_manifest(run, manifest.model_copy(update={"label_names": list(reversed(manifest.label_names))}))
    evil_sha = sha256_file(run / MANIFEST)
    old_sha = info.record.artifacts.files[MANIFEST]
    obj = store / "files" / "sha256" / old_sha[:2] / old_sha[2:]
    obj.write_bytes((run / MANIFEST).read_bytes())  # the stored manifest replaced in place
    assert evil.manifest_sha256 != info.record.manifest_sha256 and evil_sha != old_sha
    with pytest.raises(IntegrityError):
        api.verify_version(info.tag)
    with pytest.raises(IntegrityError):
        api.fetch_version(info.tag, project / "pulled")
    assert not (project / "pulled").exists()


def test_a_symlink_in_a_run_is_never_followed_nor_stored(project, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"SECRET-" + hashlib.sha256(str(tmp_path).encode()).hexdigest().encode())
    run = project / "runs" / "a"
    (run / "leak.txt").symlink_to(secret)
    _edit_manifest(run, lambda m: m["files"].update({"leak.txt": sha256_file(secret)}))
    from calibgate.runs import manifest_digest as digest, RunManifest

    m = RunManifest.model_validate(json.loads((run / MANIFEST).read_text()))  # re-seal: only the link is wrong now
    (run / MANIFEST).write_text(m.model_copy(update={"manifest_sha256": digest(m)}).model_dump_json())
    with pytest.raises(IntegrityError, match="symlink"):
        api.register("runs/a")
    with pytest.raises(IntegrityError, match="symlink"):
        api.register("runs/a", store="../store")
    assert local_tags(project) == set()
    assert secret.read_bytes() not in _remote_bytes(project)
    assert not (project.parent / "store").exists() or secret.read_bytes() not in b"".join(
        p.read_bytes() for p in (project.parent / "store").rglob("*") if p.is_file())


def test_an_unlisted_extra_file_fails_verification(project):
    (project / "runs" / "a" / "extra.bin.txt").write_text("not in the manifest")
    with pytest.raises(IntegrityError, match="not in the manifest"):
        api.register("runs/a")


def test_a_pickle_in_a_run_fails_verification_even_when_listed(project):
    from calibgate.runs import load_run, write_manifest

    run = project / "runs" / "a"
    (run / "encoder" / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    write_manifest(run, read_manifest(run))
    with pytest.raises(IntegrityError, match="pickle"):
        load_run(run)


def _forge_version(project: Path, tag: str, edit) -> None:
    """Re-create the version tag with an edited record (someone with push access to tags)."""
    message = git(project, "tag", "-l", "--format=%(contents)", tag)
    record = json.loads(message[message.index("\n\n{") + 2:])
    edit(record)
    commit = git(project, "rev-list", "-n", "1", tag).strip()
    git(project, "tag", "-d", tag)
    git(project, "tag", "-a", tag, commit, "-m", "Register\n\n" + json.dumps(record, indent=2))


@pytest.mark.parametrize("bad", ["../../escaped.txt", "/tmp/abs-escape.txt", "encoder/../../x.txt"])
def test_pull_never_writes_outside_its_directory(project, tmp_path, bad):
    info = api.register("runs/a", store="../store")

    def edit(record):
        files = record["artifacts"]["files"]
        files[bad] = files["head.safetensors"]

    _forge_version(project, info.tag, edit)
    dest = tmp_path / "deep" / "pulled"
    with pytest.raises(IntegrityError, match="outside"):
        api.fetch_version(info.tag, dest)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "deep" / "escaped.txt").exists()
    assert not Path("/tmp/abs-escape.txt").exists() and not dest.exists()


def test_pull_refuses_a_store_object_name_that_is_not_a_hash(project, tmp_path):
    info = api.register("runs/a", store="../store")
    _forge_version(project, info.tag, lambda r: r["artifacts"]["files"].update({"head.safetensors": "../../../../etc/passwd"}))
    with pytest.raises(IntegrityError, match="not a sha256"):
        api.fetch_version(info.tag, tmp_path / "pulled")


def test_pull_refuses_a_symlinked_destination_parent(project, tmp_path):
    from calibgate.paths import safe_join

    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "encoder").symlink_to(outside)
    with pytest.raises(IntegrityError, match="symlink"):
        safe_join(tmp_path / "root", "encoder/model.safetensors")


def test_registry_artifacts_never_land_untracked_in_an_in_repo_remote(tmp_path, monkeypatch):
    """A DVC directory remote inside the work tree must be git-ignored, or register refuses before pushing."""
    from tests.policy.gate_records import evaluation, flip, make_run, truth

    root = init_project(tmp_path / "p")
    (root / ".dvc" / "config").write_text("[core]\n    remote = store\n['remote \"store\"']\n    url = ../dvc-storage\n")
    git(root, "commit", "-qam", "in-repo remote")
    monkeypatch.chdir(root)
    labels = truth(100)
    make_run(root / "runs" / "a", evaluation(labels, flip(labels, 0.1, seed=1), run_id="a"))
    with pytest.raises(RegistryError, match="not git-ignored"):
        api.register("runs/a")
    assert local_tags(root) == set() and not (root / "dvc-storage").exists()
    (root / ".gitignore").write_text("/runs\n/dvc-storage/\n")
    git(root, "commit", "-qam", "ignore the remote")
    api.register("runs/a")
    assert (root / "dvc-storage").is_dir() and git(root, "status", "--porcelain") == ""


@pytest.mark.parametrize("backend", ["dvc", "dir"])
def test_concurrent_registrations_into_one_empty_store_do_not_collide(tmp_path, backend):
    """Four clones register at once (real processes, released together) into one empty shared store."""
    from calibgate.runs import write_manifest
    from tests.policy.gate_records import evaluation, flip, make_run, truth

    origin = tmp_path / "origin.git"
    seed = init_project(tmp_path / "seed", remote=origin)
    (seed / ".dvc" / "config").write_text(f"[core]\n    remote = store\n['remote \"store\"']\n    url = {tmp_path / 'shared'}\n")
    git(seed, "commit", "-qam", "shared remote")
    git(seed, "push", "-q", "origin", "HEAD:refs/heads/main")
    labels = truth(200)
    clones = []
    for i in range(4):
        clone = tmp_path / f"clone{i}"
        git(tmp_path, "clone", "-q", str(origin), clone.name)
        # the same weights in every clone: every process writes the same store objects at the same moment
        run = make_run(clone / "runs" / "r", evaluation(labels, flip(labels, 0.1, seed=1), run_id="r"))
        (run / "shards").mkdir()
        for k in range(150):
            (run / "shards" / f"{k:03d}.json").write_bytes(b"%03d" % k * 40_000)
        write_manifest(run, read_manifest(run))
        clones.append(clone)
    go = tmp_path / "go"
    store = repr(str(tmp_path / "shared")) if backend == "dir" else "None"
    script = (
        "import sys, time, pathlib\nfrom calibgate.registry import api, store\nimport dvc.repo, dvc_data.hashfile.transfer\n"
        f"while not pathlib.Path({str(go)!r}).exists():\n    time.sleep(0.01)\n"
        f"info = api.register('runs/r', version=sys.argv[1], push=False, store={store})\nprint(info.tag)\n"
    )
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin",
           "HOME": str(Path.home()), "GIT_CONFIG_NOSYSTEM": "1", "DVC_NO_ANALYTICS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", script, f"v1.{i}.0"], cwd=c, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i, c in enumerate(clones)]
    import time

    time.sleep(8)  # let every process finish importing, then release them together
    go.write_text("go")
    results = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in procs]
    for rc, out, err in results:
        assert rc == 0, err[-2000:]
    leftovers = [p for p in (tmp_path / "shared").rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    for i, clone in enumerate(clones):
        assert api.verify_version(f"router@v1.{i}.0", repo=clone).ok


def test_a_directory_store_inside_the_repo_must_be_ignored_too(project):
    with pytest.raises(RegistryError, match="not git-ignored"):
        api.register("runs/a", store="artifacts")
    assert local_tags(project) == set() and not (project / "artifacts").exists()
    (project / ".gitignore").write_text("/runs\n/artifacts/\n")
    git(project, "commit", "-qam", "ignore the store")
    api.register("runs/a", store="artifacts")
    assert git(project, "status", "--porcelain") == ""


def test_a_manifest_without_its_digest_is_refused(project):
    from calibgate.runs import load_run

    _edit_manifest(project / "runs" / "a", lambda m: m.pop("manifest_sha256"))
    with pytest.raises(IntegrityError, match="no manifest_sha256"):
        load_run(project / "runs" / "a")


@pytest.mark.parametrize("backend", ["dvc", "dir"])
@pytest.mark.parametrize("fault", ["missing", "a-file"])
def test_a_store_that_is_gone_or_a_file_is_configuration_not_tampering(project, backend, fault):
    """Verification must tell a moved or mistyped remote (exit 2, fix the config) from changed bytes (tampering)."""
    import shutil

    info = api.register("runs/a", store="../store") if backend == "dir" else api.register("runs/a")
    root = project.parent / ("store" if backend == "dir" else "dvc-remote")
    shutil.rmtree(root)
    if fault == "a-file":
        root.write_text("not a directory\n")
    with pytest.raises(RegistryError, match="does not exist" if fault == "missing" else "is not a directory"):
        api.verify_version(info.tag)
    with pytest.raises(RegistryError):
        api.fetch_version(info.tag, project / "pulled")
    assert not (project / "pulled").exists()


def test_pull_into_a_dangling_symlink_is_refused_and_writes_nothing(project, tmp_path):
    info = api.register("runs/a")
    link = tmp_path / "linkto"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(RegistryError, match="already exists"):
        api.fetch_version(info.tag, link)
    assert not (tmp_path / "nowhere").exists() and not list(tmp_path.glob(".linkto.pull-*"))


@pytest.mark.parametrize("backend", ["dvc", "dir"])
@pytest.mark.parametrize("stored", ["head.safetensors", MANIFEST])
def test_a_store_object_that_is_a_directory_is_tampering_not_an_internal_error(project, backend, stored):
    """Before: a directory where an object belongs (a store rewritten by hand or a botched restore) made verify, pull
    and the gate's baseline check fail with 'internal error: IsADirectoryError' (exit 3, 'report it'): one line,
    exit 2, and for the gate an untrusted baseline (a baseline_integrity ERROR) now."""
    import shutil

    from click.testing import CliRunner

    from calibgate.cli import cli

    info = api.register("runs/a", store="../store") if backend == "dir" else api.register("runs/a")
    api.promote(info.tag, approved_by=["alice", "bob"])
    digest = info.record.artifacts.files[stored]
    if backend == "dir":
        obj = project.parent / "store" / "files" / "sha256" / digest[:2] / digest[2:]
    else:
        md5 = hashlib.md5((project / "runs" / "a" / stored).read_bytes()).hexdigest()
        obj = project.parent / "dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]
    obj.unlink()
    obj.mkdir()
    runner = CliRunner()
    for args in (["registry", "verify", info.tag], ["registry", "pull", info.tag, "--to", str(project / "pulled")]):
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 2 and "is not a file" in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and "internal error" not in result.stderr
    assert not (project / "pulled").exists()
    result = runner.invoke(cli, ["gate", "--candidate", "runs/b", "--json"], catch_exceptions=False)
    decision = json.loads(result.stdout)
    (integrity,) = [c for c in decision["checks"] if c["id"] == "baseline_integrity"]
    assert result.exit_code == 3 and integrity["status"] == "ERROR" and "not a file" in integrity["message"]
    shutil.rmtree(obj)
