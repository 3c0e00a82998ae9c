"""Policies (thresholds in git), checks and the gate decision."""
