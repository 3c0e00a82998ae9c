"""PR report: markdown rendering of gate decisions and their evidence, Actions annotations, the ci/drift pipeline.

Light by design: imports no torch, so the report step runs on any runner.
"""
