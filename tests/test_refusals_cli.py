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
from calibgate.errors import CalibgateError, ConfigError, DataError, EnvironmentFailure
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


def test_an_error_is_one_line_whatever_the_path_or_the_yaml_library_says(tmp_path):
    # a newline in a data file's name, or the reader's two-line message for a NUL in calibgate.yaml, split the error
    # line in two; an ESC in a name reached the terminal as a control sequence
    named = tmp_path / "cal\nib\x1b[31mration.jsonl"
    named.write_text('{"text": "a", "label": "x"}\n')
    line = refused(["plan", "--fast", "--calibration", str(named)], "fewer than", "cal\\nib\\x1b[31mration.jsonl")
    assert "\x1b" not in line
    config = tmp_path / "calibgate.yaml"
    config.write_text("name: router\nseed: 1\x00\n")
    refused(["plan", "--config", str(config)], f"{config}:2: not valid YAML", "unacceptable character #x0000")
    policy = tmp_path / "policy.yaml"
    policy.write_text("schema_version: 1\nchecks:\x07\n")
    from calibgate.errors import PolicyError
    from calibgate.policy.loader import load_policy

    with pytest.raises(PolicyError, match=r"policy.yaml:2: not valid YAML: unacceptable character #x0007: special characters are not allowed;"):
        load_policy(policy)
    assert "\n" not in DataError(str(named), fix="x\u2028y").format()


@pytest.mark.parametrize("key", ["root", "source"])
def test_calibgate_yaml_refuses_the_fields_set_after_loading_as_unknown_keys(tmp_path, key):
    """'root: /etc' was refused as "'root': Input should be an instance of Path": a key that does not exist, read as
    one of the wrong type (root and source are where the file is, set after reading it)."""
    config = tmp_path / "calibgate.yaml"
    config.write_text(f"name: router\n{key}: /etc\n")
    refused(["plan", "--config", str(config)], f"unknown key '{key}' (valid keys: schema_version, name,", "relative to the directory")


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


def test_deeply_nested_json_is_a_bad_input_everywhere(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    refused(["report", "--decision", str(deep)], "nested too deeply")
    refused(["plan", "--fast", "--calibration", str(deep)], "nested too deeply")
    refused(["predict", "--run", str(tmp_path), "--input", str(deep)], "nested too deeply")


def test_a_jsonl_row_naming_a_key_twice_is_refused(tmp_path):
    from calibgate.data.jsonl import load_labeled

    path = tmp_path / "dup.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "a", "text": "b", "label": "x"}\n')
    with pytest.raises(DataError, match="dup.jsonl:2: key 'text' appears twice"):
        load_labeled(path)


@pytest.mark.parametrize("text, needle", [
    ("schema_version: 9\n", "schema_version"),
    ("seed: 1\nseed: 2\n", "key 'seed' appears twice"),
    ("data:\n  <<: {train: a.jsonl}\n  <<: {train: b.jsonl}\n", "'<<' appears twice"),
    ("seed: true\n", "'seed': Input should be a valid integer"),
    ("target_size: '300'\n", "'target_size': Input should be a valid integer"),
    ("target_size: 99999999999\n", "'target_size': Input should be less than or equal to 10000000"),
    ("hardware: tpu\n", "'hardware': Input should be 'cpu' or 'gpu'"),
    # an empty path read as the project directory, or production silently as 'not measured'
    ("data:\n  production: ''\n", "'data.production': is empty"),
    ("policy: ' '\n", "'policy': is empty"),
    # the registry name: found at register before, after minutes of training in ci
    ("name: ../evil\n", "'name': '../evil' is not a registry model name"),
    ("name: 'a//b'\n", "'name': 'a//b' is not a registry model name"),
    ("name: router-\n", "is not a registry model name"),
    (f"name: {'x' * 129}\n", "at most 128 characters"),
])
def test_the_project_config_is_read_as_strictly_as_policies(tmp_path, text, needle):
    config = tmp_path / "calibgate.yaml"
    config.write_text(text)
    refused(["plan", "--fast", "--config", str(config)], needle)


@pytest.mark.parametrize("args, needle", [
    (["plan", "--fast", "--model", ""], "'--model': is empty"),
    (["drift", "--out", "", "--dry-run"], "'--out': is empty"),
    (["export", "--run", ""], "'--run': is empty"),
    (["serve", "m@v1.0.0", "--log", " "], "'--log': is empty"),
])
def test_an_empty_value_is_refused_instead_of_falling_back_to_a_default(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    refused(args, needle)
    assert list(tmp_path.iterdir()) == []  # nothing written into the working directory


@pytest.mark.parametrize("text, needle", [
    ("schema_version: 1\nchecks:\n  metrics: {}\n", "enables no checks"),
    ("checks:\n  accuracy_floor: {min: 0.5, severity: warn}\n  metrics: {ece: {max: 0.2, severity: warn}}\n", "could never block"),
])
def test_a_policy_that_cannot_block_is_refused(tmp_path, text, needle):
    policy = tmp_path / "p.yaml"
    policy.write_text(text)
    refused(["policy", "check", str(policy)], needle)


def _evaluation_dict():
    from tests.report.report_records import evaluation

    return evaluation(3).model_dump(mode="json")


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d["metrics"].update(accuracy=float("inf")), "metric 'accuracy' is inf"),
    (lambda d: d["metrics"].update(accuracy=5.0), "outside [0, 1]"),
    (lambda d: d["metrics"].update(ece=-1.0), "outside [0, 1]"),
    (lambda d: d["metrics"].update(accuracy=0.99), "but the predictions match"),
    (lambda d: d.update(predictions=[999] * len(d["predictions"])), "but the predictions match"),
    (lambda d: d.update(predictions=d["predictions"][:5]), "5 predictions"),
    (lambda d: d.update(labels=[7] * len(d["labels"])), "label index outside"),
    (lambda d: d["per_class"]["card_arrival"].update(recall=1.5), "less than or equal to 1"),
    # no rows under a test set of 120: every floor it claimed passed, and test_set_size counted 120 rows
    (lambda d: d.update(labels=[], predictions=[], confusion_matrix=[]), "0 predictions and 0 labels for a test set of 120"),
    (lambda d: d["per_class"]["card_arrival"].update(recall=0.99), "per_class 'card_arrival' has support 40, precision"),
    # macro-F1, precision, F1 and the confusion matrix are the rows' too: an edited macro_f1 passed macro_f1_floor
    (lambda d: d["metrics"].update(macro_f1=0.99), "metric 'macro_f1' is 0.99, but the test rows give"),
    (lambda d: d["per_class"]["card_arrival"].update(precision=0.01), "per_class 'card_arrival' has support 40"),
    (lambda d: d["per_class"]["card_arrival"].update(f1=0.01), "per_class 'card_arrival' has support 40"),
    (lambda d: d["confusion_matrix"][0].__setitem__(0, 999), "confusion matrix is not the one the test rows"),
    (lambda d: d["per_class"]["card_arrival"].update(support=400), "has support 400"),
    (lambda d: d["per_class"].update(ghost=d["per_class"]["card_arrival"]), "not list exactly the label names"),
    (lambda d: d["per_class"].pop("card_arrival"), "differs in: card_arrival"),
])
def test_an_evaluation_record_the_evaluation_cannot_have_written_is_refused(edit, needle):
    from pydantic import ValidationError

    from calibgate.records.evaluation import EvaluationResult

    record = _evaluation_dict()
    EvaluationResult.model_validate(record)
    edit(record)
    with pytest.raises(ValidationError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        EvaluationResult.model_validate(record)


@pytest.mark.parametrize("edit, needle", [
    (lambda a: a["latency"].update(p95_ms=-5), "greater than 0"),
    (lambda a: a["latency"].update(p50_ms=100.0), "percentiles out of order"),
    (lambda a: a.update(size_bytes=-1), "greater than or equal to 1"),
    (lambda a: a.update(accuracy=2.0), "less than or equal to 1"),
])
def test_an_export_record_with_impossible_figures_is_refused(edit, needle):
    from pydantic import ValidationError

    from calibgate.records.export import ExportResult
    from tests.report.report_records import export

    record = export().model_dump(mode="json")
    edit(record["artifacts"][0])
    with pytest.raises(ValidationError, match=needle):
        ExportResult.model_validate(record)


@pytest.mark.parametrize("env, needle", [
    ({"GITHUB_API_URL": "http://[::1"}, "GITHUB_API_URL"),
    ({"GITHUB_API_URL": "http://127.0.0.1:9/x y"}, "GITHUB_API_URL"),
    ({"GITHUB_API_URL": "file:///etc"}, "GITHUB_API_URL"),
    ({"GITHUB_TOKEN": "x\ny"}, "GITHUB_TOKEN holds a line break"),
    # each was an internal error at the first request: http.client cannot encode them, nor the socket the host
    ({"GITHUB_TOKEN": "t\u00f6k\u20acn"}, "GITHUB_TOKEN holds a character outside ASCII"),
    ({"GITHUB_API_URL": "http://127.0.0.1:9/\u00e4"}, "GITHUB_API_URL"),
    ({"GITHUB_API_URL": "http://a..b"}, "GITHUB_API_URL"),
    ({"GITHUB_API_URL": "http://."}, "GITHUB_API_URL"),
    # a query swallowed every path appended to it; credentials in the URL went to the host lookup
    ({"GITHUB_API_URL": "http://127.0.0.1:9/api?x=1"}, "GITHUB_API_URL"),
    ({"GITHUB_API_URL": "http://user:pw@127.0.0.1:9"}, "GITHUB_API_URL"),
])
def test_bad_github_settings_are_bad_input_not_internal_errors(env, needle):
    from calibgate.errors import ConfigError
    from calibgate.github import GitHubClient

    with pytest.raises(ConfigError, match=needle):
        GitHubClient.from_env({"GITHUB_TOKEN": "t", **env})


def test_a_model_directory_without_its_vocabulary_is_refused(tiny_bert_dir, tmp_path):
    import shutil

    from calibgate.embeddings.modeldir import load_pretrained_tokenizer
    from calibgate.errors import ModelError

    assert len(load_pretrained_tokenizer(tiny_bert_dir)) > 1000
    broken = tmp_path / "model"
    shutil.copytree(tiny_bert_dir, broken)
    for name in ("tokenizer.json", "vocab.txt"):
        (broken / name).unlink(missing_ok=True)
    with pytest.raises(ModelError, match="tokenizer knows .* tokens but the model has"):
        load_pretrained_tokenizer(broken)


def test_monitor_refuses_a_timestamp_from_the_far_future(tmp_path):
    log = write_log(tmp_path / "log.jsonl", n=5)
    lines = log.read_text().splitlines()
    record = json.loads(lines[1])
    record["ts"] = 1e300
    lines[1] = json.dumps(record)
    log.write_text("\n".join(lines) + "\n")
    refused(["monitor", "--log", str(log)], f"{log}:2", "ts")


@pytest.mark.parametrize("word, meant", [("Production", "production"), ("prod", "production"), ("None", "none")])
def test_gate_baseline_keyword_typos_get_a_did_you_mean(tmp_path, monkeypatch, word, meant):
    monkeypatch.chdir(tmp_path)
    refused(["gate", "--candidate", "runs/x", "--baseline", word], f"did you mean '{meant}'")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_named_as_input_is_refused_not_read_forever(tmp_path, monkeypatch, kind):
    """Reading a FIFO blocks until a writer comes; /dev/zero never ends. Each reader refuses them up front."""
    monkeypatch.chdir(tmp_path)
    if kind == "fifo":
        special = tmp_path / "pipe.jsonl"
        os.mkfifo(special)
    else:
        special = Path("/dev/zero")
    needle = "FIFO" if kind == "fifo" else "device"
    refused(["plan", "--fast", "--calibration", str(special)], needle)
    refused(["predict", "--run", str(tmp_path), "--input", str(special)], needle)
    refused(["monitor", "--log", str(special)], needle)
    with pytest.raises(ConfigError, match=needle):
        read_user_text(special, what="config", fix="x", error=ConfigError)


def test_a_fifo_inside_a_run_is_refused_by_every_hash_of_it(tmp_path):
    from calibgate.errors import IntegrityError
    from calibgate.runs import hash_tree

    (tmp_path / "export").mkdir()
    (tmp_path / "head.safetensors").write_bytes(b"x" * 16)
    os.mkfifo(tmp_path / "export" / "pipe")
    with pytest.raises(IntegrityError, match="export/pipe is a FIFO"):
        hash_tree(tmp_path)


def _sealed_run(tmp_path: Path) -> Path:
    """A directory holding a run manifest: the guard refuses by the manifest alone, before any input is read."""
    from calibgate.runs import MANIFEST

    run = tmp_path / "runs" / "sealed"
    make_dirs(run)
    (run / MANIFEST).write_text("{}")
    return run


@pytest.mark.parametrize("build_args, option", [
    (lambda run, tmp: ["plan", "--calibration", str(tmp / "cal.jsonl"), "-o", str(run / "plan.json")], "-o"),
    (lambda run, tmp: ["predict", "--run", str(run), "--input", str(tmp / "t.jsonl"), "-o", str(run / "p.jsonl")], "-o"),
    (lambda run, tmp: ["monitor", "--log", str(tmp / "log.jsonl"), "-o", str(run / "export" / "m.md")], "-o"),
    (lambda run, tmp: ["report", "--decision", str(tmp / "d.json"), "-o", str(run / "report.md")], "-o"),
    (lambda run, tmp: ["suggest-labels", "--pool", str(tmp / "t.jsonl"), "-o", str(run / "s.jsonl")], "--out"),
    (lambda run, tmp: ["drift", "--dry-run", "--production", str(tmp / "t.jsonl"), "--out", str(run)], "--out"),
    (lambda run, tmp: ["train", "--train", str(tmp / "cal.jsonl"), "--runs-dir", str(run)], "--runs-dir"),
    (lambda run, tmp: ["ci", "--out", str(run / "ci")], "--out"),
    (lambda run, tmp: ["bench", "regret", str(tmp), "-o", str(run / "r.md")], "-o"),
    (lambda run, tmp: ["bench", "regret", str(tmp), "--cache-dir", str(run / "cache")], "--cache-dir"),
    (lambda run, tmp: ["bench", "regret", str(tmp), "--write-priors", str(run / "priors.json")], "--write-priors"),
])
def test_an_output_inside_a_sealed_run_is_refused_and_the_run_keeps_its_files(tmp_path, monkeypatch, build_args, option):
    """A file written under a run is one its manifest does not cover: every later load refused the run as tampered.
    Each command that writes where a user says refuses such a path before it reads or writes anything."""
    monkeypatch.chdir(tmp_path)
    run = _sealed_run(tmp_path)
    for name in ("train.jsonl", "test.jsonl"):
        (tmp_path / name).write_text('{"text": "a", "label": "x"}\n')
    before = sorted(p.name for p in run.rglob("*"))
    refused(build_args(run, tmp_path), f"{option} ", "inside the sealed run")
    assert sorted(p.name for p in run.rglob("*")) == before


def test_serve_logs_and_registry_restores_refuse_a_sealed_run_too(tmp_path):
    from calibgate.serving.predlog import PredictionLog

    run = _sealed_run(tmp_path)
    with pytest.raises(ConfigError, match="--log .* inside the sealed run"):
        PredictionLog(run / "export" / "log.jsonl")
    from calibgate.runs.guard import check_outside_runs, sealed_run_holding

    link = tmp_path / "link"
    link.symlink_to(run, target_is_directory=True)
    assert sealed_run_holding(link / "deep" / "x") == run.resolve(), "a symlinked path is judged where it lands"
    assert sealed_run_holding(tmp_path / "runs" / "other") is None
    check_outside_runs(tmp_path / "runs" / "other" / "x.json", what="-o")  # beside a run is fine


@pytest.mark.parametrize("extra, needle", [
    (["--quick", "--sizes", "50"], "--quick fixes the sizes and seeds, so --sizes would be ignored"),
    (["--quick", "--seeds", "3", "--full-size", "500"], "so --full-size, --seeds would be ignored"),
    (["--sizes", "0,100"], "--sizes 0 is outside 10..2000"),
    (["--sizes", "100,5000"], "--sizes 5000 is outside 10..2000"),
    (["--seeds", "-1"], "--seeds -1 is outside 0..4294967295"),
    (["--seeds", "1,1"], "names a value twice"),
    (["--sizes", "1e3"], "is not a comma-separated list of integers"),
])
def test_bench_regret_options_are_checked_before_anything_trains(tmp_path, extra, needle):
    for name in ("train.jsonl", "test.jsonl"):
        (tmp_path / name).write_text('{"text": "a", "label": "x"}\n')
    refused(["bench", "regret", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), *extra], needle)
    assert not (tmp_path / "cache").exists()


def test_bench_regret_refuses_a_cache_it_cannot_write_before_training(tmp_path):
    for name in ("train.jsonl", "test.jsonl"):
        (tmp_path / name).write_text('{"text": "a", "label": "x"}\n')
    (tmp_path / "afile").write_text("x")
    refused(["bench", "regret", str(tmp_path), "--quick", "--cache-dir", str(tmp_path / "afile" / "cache")], "afile is a file")


@pytest.mark.parametrize("option, target, needle", [
    ("-o", "afile/r.md", "afile is a file"),
    ("-o", "results.json", "which would overwrite it"),
    ("-o", "o3/r.md", "o3/r.json is a directory"),
    ("--write-priors", "afile/priors.json", "afile is a file"),
    ("--write-priors", "dangling", "is a symlink"),
])
def test_bench_regret_checks_what_it_writes_at_the_end_before_it_trains(tmp_path, option, target, needle):
    """-o and --write-priors were written only after the whole benchmark: a target that could not be written, or the
    raw JSON landing on the markdown's own name (-o results.json), lost or overwrote hours of results."""
    for name in ("train.jsonl", "test.jsonl"):
        (tmp_path / name).write_text('{"text": "a", "label": "x"}\n')
    (tmp_path / "afile").write_text("x")
    (tmp_path / "o3" / "r.json").mkdir(parents=True)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    refused(["bench", "regret", str(tmp_path), "--quick", "--cache-dir", str(tmp_path / "cache"), option,
             str(tmp_path / target)], needle)
    assert not (tmp_path / "cache").exists()


def test_bench_regret_refuses_a_data_set_named_twice(tmp_path):
    for name in ("train.jsonl", "test.jsonl"):
        (tmp_path / name).write_text('{"text": "a", "label": "x"}\n')
    refused(["bench", "regret", str(tmp_path), f"{tmp_path}/.", "--quick"], "a data set is named twice")


HUGE = "9" * 5000  # valid JSON; Python's int() refuses it (more than 4,300 digits) with a ValueError that was exit 3


def test_an_integer_too_long_to_read_is_bad_input_in_every_json_reader(tmp_path, minilm_dir):
    import shutil

    from calibgate.data.jsonl import iter_objects
    from calibgate.embeddings.modeldir import check_model_dir
    from calibgate.errors import ModelError
    from calibgate.github.client import _decode
    from calibgate.records.evaluation import EvaluationResult
    from calibgate.runs import parse_record
    from calibgate.serving.app import BadRequest, ServeLimits, _parse

    with pytest.raises(DataError, match=r"x.jsonl:2: holds an integer too long to read"):
        list(iter_objects(['{"text": "a", "label": "b"}', '{"text": "a", "label": "b", "n": %s}' % HUGE], source="x.jsonl"))
    with pytest.raises(ModelError, match=r"holds an integer too long to read \(over 4,300 digits\), not the evaluation"):
        parse_record('{"accuracy": %s}' % HUGE, EvaluationResult, source="evaluation.json", what="evaluation", fix="re-run")
    model = tmp_path / "model"
    shutil.copytree(minilm_dir, model)
    (model / "config.json").write_text('{"hidden_size": %s}' % HUGE)
    with pytest.raises(ModelError, match="unreadable model config"):
        check_model_dir(model)
    with pytest.raises(BadRequest, match="a number too long to read"):
        _parse(('{"text": "a", "n": %s}' % HUGE).encode(), ServeLimits())
    assert "message" in _decode(('{"n": %s}' % HUGE).encode()), "a GitHub answer Python cannot read is an error answer"


def test_plan_refuses_a_calibration_row_with_an_integer_too_long_to_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = "".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(20))
    (tmp_path / "cal.jsonl").write_text(rows + '{"text": "x", "label": "a", "extra": %s}\n' % HUGE)
    refused(["plan", "--calibration", "cal.jsonl", "--fast"], "cal.jsonl:21: holds an integer too long to read")


@pytest.mark.parametrize("command", [["suggest-labels", "--pool", "pool.jsonl", "--budget", "1"],
                                     ["drift", "--dry-run", "--production", "pool.jsonl", "--reference", "pool.jsonl"]])
def test_a_model_option_that_is_not_a_run_names_the_option_it_was_given_as(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(60)))
    refused([*command, "--model", "nothere"], "nothere: not a calibgate run", "fix: pass --model a directory")


def test_an_output_path_that_is_a_link_a_fifo_or_too_long_is_one_line_and_is_left_as_it_was(tmp_path):
    """os.replace swapped a regular file in for whatever was there: '-o /dev/full' turned the device into a file (as
    root), a FIFO or a link to /proc/self/fd/1 became a plain file, with exit 0. A name past 255 bytes was exit 3."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = tmp_path / "real.json"
    target.write_text("kept")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="is a FIFO, not a file to write"):
        atomic_write_text(fifo, "x")
    with pytest.raises(ConfigError, match="is a symlink: writing would replace the link"):
        atomic_write_text(link, "x")
    assert fifo.is_fifo() and link.is_symlink() and target.read_text() == "kept"
    with pytest.raises(ConfigError, match="File name too long"):
        atomic_write_text(tmp_path / ("e" * 260), "x")
    near_limit = tmp_path / ("d" * 250)  # a legal name: the temporary name beside it must stay legal too
    atomic_write_text(near_limit, "x")
    assert near_limit.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    (tmp_path / "d.json").write_text("{}")
    refused(["report", "--decision", str(tmp_path / "d.json"), "-o", str(fifo)], "is a FIFO, not a file to write")


@pytest.mark.parametrize("run_id", ["LATEST", "latest", "Latest"])
def test_the_runs_pointer_names_are_not_run_ids(tmp_path, monkeypatch, run_id):
    """--run-id LATEST trained, wrote the run, then failed (LATEST is the pointer file) and so did every later train;
    --run-id latest froze the runs/latest link on that run while LATEST moved on."""
    monkeypatch.chdir(tmp_path)
    refused(["train", "--strategy", "embedding-probe", "--run-id", run_id], f"run id '{run_id}' is the name of the runs directory's pointer")
    assert not (tmp_path / "runs").exists()


def test_a_runs_dir_that_cannot_be_written_is_refused_before_training(tmp_path, monkeypatch):
    """A runs dir under a file (or without write permission) failed after training, with exit 3 and minutes lost."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    refused(["train", "--strategy", "embedding-probe", "--runs-dir", "afile/runs"], "afile is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_drift_out_files_that_are_links_are_refused_before_the_work(tmp_path, monkeypatch):
    """drift --out DIR wrote drift.json through a symlink in DIR (to wherever it pointed), after all its work."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "dout"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("orig")
    (out / "drift.json").symlink_to(victim)
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(60)))
    refused(["drift", "--dry-run", "--production", "pool.jsonl", "--reference", "pool.jsonl", "--out", str(out)],
            "drift.json is a symlink")
    assert victim.read_text() == "orig"


def test_a_runs_dir_with_a_part_past_255_bytes_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(["train", "--strategy", "embedding-probe", "--runs-dir", str(tmp_path / ("a" * 300))], "File name too long")


def test_an_output_named_in_bytes_a_c_locale_cannot_decode_is_written(tmp_path):
    """Under LC_ALL=C (no UTF-8 mode) a UTF-8 output name arrives as surrogate escapes; the temporary name beside it
    turned them into characters ASCII cannot encode (exit 3, after the plan had run)."""
    rows = "".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(20))
    (tmp_path / "cal.jsonl").write_text(rows)
    target = os.fsencode(tmp_path) + "/plan\u00e9.json".encode("utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    proc = subprocess.run([sys.executable, "-X", "utf8=0", "-m", "calibgate", "plan", "--fast", "--calibration", "cal.jsonl",
                           "-o", target], cwd=tmp_path, env=env, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode("ascii", "replace")
    assert os.path.exists(target)


def test_ci_out_files_that_are_links_are_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report"
    out.mkdir()
    (out / "decision.json").symlink_to(tmp_path / "elsewhere.json")
    refused(["ci", "--out", str(out)], "decision.json is a symlink")
    assert not (tmp_path / "elsewhere.json").exists()


def test_a_cache_directory_inside_a_sealed_run_is_refused(tmp_path, monkeypatch):
    """CALIBGATE_CACHE_DIR=runs/x/cache wrote embeddings into the run, which every command then refused (an unlisted,
    pickle-format file)."""
    monkeypatch.chdir(tmp_path)
    run = _sealed_run(tmp_path)
    monkeypatch.setenv("CALIBGATE_CACHE_DIR", str(run / "cache"))
    rows = "".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(20))
    (tmp_path / "cal.jsonl").write_text(rows)
    before = sorted(p.name for p in run.rglob("*"))
    refused(["plan", "--fast", "--calibration", "cal.jsonl"], "CALIBGATE_CACHE_DIR ", "inside the sealed run")
    assert sorted(p.name for p in run.rglob("*")) == before


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_ci_refuses_a_baseline_run_target_it_could_not_replace_before_training(tmp_path, monkeypatch, kind):
    """ci removes and restores <out>/baseline-run only after training: a symlink or file there was an internal error
    (rmtree) at the end."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report"
    out.mkdir()
    if kind == "symlink":
        (out / "baseline-run").symlink_to(tmp_path)
    else:
        (out / "baseline-run").write_text("x")
    refused(["ci", "--out", str(out)], "baseline-run is a symlink or a file")


def _current_records() -> dict:
    from tests.report.report_records import decision, evaluation, export, plan

    from calibgate.drift.record import DriftRecord

    drift = DriftRecord(name="router", drifted=False, summary="s", domain_auc=0.6, domain_threshold=0.75, alpha=0.05,
                        reference="train", n_production=60, n_reference=100, body="b")
    return {"decision": decision("block"), "evaluation": evaluation(3), "export": export(), "plan": plan(), "drift": drift}


@pytest.mark.parametrize("role", ["decision", "evaluation", "export", "plan", "drift"])
@pytest.mark.parametrize("offset", [1, -1])
def test_a_record_of_another_schema_version_is_refused(tmp_path, role, offset):
    """Before: every record read its schema_version as any integer: a decision of 'schema_version: 2' (or an
    evaluation of 0, a plan of 3) was read as this version's and reported, gated or promoted on; the policy,
    calibgate.yaml and the run manifest already refused another version."""
    from calibgate.runs import read_record

    record = _current_records()[role]
    data = json.loads(record.model_dump_json())
    type(record).model_validate(data)  # the current version reads
    data["schema_version"] += offset
    path = tmp_path / f"{role}.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibgateError, match=f"schema_version {data['schema_version'] - offset}, not {data['schema_version']}"):
        read_record(path, type(record), what=role, fix="re-run it")
    if role in ("decision", "evaluation", "export", "plan"):  # what report reads, from the CLI and through the API
        from calibgate.report.api import render_report

        option = {"decision": "--decision", "evaluation": "--candidate-eval", "export": "--export", "plan": "--plan"}[role]
        decision = tmp_path / "decision-file.json"
        decision.write_text(_current_records()["decision"].model_dump_json())
        args = ["report", "--decision", str(path if role == "decision" else decision)]
        refused(args if role == "decision" else [*args, option, str(path)], "schema_version")
        records = {"decision": _current_records()["decision"]}
        records[{"evaluation": "candidate_eval"}.get(role, role)] = data
        with pytest.raises(CalibgateError, match="schema_version"):
            render_report(**records)
