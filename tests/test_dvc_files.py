"""A hand-edited ``datasets.dvc`` or a tampered DVC listing is bad input: one line, exit 2, no file outside read.

The md5 in ``<target>.dvc`` names a file in DVC's cache and remote, and a ``.dir`` listing's relpaths are joined to
the workspace and hashed: both come from files a pull request (or anyone with write access to the remote) can edit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from calibgate.data.versions import data_version, tracked_md5
from calibgate.errors import DataError
from tests.conftest import REPO_ROOT, demo_data_dir

FAKE = "ab" + "c" * 30 + ".dir"  # a well-formed name for a listing written by the test


@pytest.fixture
def demo(tmp_path) -> Path:
    """The demo layout with its data already in the workspace (no pull needed)."""
    root = tmp_path / "demo"
    root.mkdir()
    for name in ("calibgate.yaml", "datasets.dvc", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    shutil.copytree(REPO_ROOT / "dvc-storage", root / "dvc-storage")
    shutil.copytree(REPO_ROOT / "policies", root / "policies")
    shutil.copytree(demo_data_dir(), root / "datasets")
    return root


def _set_md5(root: Path, md5: str) -> None:
    dvc_file = root / "datasets.dvc"
    text = dvc_file.read_text()
    dvc_file.write_text(text.replace(tracked_md5(root, "datasets"), md5))


def _listing(root: Path, entries) -> None:
    path = root / "dvc-storage" / "files" / "md5" / FAKE[:2] / FAKE[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))
    _set_md5(root, FAKE)


def test_the_demo_reads_clean(demo):
    assert data_version(demo, "datasets").state == "clean"


@pytest.mark.parametrize("md5", ["../../../../outside/evil.dir", "/etc/passwd", "0FA66F6ECC5059F38EDAAFB1C423C0D7.dir",
                                 "0fa66f6e.dir", "[1, 2]"])
def test_an_md5_that_is_not_a_hash_is_refused_before_anything_is_opened(demo, tmp_path, md5):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.dir").write_text("[1]")
    _set_md5(demo, md5)
    with pytest.raises(DataError, match="is not a DVC md5"):
        data_version(demo, "datasets")


@pytest.mark.parametrize("entries, needle", [
    ([1], "entry 1 is not a DVC listing entry"),
    ({"relpath": "train.jsonl"}, "not a DVC directory listing"),
    ([{"relpath": "train.jsonl", "md5": "x"}], "entry 1 is not a DVC listing entry"),
    ([{"relpath": "../../outside/secret.txt", "md5": "0" * 32}], "points outside the data directory"),
    ([{"relpath": "/etc/passwd", "md5": "0" * 32}], "points outside the data directory"),
])
def test_a_listing_of_the_wrong_shape_or_leaving_the_directory_is_refused(demo, entries, needle):
    _listing(demo, entries)
    with pytest.raises(DataError, match=needle):
        data_version(demo, "datasets")


def test_plan_on_a_tampered_dvc_file_is_one_line_exit_2(demo, monkeypatch):
    monkeypatch.chdir(demo)
    _set_md5(demo, "../../../outside/evil.dir")
    result = CliRunner().invoke(cli, ["plan", "--fast", "--json"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a DVC md5" in lines[0] and "fix:" in lines[0], result.stderr
    assert result.stdout == ""
