"""Can the scores be read as probabilities? Per-label expected calibration error and Brier score.

ECE uses equal-mass bins: per label, the test split's scores cut at their deciles exactly as scikit-learn's
``calibration_curve(strategy="quantile")`` cuts them (so the reliability diagram and the ECE share their bins), and
ECE = sum over bins of (images in the bin / images) x |share of positives - mean score|. Brier is the mean squared
difference between score and label (``brier_score_loss``). The bootstrap keeps each label's bins fixed at the test
split's and weighs each image by how often a resample drew it, so every resample is a few matrix products.
A Teachable Machine export's softmax is scored like any other score: if it is not a per-label probability, its
calibration figures say so.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve

BINS = 10
STRATEGY = "quantile"  # equal-mass bins


def bin_ids(scores: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each image's bin for one label: scikit-learn's quantile edges over the scores, and its ``searchsorted``."""
    edges = np.percentile(scores, np.linspace(0, 100, bins + 1))
    return np.searchsorted(edges[1:-1], scores)


def per_label_calibration(targets: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """ECE and Brier of every label on every row of ``counts`` (images drawn per resample; one row of ones for the
    test split itself): ``{"ece": (rows, labels), "brier": (rows, labels)}``."""
    counts = np.atleast_2d(counts).astype(np.float64)
    totals = counts.sum(axis=1)
    ece = np.empty((counts.shape[0], targets.shape[1]))
    for j in range(targets.shape[1]):
        y, p = targets[:, j].astype(np.float64), scores[:, j].astype(np.float64)
        one_hot = np.eye(BINS)[bin_ids(p)]  # (images, bins)
        gap = counts @ (one_hot * y[:, None]) - counts @ (one_hot * p[:, None])  # positives minus scores, per bin
        ece[:, j] = np.abs(gap).sum(axis=1) / totals
    squared = (scores.astype(np.float64) - targets) ** 2
    return {"ece": ece, "brier": (counts @ squared) / totals[:, None]}


def reliability_curves(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> dict[str, dict]:
    """Per label, the reliability diagram's points (scikit-learn's ``calibration_curve`` on the ECE's bins): mean
    score and share of positives per non-empty bin, and how many test images each holds."""
    out = {}
    for j, label in enumerate(labels):
        y, p = targets[:, j], scores[:, j].astype(np.float64)
        observed, predicted = calibration_curve(y, p, n_bins=BINS, strategy=STRATEGY)
        sizes = np.bincount(bin_ids(p), minlength=BINS)
        out[label] = {
            "predicted": [round(float(v), 5) for v in predicted],
            "observed": [round(float(v), 5) for v in observed],
            "count": [int(c) for c in sizes[sizes > 0]],
        }
    return out
