"""The gate, the registry and serving stay light: importable, and their --help runs, with torch blocked."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys

class Block:  # an import of torch or transformers fails, as if they were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers'):
            raise ImportError(f'{name} is blocked in this test')

sys.meta_path.insert(0, Block())
import calibgate.policy.api, calibgate.pipeline.gate, calibgate.registry.api, calibgate.cli.gate, calibgate.cli.policy, calibgate.cli.registry
import calibgate.serving.app, calibgate.serving.monitor, calibgate.report.monitor_view, calibgate.registry.rollout
from click.testing import CliRunner
from calibgate.cli import cli
for args in (['gate', '--help'], ['policy', 'check', '--help'], ['registry', '--help'], ['serve', '--help'], ['monitor', '--help']):
    assert CliRunner().invoke(cli, args).exit_code == 0, args
assert 'dvc' not in sys.modules, 'dvc is imported lazily, only to store or verify artifacts'
print('ok')
"""


def test_gate_and_registry_import_without_torch():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
