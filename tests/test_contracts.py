"""Cross-cutting contracts: light imports, published schemas, documented commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from calibgate import schemas
from calibgate.cli import COMMANDS, cli


def test_light_modules_import_without_torch():
    # signals, planner, report, records and runs must not need torch: block it and import them
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'peft'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import calibgate, calibgate.api, calibgate.cli, calibgate.signals.base, calibgate.planner.api\n"
        "import calibgate.planner.decide, calibgate.report.plan_view, calibgate.report.sections, calibgate.runs\n"
        "import calibgate.records.plan, calibgate.records.strategies, calibgate.records.decision, calibgate.records.monitor\n"
        "from calibgate.signals.base import _load_builtins; _load_builtins()\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_cli_help_does_not_import_torch():
    code = "import sys; from calibgate.cli import cli\ntry:\n  cli(['--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().endswith("False"), result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(schemas.PUBLISHED))
def test_published_schema_matches_model(name):
    generated = json.loads(json.dumps(schemas.generate(name), sort_keys=True))
    assert schemas.load(name) == generated, f"run 'python -m calibgate.schemas' to refresh {name}.schema.json"


def _all_commands():
    out = []
    for name in cli.list_commands(None):
        command = cli.get_command(None, name)
        out.append((name, command))
        for sub in getattr(command, "commands", {}).values():
            out.append((f"{name} {sub.name}", sub))
    return out


@pytest.mark.parametrize("path,command", _all_commands(), ids=[p for p, _ in _all_commands()])
def test_every_command_and_option_is_documented_with_an_example(path, command):
    assert command.help and len(command.help) > 40, f"'{path}' needs help text"
    if not getattr(command, "commands", None):
        text = command.help + (command.epilog or "")
        assert "Example" in text or "example" in text, f"'{path}' help needs an example"
    for param in command.params:
        if isinstance(param, __import__("click").Option) and not param.hidden:
            assert param.help, f"'{path}' option {param.opts} has no help text"
    result = CliRunner().invoke(cli, [*path.split(), "--help"])
    assert result.exit_code == 0


def test_command_map_names_real_modules():
    listed = set(cli.list_commands(None))
    assert "plan" in listed
    assert listed <= set(COMMANDS)
