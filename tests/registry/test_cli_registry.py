"""CLI: 'calibgate registry ...' tables, --json, one-line errors and exit codes; the gate against production."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from tests.registry.conftest import local_tags

from calibgate.cli import cli
from calibgate.registry.records import registry_json_schemas

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_register_promote_list_show_verify(project):
    reg = run("registry", "register", "runs/a", "-m", "first")
    assert reg.exit_code == 0, reg.output
    assert "registered router@v1.0.0 (run a" in reg.output and "dvc store" in reg.output
    assert json.loads(run("registry", "register", "runs/b", "--json").stdout)["version"] == "v1.1.0"
    denied = run("registry", "promote", "router@v1.0.0", "--approved-by", "alice")
    assert denied.exit_code == 2 and denied.stderr.count("\n") == 1
    assert denied.stderr.startswith("calibgate: error: promotion of router@v1.0.0 to production needs 2 approval(s)")
    assert not any("#" in t for t in local_tags(project))
    ok = run("registry", "promote", "router@v1.0.0", "--approved-by", "alice", "--approved-by", "bob")
    assert ok.exit_code == 0 and "promoted router@v1.0.0 to production (router#production#1; previously none), pushed to origin" in ok.output
    listing = run("registry", "list")
    assert listing.exit_code == 0
    assert "router@v1.0.0" in listing.output and "production" in listing.output and "accuracy 0.900" in listing.output
    versions = json.loads(run("registry", "list", "--json").stdout)
    assert [(v["version"], v["stages"]) for v in versions] == [("v1.0.0", ["production"]), ("v1.1.0", [])]
    shown = run("registry", "show", "router@v1.0.0")
    assert shown.exit_code == 0 and "0fa66f6ecc5059f38edaafb1c423c0d7.dir" in shown.output and "alice, bob" in shown.output
    assert json.loads(run("registry", "show", "v1.0.0", "--json").stdout)["record"]["message"] == "first"
    verified = run("registry", "verify", "router@v1.0.0")
    assert verified.exit_code == 0 and verified.output.startswith("ok: router@v1.0.0: 7 files match")
    back = run("registry", "promote", "router@v1.1.0", "--approved-by", "carol", "--approved-by", "bob")
    assert back.exit_code == 0
    rolled = run("registry", "rollback", "--reason", "too slow")
    assert rolled.exit_code == 0 and "rolled back router@v1.0.0 to production (router#production#3; previously v1.1.0)" in rolled.output
    dep = run("registry", "deprecate", "router@v1.1.0", "--reason", "slow")
    assert dep.exit_code == 0 and "deprecated router@v1.1.0" in dep.output
    pulled = run("registry", "pull", "router@v1.0.0", "--to", "runs/restored")
    assert pulled.exit_code == 0 and (project / "runs" / "restored" / "calibgate-run.json").exists()
    again = run("registry", "pull", "router@v1.0.0", "--to", "runs/restored")
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_cli_errors_are_one_line(project):
    (project / "runs" / "a" / "head.safetensors").write_bytes(b"tampered")
    tampered = run("registry", "register", "runs/a")
    assert tampered.exit_code == 2 and tampered.stderr.count("\n") == 1 and "tampered" in tampered.stderr
    unknown = run("registry", "show", "router@v7.0.0")
    assert unknown.exit_code == 2 and "is not registered" in unknown.stderr
    bad_ref = run("registry", "verify", "router#production#1")
    assert bad_ref.exit_code == 2 and "not a version reference" in bad_ref.stderr
    empty = run("registry", "list")
    assert empty.exit_code == 0 and "no versions registered" in empty.output


def test_verify_tampered_store_exits_2(project):
    run("registry", "register", "runs/b", "--no-push")
    remote = project.parent / "dvc-remote" / "files" / "md5"
    victim = max((p for p in remote.rglob("*") if p.is_file() and not p.name.endswith(".dir")), key=lambda p: p.stat().st_size)
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes() + b"!")
    result = run("registry", "verify", "router@v1.0.0")
    assert result.exit_code == 2 and "tampered or corrupted" in result.stderr


def test_gate_uses_the_production_version_as_baseline(project):
    run("registry", "register", "runs/a")
    implicit = run("gate", "--candidate", "runs/b")  # nothing in production: the first model must be declared
    assert implicit.exit_code == 2 and "no version of router is in production" in implicit.stderr
    assert "--baseline none" in implicit.stderr and len(implicit.stderr.strip().splitlines()) == 1
    first = run("gate", "--candidate", "runs/b", "--baseline", "none")  # absolute thresholds only
    assert first.exit_code == 0 and "No baseline" in first.output
    run("registry", "promote", "router@v1.0.0", "--approved-by", "alice", "--approved-by", "bob")
    worse = run("gate", "--candidate", "runs/worse", "--json")
    decision = json.loads(worse.stdout)
    assert worse.exit_code == 1 and decision["baseline"] == "router@v1.0.0"
    regression = next(c for c in decision["checks"] if c["id"] == "regression")
    assert regression["status"] == "FAIL" and regression["baseline"] == 0.9
    better = run("gate", "--candidate", "runs/b")
    assert better.exit_code == 0 and "baseline router@v1.0.0" in better.output


def test_registry_schemas_committed():
    for name, schema in registry_json_schemas().items():
        committed = json.loads((ROOT / "calibgate" / "schemas" / name).read_text(encoding="utf-8"))
        assert committed == schema, f"regenerate calibgate/schemas/{name}"


def test_every_command_has_help_and_example():
    for group in ("registry", "policy"):
        cmd = cli.get_command(None, group)
        for name, sub in cmd.commands.items():
            assert sub.help, f"{group} {name} has no help"
            assert "xample" in (sub.epilog or ""), f"{group} {name} has no example"
            for param in sub.params:
                if param.param_type_name == "option":
                    assert param.help, f"{group} {name} {param.opts} has no help"
    gate = cli.get_command(None, "gate")
    assert "Exit codes" in gate.epilog and all(p.help for p in gate.params if p.param_type_name == "option")
