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


@pytest.mark.parametrize("call, needle", [
    # a flag that is not a bool: "no" and "false" are true in Python, so these overrode a gate and pushed
    (lambda: api.promote("router@v1.0.0", override_gate="no"), "override_gate=...): str 'no' is not True or False"),
    (lambda: api.register("runs/x", push="false"), "push=...): str 'false' is not True or False"),
    (lambda: api.evaluate(model="runs/x", write=0), "int 0 is not True or False"),
    (lambda: api.plan(fast="yes"), "fast=...): str 'yes' is not True or False"),
    # a record of the wrong class, where the annotation names one
    (lambda: api.plan(priors={"shift": 9}), "priors=...): dict"),
    (lambda: api.plan(thresholds={"tolerance": 50}), "is not a PlannerThresholds"),
    (lambda: api.train(plan={"strategy": "lora"}), "dict {'strategy': 'lora'} is not a path"),
    (lambda: api.render_report(decision=5), "int 5 is not a GateDecision or a mapping"),
    (lambda: api.build_server("router", limits={"max_batch": 10**9}), "is not a ServeLimits"),
    # a list of the wrong items, a value the annotation does not allow to be None
    (lambda: api.evaluate(model="runs/x", metrics=[3]), "metrics=...): list [3] is not a list"),
    (lambda: api.promote("router@v1.0.0", evidence=["a.json", 7]), "evidence=...)"),
    (lambda: api.predict("runs/x", None), "NoneType None is not a list of strings"),
    (lambda: api.check_policy(["policies/a.yaml", ""]), "'' is not a path"),
    # bounds the API lacked
    (lambda: api.suggest_labels(budget=0), "budget=...): 0 is outside 1..100000"),
    (lambda: api.drift(threshold=math.nan), "threshold=...): nan is outside 0.5..1.0"),
    (lambda: api.export("runs/x", exporter="jit"), "'jit' is not one of"),
    (lambda: api.export("runs/x", parity_texts=["a\x00b"]), "holds a NUL character"),
])
def test_a_wrong_type_by_annotation_is_a_config_error_naming_it(tmp_path, monkeypatch, call, needle):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        call()
    assert needle in info.value.message and info.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_every_api_annotation_is_one_the_check_reads():
    """A parameter whose annotation the check cannot read would pass unchecked: every member must be a known kind."""
    import inspect

    from calibgate import _arguments

    known_scalars = {"Any", "None", "bool", "int", "float", "str", "Path"}
    for function_name in api.__all__:
        function = inspect.unwrap(getattr(api, function_name))
        for parameter in inspect.signature(function).parameters.values():
            assert isinstance(parameter.annotation, str), (function_name, parameter.name)
            for member in _arguments._members(parameter.annotation):
                head = member.partition("[")[0]
                assert member in known_scalars or head in {"list", "tuple", "Sequence", "Iterable", "Mapping",
                                                           "Callable", "Literal"} or member[:1].isupper(), member
