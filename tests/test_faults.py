"""Faults around a command: signals, kill -9, a deleted working directory, a locale that cannot encode the output.

Each ends in one line and a code a script can act on (128 + the signal, or 3), and leaves no state a later command
would trip on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from calibgate.paths import make_dirs
from tests.conftest import REPO_ROOT


def _reading_stdin(pid: int) -> bool:
    """The process is blocked in read(0, ...) (syscall 0 on x86-64, 63 on arm64), per /proc/PID/syscall."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] in ("0", "63") and int(fields[1], 16) == 0


@pytest.mark.parametrize("signal_name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_command_exits_128_plus_the_signal_in_one_line(tmp_path, signal_name, code):
    """Ctrl-C used to print click's 'Aborted!' and exit 1, the code of a blocked gate; SIGTERM (a cancelled CI job)
    killed the process without its cleanups. Both now end as an exception: one line, 128 + the signal."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "calibgate", "predict", "--run", str(tmp_path / "r"), "--input", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _reading_stdin(proc.pid) and time.monotonic() < deadline:  # imports done, handlers installed
            time.sleep(0.2)
        proc.send_signal(getattr(signal, signal_name))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == code, err
    assert len(lines) == 1 and lines[0].startswith("calibgate: error: ") and "run the command again" in lines[0], err


def test_a_killed_process_leaves_no_staging_directory_behind_for_long(tmp_path):
    """SIGKILL (the OOM killer) gives a train, export or pull no chance to clean up: its half-built directory stayed
    in runs/ forever. The next staging directory in that folder removes those of dead processes on this host, and
    leaves a live process's and another host's alone."""
    from calibgate.paths import _host, staging_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: no process has that id now (ids are not reused this soon)
    host = _host()
    leftovers = {
        "dead": tmp_path / f".run-a.tmp-{host}-{dead_pid}-abc123",
        "live": tmp_path / f".run-b.export-{host}-{os.getppid()}-def456",
        "other host": tmp_path / f".run-c.pull-elsewhere-{dead_pid}-ghi789",
        "user's": tmp_path / ".run-a.notes",
    }
    for path in leftovers.values():
        make_dirs(path)
        (path / "weights").write_text("x")
    fresh = staging_dir(tmp_path / "run-d", "tmp")
    assert fresh.is_dir() and fresh.name.startswith(f".run-d.tmp-{host}-{os.getpid()}-") and not list(fresh.iterdir())
    assert not leftovers["dead"].exists()
    assert all(leftovers[k].exists() for k in ("live", "other host", "user's"))


def test_a_signal_during_a_runs_commit_lands_after_it(tmp_path):
    """evaluate writes its records and then re-seals the manifest; export swaps its folder in and re-seals. A Ctrl-C
    between the two left a run whose files and manifest disagree, refused as tampered for good. The signal is now
    held until both are done, and then delivered."""
    import signal

    from calibgate.paths import signals_deferred

    import threading

    seen: list[str] = []
    done = threading.Event()
    other = threading.Thread(target=done.wait)  # as torch's and onnxruntime's threads: a thread mask let it take the signal
    other.start()
    previous = signal.signal(signal.SIGTERM, lambda *_: seen.append("delivered"))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            seen.append("commit done")
        seen.append("after")
    finally:
        signal.signal(signal.SIGTERM, previous)
        done.set()
        other.join()
    assert seen == ["commit done", "delivered", "after"]


def test_a_deleted_working_directory_is_one_line(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import os, sys; os.rmdir(sys.argv[1]); from calibgate.cli import main; "
                             "sys.argv = ['calibgate', 'plan', '--fast']; main()", str(gone)],
                            cwd=gone, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 3 and len(lines) == 1 and "the current directory no longer exists" in lines[0], err


def test_output_a_c_locale_cannot_encode_is_escaped_not_a_crash(tmp_path):
    """LC_ALL=C with Python's UTF-8 mode off: the plan's table printed half-way, then UnicodeEncodeError (exit 3)."""
    rows = "".join(json.dumps({"text": f"caf\u00e9 \u2013 {i}", "label": "ab"[i % 2]}) + "\n" for i in range(20))
    (tmp_path / "cal.jsonl").write_text(rows, encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    proc = subprocess.run([sys.executable, "-X", "utf8=0", "-m", "calibgate", "plan", "--fast", "--calibration", "cal.jsonl"],
                          cwd=tmp_path, env=env, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode("ascii", "replace")
    # escaped, or as UTF-8 (click writes its output UTF-8 where the locale claims ASCII): shown either way, all of it
    out = proc.stdout + proc.stderr
    assert b"\\u2013" in out or "caf\u00e9 \u2013".encode() in out
    assert b"suspect labels" in proc.stdout and proc.stdout.rstrip().endswith(b"measure shift")


def test_forked_workers_end_quietly_when_their_pool_is_terminated(tmp_path):
    """cleanlab's multiprocessing pool (label noise, in every plan) is closed with SIGTERM to its workers. They had
    inherited the CLI's SIGTERM handler, so each unwound with a traceback on a successful plan, and one that held the
    pool's queue lock hung the plan for good."""
    script = (
        "import multiprocessing as mp, time\n"
        "from calibgate.cli import install_signal_handlers\n"
        "install_signal_handlers()\n"
        "def work(x):\n    time.sleep(2)\n    return x\n"
        "if __name__ == '__main__':\n"
        "    with mp.get_context('fork').Pool(2) as pool:\n"
        "        pool.map_async(work, range(4))\n"
        "        time.sleep(0.5)\n"  # the workers are inside work(): terminate() on leaving the block signals them
        "    print('done')\n"
    )
    (tmp_path / "pool.py").write_text(script)
    proc = subprocess.run([sys.executable, str(tmp_path / "pool.py")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
    assert "Traceback" not in proc.stderr and "Terminated" not in proc.stderr, proc.stderr


def _shell(tmp_path, command: str) -> subprocess.CompletedProcess:
    """``python -m calibgate <command>`` through sh, so redirections such as '>&-' and '2>/dev/full' apply."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(["sh", "-c", f"{sys.executable} -m calibgate {command}"], cwd=tmp_path, env=env,
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("command, code, words", [
    ("policy schema >&-", 3, b"standard output is closed"),  # printed nothing and exited 0
    ("policy schema >/dev/full", 3, b"No space left on device: the output could not be written"),  # said 'report it'
    ("predict --run nowhere <&-", 2, b""),  # a closed stdin crashed inside click (exit 3)
])
def test_a_closed_or_full_standard_stream_is_never_a_success(tmp_path, command, code, words):
    out = _shell(tmp_path, command)
    assert out.returncode == code, out.stderr
    assert words in out.stderr and b"internal error" not in out.stderr and b"report it" not in out.stderr


@pytest.mark.parametrize("command, code", [
    ("policy check nowhere.yaml", 2),
    ("evaluate --run nowhere --bootstrap -5", 2),  # a usage error
    ("policy schema >/dev/full", 3),
])
@pytest.mark.parametrize("stderr", ["2>/dev/full", "2>&-"])
def test_the_exit_code_survives_a_standard_error_that_cannot_be_written(tmp_path, command, code, stderr):
    """Every code became 1 ('gate blocked') when the error line's own write failed."""
    assert _shell(tmp_path, f"{command} {stderr}").returncode == code


def test_a_path_the_locale_cannot_decode_in_a_json_record_is_bad_input(tmp_path):
    """Under LC_ALL=C with UTF-8 mode off, a path 'dé' reaches Python as surrogate escapes, which no JSON record can
    hold: plan --json (and gate --json) ended in an internal PydanticSerializationError after all their work."""
    (tmp_path / "d\u00e9").mkdir()
    rows = "".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(20))
    (tmp_path / "d\u00e9" / "cal.jsonl").write_text(rows)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-X", "utf8=0", "-m", "calibgate", "plan", "--fast", "--json", "--calibration",
                           "d\u00e9/cal.jsonl".encode()], cwd=tmp_path, env=env, capture_output=True)
    assert proc.returncode == 2, proc.stderr
    assert b"cannot decode" in proc.stderr and b"PYTHONUTF8=1" in proc.stderr and b"internal error" not in proc.stderr


def test_written_files_and_directories_follow_the_umask_and_keep_a_files_mode(tmp_path):
    """Files were always 0644 (a plan or production texts world-readable under umask 077, a user's chmod 600 undone on
    rewrite) and run, pull and staging directories always 0700 (mkdtemp's)."""
    import stat

    code = ("import os, sys\nfrom pathlib import Path\nfrom calibgate.paths import atomic_write_text, staging_dir\n"
            "os.umask(int(sys.argv[2], 8))\nroot = Path(sys.argv[1])\natomic_write_text(root / 'new.json', '{}')\n"
            "atomic_write_text(root / 'kept.json', '{}')\nprint(oct(staging_dir(root / 'run', 'train').stat().st_mode & 0o777))\n")
    (tmp_path / "kept.json").write_text("{}")
    (tmp_path / "kept.json").chmod(0o600)
    for umask, file_mode, dir_mode in (("077", 0o600, "0o700"), ("022", 0o644, "0o755")):
        (tmp_path / "new.json").unlink(missing_ok=True)
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path), umask], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == file_mode
        assert stat.S_IMODE((tmp_path / "kept.json").stat().st_mode) == 0o600
        assert out.stdout.strip() == dir_mode
