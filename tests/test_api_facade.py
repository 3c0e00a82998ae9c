"""The facade ``calibgate.api``: real typed functions that import their implementation on first call.

Each public name is a function defined in the facade (editors and type checkers see its signature and return
type), its parameters agree with the implementation it calls (names, kinds, defaults), and importing the facade
loads no other calibgate module.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

from calibgate import api

# public name -> the implementation it delegates to
FACADE = {
    "plan": "calibgate.planner.api:plan",
    "train": "calibgate.training.api:train",
    "evaluate": "calibgate.evaluation.api:evaluate",
    "export": "calibgate.export.api:export",
    "predict": "calibgate.export.serving:predict",
    "check_policy": "calibgate.policy.api:check_policy",
    "load_policy": "calibgate.policy.loader:load_policy",
    "gate": "calibgate.policy.api:gate",
    "gate_run": "calibgate.pipeline.gate:gate_run",
    "register": "calibgate.registry.api:register",
    "promote": "calibgate.registry.api:promote",
    "rollback": "calibgate.registry.api:rollback",
    "deprecate": "calibgate.registry.api:deprecate",
    "list_versions": "calibgate.registry.api:list_versions",
    "show_version": "calibgate.registry.api:show_version",
    "verify_version": "calibgate.registry.api:verify_version",
    "fetch_version": "calibgate.registry.api:fetch_version",
    "production_baseline": "calibgate.registry.api:production_baseline",
    "render_report": "calibgate.report.api:render_report",
    "run_ci": "calibgate.pipeline.ci:run_ci",
    "drift": "calibgate.pipeline.drift:drift",
    "suggest_labels": "calibgate.drift.api:suggest_labels",
    "retrain": "calibgate.drift.retrain:retrain",
    "build_server": "calibgate.serving.app:build_server",
    "monitor": "calibgate.serving.monitor:monitor_log",
    "bench_regret": "calibgate.bench.regret:bench_regret",
}
# facade parameters that are not the implementation's: (name, parameter) -> why
NOT_FORWARDED = {("train", "planner"): "the facade passes the planner itself",
                 ("promote", "rederive"): "the facade passes serving's re-measure of each evidence report from its log"}
OWN_DEFAULT = {("build_server", "limits"): "None keeps the implementation's ServeLimits() without importing serving"}


def _target(name: str):
    module, attr = FACADE[name].split(":")
    return getattr(importlib.import_module(module), attr)


def test_every_public_name_is_a_typed_function_of_the_facade():
    assert sorted(api.__all__) == sorted(FACADE)
    for name in api.__all__:
        function = getattr(api, name)
        assert inspect.isfunction(function) and function.__module__ == "calibgate.api", name
        assert inspect.signature(function).return_annotation is not inspect.Signature.empty, name
        assert function.__doc__, name


@pytest.mark.parametrize("name", sorted(FACADE))
def test_the_facade_signature_agrees_with_the_implementation(name):
    facade = inspect.signature(getattr(api, name)).parameters
    target = {p: v for p, v in inspect.signature(_target(name)).parameters.items() if (name, p) not in NOT_FORWARDED}
    assert list(facade) == list(target)
    for pname, param in facade.items():
        assert param.kind == target[pname].kind, pname
        if (name, pname) not in OWN_DEFAULT:
            assert param.default == target[pname].default, pname
        assert param.annotation is not inspect.Parameter.empty, pname


def test_importing_the_facade_loads_no_subsystem():
    code = "import sys, calibgate.api; print(sorted(m for m in sys.modules if m.startswith('calibgate')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['calibgate', 'calibgate.api']"


def test_a_facade_call_reaches_the_implementation(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("schema_version: 1\nchecks:\n  no_such_check: {}\n", encoding="utf-8")
    from calibgate.policy.api import check_policy

    problems = api.check_policy([bad])
    assert problems and problems == check_policy([bad])
