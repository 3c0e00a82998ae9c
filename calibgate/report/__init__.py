"""PR report: markdown rendering of gate decisions and their evidence, the plan view, charts, Actions annotations.

Light by design: imports no torch, so the report step runs on any runner.
"""
