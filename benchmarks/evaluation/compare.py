"""Paired comparison of two runs on the same test images: is the difference real or noise?"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.errors import RunError

from .evaluate import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, aligned_scores, dataset_of
from .metrics import bootstrap, confidence_interval, macro_auc, mean_ap
from .results import load_run


def compare_runs(
    run_a: Path | str, run_b: Path | str, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> dict:
    """Paired bootstrap over the same resampled test images for both runs: A minus B with a 95% CI."""
    a, b = load_run(run_a), load_run(run_b)
    if a.fingerprint != b.fingerprint:
        raise RunError(
            f"{a.run_id} and {b.run_id} were made on different datasets (fingerprints differ); they cannot be compared"
        )
    dataset = dataset_of(a)
    targets, scores_a = aligned_scores(a, dataset, "test")
    _, scores_b = aligned_scores(b, dataset, "test")
    result = {"a": a.run_id, "b": b.run_id, "n_test_images": len(targets), "resamples": resamples, "metrics": {}}
    for name, metric in (("macro_roc_auc", macro_auc), ("map", mean_ap)):

        def difference(i: np.ndarray, metric=metric) -> float | None:
            ma, mb = metric(targets[i], scores_a[i]), metric(targets[i], scores_b[i])
            return None if ma is None or mb is None else ma - mb

        samples = bootstrap(difference, len(targets), resamples=resamples, seed=seed)
        observed = difference(np.arange(len(targets)))
        ci = confidence_interval(samples)
        result["metrics"][name] = {
            "a": metric(targets, scores_a),
            "b": metric(targets, scores_b),
            "difference": observed,
            "ci": ci,
            "verdict": verdict(ci, a.run_id, b.run_id),
        }
    return result


def verdict(ci: list[float] | None, name_a: str, name_b: str) -> str:
    if ci is None:
        return "not comparable (metric undefined)"
    if ci[0] > 0:
        return f"{name_a} is better"
    if ci[1] < 0:
        return f"{name_b} is better"
    return "no significant difference"
