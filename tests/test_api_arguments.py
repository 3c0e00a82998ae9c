"""The Python API refuses a wrong argument with a ConfigError naming it, before anything runs or is written.

Before, the API passed its arguments straight down: evaluate(batch_size=0) raised range()'s ValueError,
export(latency_runs=10**15) a MemoryError, predict(run, None) and every int given as a path a TypeError from pathlib,
api.promote(approved_by='alice') counted five approvers.
"""

from __future__ import annotations

import math

import pytest

from calibgate import api
from calibgate.errors import ConfigError, RegistryError


@pytest.mark.parametrize("call, needle", [
    (lambda: api.evaluate(model="runs/x", batch_size=0), "batch_size=...): 0 is outside 1..65536"),
    (lambda: api.evaluate(model="runs/x", batch_size=1.5), "float 1.5 is not an integer"),
    (lambda: api.evaluate(model="runs/x", seed=-1), "seed=...): -1 is outside"),
    (lambda: api.evaluate(model="runs/x", seed=2**64), "is outside 0..4294967295"),
    (lambda: api.evaluate(model=3), "int 3 is not a path"),
    (lambda: api.evaluate(model="runs/x", config=3), "int 3 is not a path"),
    (lambda: api.export("runs/x", latency_runs=10**15), "latency_runs=...)"),
    (lambda: api.export("runs/x", tolerance=math.inf), "not a positive finite number"),
    (lambda: api.export("runs/x", tolerance=math.nan), "not a positive finite number"),
    (lambda: api.predict("runs/x", "one text"), "str 'one text' is not a list"),
    (lambda: api.predict("runs/x", ["hi"], top_k="3"), "str '3' is not an integer"),
    (lambda: api.register("runs/x", version=1), "int 1 is not a string"),
    (lambda: api.register("runs/x", bump_part="huge"), "'huge' is not one of"),
    (lambda: api.show_version(5), "int 5 is not a string"),
    (lambda: api.list_versions(repo="a\x00b"), "is not a path"),
    (lambda: api.plan(calibration=5), "int 5 is not a path"),
    (lambda: api.train(plan=5), "int 5 is not a path"),
    (lambda: api.render_report(decision={}, links=5), "is not a mapping of label to URL"),
    (lambda: api.evaluate(model="runs/x", nonsense=1), "unexpected keyword argument 'nonsense'"),
])
def test_a_wrong_argument_is_a_config_error_naming_it(tmp_path, monkeypatch, call, needle):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        call()
    assert needle in info.value.message and info.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_approvers_as_one_string_are_refused_before_the_registry_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((ConfigError, RegistryError), match="approved_by"):
        api.promote("router@v1.0.0", approved_by="alice")
