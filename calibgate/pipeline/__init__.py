"""Orchestration: the flows that wire the steps, the registry and the report together.

* :mod:`~calibgate.pipeline.gate`: ``gate_run``, the gate on a run directory against the registry's production
  version (or a run directory, or none);
* :mod:`~calibgate.pipeline.ci`: ``calibgate ci``, plan -> train -> evaluate -> export -> baseline -> gate -> report;
* :mod:`~calibgate.pipeline.drift`: ``calibgate drift``, production sample vs the production version's training data.

This floor sits above every step (policy, registry, report, drift) and below the facade (:mod:`calibgate.api`) and
the CLI; nothing but those imports it.
"""
