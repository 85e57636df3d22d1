"""Paired comparison of two runs, or two seed groups, on the same test images: is the difference real or noise?"""

from __future__ import annotations

from pathlib import Path

from .groups import Group, compare_groups
from .results import load_run


def compare_runs(run_a: Path | str, run_b: Path | str) -> dict:
    """Paired bootstrap over the same resampled test images for both runs: A minus B with a 95% CI. One run is a
    group of one seed, so this is the groups' comparison, with training noise unseen."""
    a, b = load_run(run_a), load_run(run_b)
    return compare_groups(Group(a.run_id, [a]), Group(b.run_id, [b]))
