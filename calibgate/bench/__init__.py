"""Benchmarks that back calibgate's claims with measured figures (regret of the plan)."""
