"""Signals -> an adaptation plan: candidates with predicted accuracy and cost, and reasons."""
