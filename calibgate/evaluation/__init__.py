"""Honest measurement of a trained run on held-out data."""
