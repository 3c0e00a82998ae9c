"""Bad values at the edges of the command line: one line, exit 2, nothing written; never a hang, a crash or exit 3."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from calibgate.errors import ConfigError, DataError, EnvironmentFailure
from calibgate.paths import atomic_write_text, make_dirs, read_user_text
from tests.serving.test_monitor import write_log


def refused(args: list[str], *needles: str) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args, needle", [
    (["predict", "--run", "r", "--threads", "100000"], "--threads"),
    (["export", "--run", "r", "--threads", "1000000000"], "--threads"),
    (["serve", "m@v1.0.0", "--workers", "100000"], "--workers"),
    (["evaluate", "--run", "r", "--bootstrap", "1000000000"], "--bootstrap"),
    (["evaluate", "--run", "r", "--bootstrap", "-1"], "--bootstrap"),
    (["predict", "--run", "r", "--batch-size", "10000000"], "--batch-size"),
    (["train", "--lora-rank", "100000"], "--lora-rank"),
    (["train", "--epochs", "0"], "--epochs"),
    (["plan", "--folds", "1000000"], "--folds"),
    (["serve", "m@v1.0.0", "--max-body-bytes", "99999999999"], "--max-body-bytes"),
])
def test_every_count_option_is_bounded_on_both_sides(args, needle):
    refused(args, needle)


def test_the_apis_bound_threads_and_resamples_too():
    from calibgate.export.serving import make_session
    from calibgate.settings import check_threads

    with pytest.raises(ConfigError, match="threads"):
        check_threads(10**9)
    with pytest.raises(ConfigError, match="threads"):
        make_session(b"not a graph", threads=0)
    assert check_threads(None) is None and check_threads(4) == 4


def test_serve_refuses_a_busy_port_and_a_bad_host_before_loading_anything():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        refused(["serve", "nosuch@v1.0.0", "--port", str(port)], f"cannot listen on 127.0.0.1:{port}", "--port")
    refused(["serve", "nosuch@v1.0.0", "--host", "999.1.1.1"], "--host '999.1.1.1'")


def test_text_files_a_user_names_fail_in_one_line(tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_user_text(bad, what="reference data", fix="re-encode it")
    with pytest.raises(DataError, match="is a directory"):
        read_user_text(tmp_path, what="reference data", fix="name the file")
    with pytest.raises(DataError, match="no such file"):
        read_user_text(tmp_path / "missing", what="reference data", fix="name the file")
    config = tmp_path / "calibgate.yaml"
    config.write_bytes(b"name: caf\xe9\n")
    refused(["plan", "--config", str(config)], "not UTF-8 text")


def test_output_paths_through_a_file_are_input_errors_and_a_full_disk_is_not(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="a part of the path is a file"):
        make_dirs(tmp_path / "file" / "sub" / "deeper")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        make_dirs(tmp_path / "file")
    with pytest.raises(ConfigError, match="is a directory"):
        atomic_write_text(tmp_path, "x")
    from calibgate.paths import path_error

    assert isinstance(path_error(OSError(28, "No space left on device"), tmp_path, "write"), EnvironmentFailure)


def test_report_refuses_a_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "decision.json").write_text("{}")
    (tmp_path / "notarun").mkdir()
    (tmp_path / "notarun" / "evaluation.json").write_text("{}")
    refused(["report", "--decision", str(tmp_path / "decision.json"), "--run", str(tmp_path / "notarun")], "not a calibgate run")


@pytest.mark.parametrize("edit, needle", [
    (lambda r: r["items"][0].update(confidence=2.5), "confidence"),
    (lambda r: r.update(latency_ms=-5), "latency_ms"),
    (lambda r: r.update(schema_version=99), "schema_version"),
    (lambda r: r.update(status=1000), "status"),
    (lambda r: r["items"][0].update(text_sha256="abc"), "text_sha256"),
])
def test_monitor_refuses_log_records_the_server_cannot_have_written(tmp_path, edit, needle):
    log = write_log(tmp_path / "log.jsonl", n=5)
    lines = log.read_text().splitlines()
    record = json.loads(lines[2])
    edit(record)
    lines[2] = json.dumps(record)
    log.write_text("\n".join(lines) + "\n")
    refused(["monitor", "--log", str(log)], f"{log}:3", needle)


def test_monitor_refuses_a_log_that_is_not_utf8(tmp_path):
    log = write_log(tmp_path / "log.jsonl", n=5)
    log.write_bytes(log.read_bytes() + b'{"x": "\xff"}\n')
    refused(["monitor", "--log", str(log)], f"{log}:6", "not valid UTF-8")


def test_a_closed_pipe_ends_quietly_and_not_with_success(tmp_path):
    """'calibgate ... | head' under pipefail: exit 1 (what click does on EPIPE), no traceback, no 'internal error'."""
    (tmp_path / "spewmod.py").write_text(textwrap.dedent("""
        import click

        @click.command()
        def spew():
            for _ in range(20000):
                click.echo("x" * 79)
    """))
    (tmp_path / "runner.py").write_text(textwrap.dedent("""
        import calibgate.cli as cli
        cli.COMMANDS["spew"] = "spewmod:spew"
        cli.main()
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[1])])}
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; '{sys.executable}' runner.py spew | head -c 10 > /dev/null"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
