"""The floor: records that cross package boundaries.

Producers and readers both import these pydantic records (signal records and
the plan, thresholds, evaluation, export, the gate decision, the monitor
report) and the strategy and signal catalogues; this package imports nothing
of calibgate but :mod:`calibgate.errors`. ``tests/test_layers.py`` enforces it.
"""
