"""Robustness to common corruptions: the served model scored on the cached corrupted test sets, and the tables."""
