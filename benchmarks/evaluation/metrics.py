"""Multi-label metrics as pure functions of (targets, scores); scikit-learn computes every number.

``targets`` and ``scores`` are (images × labels) arrays; a label whose targets are all 0 (or all 1)
has no ROC-AUC or AP, which is reported as ``None`` with a reason, never as NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    label_ranking_average_precision_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

DEFAULT_THRESHOLD = 0.5
UNRELIABLE_TUNING_AUC = 0.6  # below this on valid, a tuned threshold is close to arbitrary
CURVE_POINTS = 101


def rankable(targets: np.ndarray) -> np.ndarray:
    """Labels that have both positives and negatives, so ROC-AUC and AP are defined."""
    positives = targets.sum(axis=0)
    return (positives > 0) & (positives < len(targets))


def why_unrankable(column: np.ndarray) -> str:
    return "no positive images in this split" if column.sum() == 0 else "no negative images in this split"


def tune_thresholds(targets: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
    """Per label, the score threshold that maximises F1 (on the split given: valid, never test)."""
    thresholds = np.full(targets.shape[1], DEFAULT_THRESHOLD)
    notes: list[str | None] = [None] * targets.shape[1]
    for j in range(targets.shape[1]):
        if targets[:, j].sum() == 0:
            notes[j] = f"no positives to tune on; default {DEFAULT_THRESHOLD}"
            continue
        precision, recall, cut = precision_recall_curve(targets[:, j], scores[:, j])
        f1 = np.divide(
            2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=(precision + recall) > 0
        )
        thresholds[j] = float(cut[int(np.argmax(f1[:-1]))])
        if rankable(targets[:, [j]])[0] and (auc := roc_auc_score(targets[:, j], scores[:, j])) < UNRELIABLE_TUNING_AUC:
            notes[j] = (
                f"ROC-AUC on the tuning split is only {auc:.2f}: the model barely ranks this label's images there, so "
                "the threshold is close to arbitrary; if it ranks the label well on test, check that split's labels "
                "for it"
            )
    return thresholds, notes


def macro_auc(targets: np.ndarray, scores: np.ndarray) -> float | None:
    return _macro(roc_auc_score, targets, scores)


def mean_ap(targets: np.ndarray, scores: np.ndarray) -> float | None:
    return _macro(average_precision_score, targets, scores)


def _macro(metric: Callable, targets: np.ndarray, scores: np.ndarray) -> float | None:
    keep = rankable(targets)
    if not keep.any():
        return None
    return float(np.mean(metric(targets[:, keep], scores[:, keep], average=None)))


def per_label(targets: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, labels: list[str]) -> dict[str, dict]:
    predicted = scores >= thresholds
    table = {}
    for j, label in enumerate(labels):
        y, s, p = targets[:, j], scores[:, j], predicted[:, j]
        entry = {
            "support": int(y.sum()),
            "threshold": float(thresholds[j]),
            "f1": float(f1_score(y, p, zero_division=0)),
            "precision": float(precision_score(y, p, zero_division=0)),
            "recall": float(recall_score(y, p, zero_division=0)),
            "tp": int((p & (y == 1)).sum()),
            "fp": int((p & (y == 0)).sum()),
            "fn": int((~p & (y == 1)).sum()),
            "tn": int((~p & (y == 0)).sum()),
        }
        if rankable(y[:, None])[0]:
            entry["roc_auc"] = float(roc_auc_score(y, s))
            entry["ap"] = float(average_precision_score(y, s))
        else:
            entry.update(roc_auc=None, ap=None, note=why_unrankable(y))
        table[label] = entry
    return table


def _f1(targets: np.ndarray, predicted: np.ndarray, average: str) -> float:
    """F1 over the label columns. scikit-learn reads a one-column indicator as *binary* — micro F1 then silently
    counts the negative class too, and per-sample F1 is refused — so a one-label dataset gets an all-zero second
    column (no sample's true or false positives change) and only the real columns are averaged."""
    columns = list(range(targets.shape[1]))
    if len(columns) == 1:
        targets, predicted = (np.hstack([m, np.zeros_like(m)]) for m in (targets, predicted))
    return float(f1_score(targets, predicted, labels=columns, average=average, zero_division=0))


def overall(targets: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> dict:
    predicted = (scores >= thresholds).astype(int)
    keep = rankable(targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        micro_auc = float(roc_auc_score(targets[:, keep], scores[:, keep], average="micro")) if keep.any() else None
        ranking_ap = float(label_ranking_average_precision_score(targets, scores))
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    return {
        "macro_roc_auc": macro_auc(targets, scores),
        "micro_roc_auc": micro_auc,
        "map": mean_ap(targets, scores),
        **{f"{average}_f1": _f1(targets, predicted, average) for average in ("micro", "macro", "samples")},
        "hamming_loss": float(hamming_loss(targets, predicted)),
        "subset_accuracy": float(accuracy_score(targets, predicted)),
        "label_ranking_ap": ranking_ap,
        "log_loss": float(
            np.mean([log_loss(targets[:, j], clipped[:, j], labels=[0, 1]) for j in range(targets.shape[1])])
        ),
        "labels_scored": int(keep.sum()),
        "labels_total": int(targets.shape[1]),
    }


def curves(targets: np.ndarray, scores: np.ndarray, labels: list[str]) -> dict[str, dict]:
    """ROC and PR curve points per label, thinned to at most ``CURVE_POINTS`` for plotting."""
    out = {}
    for j, label in enumerate(labels):
        y, s = targets[:, j], scores[:, j]
        if not rankable(y[:, None])[0]:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        precision, recall, _ = precision_recall_curve(y, s)
        out[label] = {"roc": _thin({"fpr": fpr, "tpr": tpr}), "pr": _thin({"recall": recall, "precision": precision})}
    return out


def _thin(points: dict[str, np.ndarray]) -> dict[str, list[float]]:
    n = len(next(iter(points.values())))
    keep = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
    return {k: [round(float(v), 5) for v in values[keep]] for k, values in points.items()}


def label_confusion(targets: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Which labels a model mixes up: cell [a, b] counts images that carry label a, do not carry b, and are
    predicted b (a false positive of b on an image of a). The diagonal counts a's false negatives."""
    targets, predicted = targets.astype(bool), predicted.astype(bool)
    mixed = targets.T.astype(int) @ (predicted & ~targets).astype(int)
    np.fill_diagonal(mixed, (targets & ~predicted).sum(axis=0))
    return mixed


def macro_of(per_label_values: np.ndarray) -> np.ndarray:
    """Macro average over the labels defined in each row (what ``macro_auc`` gives for that resample); NaN when
    none is."""
    defined = np.isfinite(per_label_values)
    totals = np.where(defined, per_label_values, 0.0).sum(axis=-1)
    counts = defined.sum(axis=-1)
    return np.divide(totals, counts, out=np.full(totals.shape, np.nan), where=counts > 0)


def with_interval(value: float, interval) -> str:
    """``0.863 [0.848, 0.879]``: a figure and its interval (when there is one), as every table prints them."""
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval is not None else "")


def confidence_interval(values: np.ndarray, level: float = 0.95) -> list[float] | None:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tail = (1 - level) / 2 * 100
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]
