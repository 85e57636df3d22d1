"""The bootstrap over test images, computed for every resample at once.

A resample drawn with replacement is the test split with each image weighted by how often it was drawn, and ROC-AUC
and average precision of a weighted sample are sums over (positive, negative) image pairs: with the draw as a
(resamples, images) count matrix, one matrix product per label gives every resample's value, and ~1,000
scikit-learn calls per metric become a few BLAS calls. scikit-learn has no batched form of either;
``tests/test_resampling.py`` holds these to ``roc_auc_score`` / ``average_precision_score`` on each resample (same
draw, equal to 1e-12).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from .metrics import macro_auc, macro_of, rankable


def draw_counts(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, images): how often each test image is drawn in each resample. The draw is the one every run on a
    dataset shares (same seed, same count), so run A's resample b and run B's resample b hold the same images."""
    indices = np.random.default_rng(seed).integers(0, n_images, (resamples, n_images))
    offsets = np.arange(resamples)[:, None] * n_images
    return np.bincount((indices + offsets).ravel(), minlength=resamples * n_images).reshape(resamples, n_images)


def per_label_samples(targets: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Each label's ROC-AUC and AP on every resample: ``{"roc_auc": (resamples, labels), "ap": ...}``, NaN where the
    resample holds no positive or no negative image of the label."""
    shape = (counts.shape[0], targets.shape[1])
    out = {"roc_auc": np.full(shape, np.nan), "ap": np.full(shape, np.nan)}
    counts = counts.astype(np.float64)  # whole numbers, exact in float64; BLAS multiplies floats
    for j in range(targets.shape[1]):
        out["roc_auc"][:, j], out["ap"][:, j] = _label_on_resamples(targets[:, j], scores[:, j], counts)
    return out


def _label_on_resamples(truth: np.ndarray, score: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One label on every resample, as two matrix products over (positive, negative) image pairs.

    ROC-AUC is the Mann-Whitney statistic (a tie counts a half: the area of scikit-learn's ROC curve): the share of
    drawn (positive, negative) pairs the scores put in order. AP is scikit-learn's step sum: each drawn positive
    weighs the precision of a threshold at its score (its tie group's, as there). Every sum is of whole counts,
    exact in float64, until the last division.
    """
    score = score.astype(np.float64)
    positive = truth.astype(bool)
    drawn_pos, drawn_neg = counts[:, positive], counts[:, ~positive]
    n_pos, n_neg = drawn_pos.sum(axis=1), drawn_neg.sum(axis=1)
    above = score[positive][:, None] > score[~positive][None, :]
    ordered_twice = 2.0 * above + (score[positive][:, None] == score[~positive][None, :])
    accepted = (score[:, None] >= score[positive][None, :]).astype(np.float64)  # image k passes positive i's cut
    true_above = drawn_pos @ accepted[positive]
    all_above = counts @ accepted
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = ((drawn_pos @ ordered_twice) * drawn_neg).sum(axis=1) / (2.0 * n_pos * n_neg)
        precision = np.divide(true_above, all_above, out=np.zeros(true_above.shape), where=all_above > 0)
        ap = (drawn_pos * precision).sum(axis=1) / n_pos
    defined = (n_pos > 0) & (n_neg > 0)
    return np.where(defined, auc, np.nan), np.where(defined, ap, np.nan)


class PairedGain(NamedTuple):
    gain: float  # macro AUC difference on the full set
    share_ahead: float  # share of paired resamples in which the model is strictly ahead
    spread: float  # sd of the difference over the paired resamples


def paired_macro_auc_gain(
    targets: np.ndarray, scores: np.ndarray, baseline: np.ndarray, *, resamples: int = 200, seed: int = 0
) -> PairedGain:
    """Macro AUC of ``scores`` minus ``baseline``'s on the same images, the share of paired resamples (the same
    images drawn for both) in which ``scores`` is ahead, and the difference's spread: how sure one can be the gain
    is not noise."""
    gain = (macro_auc(targets, scores) or 0.0) - (macro_auc(targets, baseline) or 0.0)
    counts = draw_counts(len(targets), resamples, seed)
    differences = macro_of(per_label_samples(targets, scores, counts)["roc_auc"]) - macro_of(
        per_label_samples(targets, baseline, counts)["roc_auc"]
    )
    differences = differences[np.isfinite(differences)]
    share_ahead = float(np.mean(differences > 0)) if len(differences) else 0.0
    return PairedGain(gain, share_ahead, float(np.std(differences)) if len(differences) else 0.0)


def lead_needed(spread: float, confidence: float) -> float | None:
    """How far ahead on the full set a model must be before it leads in ``confidence`` of the paired resamples: the
    one-sided normal quantile times the difference's spread over them. Keep-best and the tuner's preset rule say it
    where they keep the start, so a user sees how small a gain the valid split can confirm. None where the two
    models never differ or ``confidence`` asks for no more than a lead (≤ 0.5)."""
    if spread <= 1e-9 or confidence <= 0.5:
        return None
    return NormalDist().inv_cdf(confidence) * spread


def per_label_samples_by_resample(targets: np.ndarray, scores: np.ndarray, resamples: int, seed: int) -> dict:
    """The same samples the slow way, one scikit-learn call per resample and metric (as the evaluator computed them
    before): the reference the tests and ``python -m tools.speed`` hold ``per_label_samples`` to."""
    indices = np.random.default_rng(seed).integers(0, len(targets), (resamples, len(targets)))
    out = {name: np.full((resamples, targets.shape[1]), np.nan) for name in ("roc_auc", "ap")}
    for b, rows in enumerate(indices):
        y, s = targets[rows], scores[rows]
        keep = rankable(y)
        if keep.any():
            out["roc_auc"][b, keep] = roc_auc_score(y[:, keep], s[:, keep], average=None)
            out["ap"][b, keep] = average_precision_score(y[:, keep], s[:, keep], average=None)
    return out


def share_text(share: float, needed: float) -> str:
    """A share of resamples as a percentage that never reads as the bar it missed: 79.5 % against 80 % needed is
    "79.5%", not "80%"."""
    whole = f"{share:.0%}"
    return f"{share:.1%}" if share < needed and whole == f"{needed:.0%}" else whole
