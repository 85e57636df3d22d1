"""Expected-max curves (Dodge et al., "Show Your Work", EMNLP 2019): the best valid macro AUC a family is expected
to reach with k trials, for every k up to the trials it had, so a verdict can say how it depends on the budget.

The estimator is the unbiased one, drawing k of the n trials *without* replacement (a U-statistic; Tang et al.,
"Showing Your Work Doesn't Always Work", ACL 2020, on the bias of the original's with-replacement version): with the
valid scores sorted v(1) <= ... <= v(n), E[max of k] = sum_i v(i) C(i-1, k-1) / C(n, k). The *test* curve is the
expected test score of the trial that valid would pick among k — the same weights on the test scores of the trials
in valid order. Bands: the 2.5 and 97.5 percentiles over bootstrap resamples of the trials and, where each trial's
score on resampled valid images is given (``valid_samples``), of the valid images too: on a small valid split, which
trial looks best is itself noise, and a band over trials alone cannot see it. Verdicts between two families read the
paired difference of their resampled curves (the same valid images in both) where both have them.
Caveat, said wherever a curve is shown: TPE's trials are not independent draws (later ones learn from earlier ones),
so the curve reads "k trials like these", exact only for ``--sampler random``.
"""

from __future__ import annotations

from math import comb

import numpy as np

BAND_RESAMPLES = 1000
BAND_SEED = 0


def max_weights(n: int, k: int) -> np.ndarray:
    """P(the i-th smallest of n is the max of k drawn without replacement), i = 1..n."""
    total = comb(n, k)
    return np.array([comb(i - 1, k - 1) / total for i in range(1, n + 1)])


def expected_max(valid: np.ndarray, test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Expected best valid score with k = 1..n trials, and the expected test score of the trial valid picks."""
    valid = np.asarray(valid, dtype=float)
    order = np.argsort(valid, kind="stable")
    weights = np.stack([max_weights(len(valid), k) for k in range(1, len(valid) + 1)])
    valid_curve = weights @ valid[order]
    test_curve = None if test is None else weights @ np.asarray(test, dtype=float)[order]
    return valid_curve, test_curve


def expected_max_bands(
    valid: np.ndarray,
    test: np.ndarray | None = None,
    resamples: int = BAND_RESAMPLES,
    *,
    valid_samples: np.ndarray | None = None,
    stream: int = 0,
    with_samples: bool = False,
):
    """The curves with their bootstrap bands: ``k``, ``valid`` / ``valid_low`` / ``valid_high`` and the same for
    ``test`` when test scores are given (lists, one value per k).

    ``valid_samples`` (resamples, trials): each trial's valid score on each resample of the valid images; resample b
    then draws trials *and* reads their scores on valid draw b. ``stream`` keeps two families' trial draws
    independent (their valid draws are shared). With ``with_samples``, also the resampled valid curves
    (resamples, k), for paired verdicts: ``(bands, samples)``."""
    valid = np.asarray(valid, dtype=float)
    n = len(valid)
    valid_curve, test_curve = expected_max(valid, test)
    draws = np.random.default_rng([BAND_SEED, stream]).integers(0, n, size=(resamples, n))
    pool = np.broadcast_to(valid, (resamples, n)) if valid_samples is None else np.asarray(valid_samples, dtype=float)
    if pool.shape != (resamples, n):
        raise ValueError(f"valid_samples has shape {pool.shape}; expected ({resamples}, {n})")
    scores = np.take_along_axis(pool, draws, axis=1)
    weights = np.stack([max_weights(n, k) for k in range(1, n + 1)])
    order = np.argsort(scores, axis=1, kind="stable")
    sampled_valid = np.take_along_axis(scores, order, axis=1) @ weights.T
    curves = {"k": list(range(1, n + 1)), **_with_band("valid", valid_curve, sampled_valid)}
    if test is not None:
        test = np.asarray(test, dtype=float)
        sampled_test = np.take_along_axis(test[draws], order, axis=1) @ weights.T
        curves.update(_with_band("test", test_curve, sampled_test))
    return (curves, sampled_valid) if with_samples else curves


def _with_band(name: str, curve: np.ndarray, samples: np.ndarray) -> dict:
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return {name: curve.round(5).tolist(), f"{name}_low": low.round(5).tolist(), f"{name}_high": high.round(5).tolist()}


def budget_verdict(
    a: str,
    curve_a: dict,
    b: str,
    curve_b: dict,
    metric: str = "valid",
    samples: tuple[np.ndarray, np.ndarray] | None = None,
) -> str:
    """One sentence on how A vs B depends on the number of trials, over the budgets both studies reached: who is
    ahead at each k, where the curves cross, and where neither is (not distinguishable). With ``samples`` (both
    families' resampled valid curves, row b of each on the same valid images) a family leads where the 95% band of
    the paired difference excludes 0; without, where the two bands do not overlap."""
    k_max = min(len(curve_a["k"]), len(curve_b["k"]))
    if k_max == 0:
        return f"{a} vs {b}: no common budget"
    if samples is not None:
        low, high = np.percentile(samples[0][:, :k_max] - samples[1][:, :k_max], [2.5, 97.5], axis=0)
        ahead = [a if low[k] > 0 else b if high[k] < 0 else None for k in range(k_max)]
    else:
        ahead = [_leader(a, curve_a, b, curve_b, metric, k) for k in range(k_max)]
    named = {who for who in ahead if who is not None}
    if not named:
        why = "the paired difference's band includes 0" if samples is not None else "bands overlap"
        return f"{a} vs {b}: not distinguishable at any budget from 1 to {k_max} trials ({why})"
    if len(set(ahead)) == 1:
        return (
            f"{a} vs {b}: {ahead[0]} ahead at every budget from 1 to {k_max} trials (expected best {metric} macro AUC)"
        )
    spans = []
    start = 0
    for k in range(1, k_max + 1):
        if k == k_max or ahead[k] != ahead[start]:
            who = ahead[start] or "not distinguishable"
            budget = f"{start + 1}-{k} trials" if k > start + 1 else f"{k} trial" + ("s" if k > 1 else "")
            spans.append(f"{who} at {budget}")
            start = k
    if len(named) == 2:  # the curves cross: each family leads at some budget
        return f"{a} vs {b}: the winner depends on the budget — " + "; ".join(spans)
    return f"{a} vs {b}: " + "; ".join(spans) + " (no budget where the other leads)"


def _leader(a: str, curve_a: dict, b: str, curve_b: dict, metric: str, k: int) -> str | None:
    """Who is ahead with k+1 trials, or None where the two bands overlap."""
    if curve_a[f"{metric}_low"][k] > curve_b[f"{metric}_high"][k]:
        return a
    if curve_b[f"{metric}_low"][k] > curve_a[f"{metric}_high"][k]:
        return b
    return None
