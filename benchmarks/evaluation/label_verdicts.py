"""Per-label verdicts between models: A minus B per label, and the best model per label with its ties.

The best-per-label table makes many comparisons at once (every label x every other model), so its p-values are
adjusted across the table (Benjamini-Hochberg): at 95 % each, some "wins" in a table of 11 labels and 5 models would
be chance. Runs of one model are pooled over seeds as in ``groups``.
"""

from __future__ import annotations

import numpy as np

from .evaluate import dataset_of, metrics_of
from .groups import SEED_RESAMPLING_SEED, Group, label_samples, verdict
from .metrics import confidence_interval


def _label_draws(group: Group, name: str, rng: np.random.Generator) -> np.ndarray:
    """(resamples, labels): the per-label metric averaged over seeds drawn with replacement, per resample."""
    stacked = np.stack([label_samples(run, name) for run in group.runs], axis=1)  # (resamples, runs, labels)
    picks = rng.integers(0, stacked.shape[1], stacked.shape[:2])
    drawn = np.take_along_axis(stacked, picks[:, :, None], axis=1)
    with np.errstate(all="ignore"):
        return np.nanmean(drawn, axis=1)


def _label_points(group: Group, labels: list[str]) -> np.ndarray:
    """Each label's test ROC-AUC, mean over the group's runs (NaN where undefined)."""
    rows = []
    for run in group.runs:
        per = (metrics_of(run) or {}).get("per_label", {})
        rows.append(
            [np.nan if per.get(label, {}).get("roc_auc") is None else per[label]["roc_auc"] for label in labels]
        )
    with np.errstate(all="ignore"):
        return np.nanmean(np.array(rows, dtype=np.float64), axis=0)


def compare_per_label(a: Group, b: Group) -> list[dict]:
    """Per label, A minus B in test ROC-AUC with a 95% CI over the same resampled test images (and seeds, when the
    groups have several), and a verdict only where the CI allows one."""
    labels = dataset_of(a.runs[0]).labels
    rng = np.random.default_rng(SEED_RESAMPLING_SEED)
    differences = _label_draws(a, "roc_auc", rng) - _label_draws(b, "roc_auc", rng)
    points_a, points_b = _label_points(a, labels), _label_points(b, labels)
    several = len(a.runs) > 1 or len(b.runs) > 1
    out = []
    for j, label in enumerate(labels):
        ci = confidence_interval(differences[:, j])
        defined = np.isfinite(points_a[j]) and np.isfinite(points_b[j])
        out.append(
            {
                "label": label,
                "a": float(points_a[j]) if np.isfinite(points_a[j]) else None,
                "b": float(points_b[j]) if np.isfinite(points_b[j]) else None,
                "difference": float(points_a[j] - points_b[j]) if defined else None,
                "ci": ci if defined else None,
                "verdict": verdict(ci if defined else None, a.name, b.name, several),
            }
        )
    return out


FDR = 0.05  # the false-discovery rate the best-per-label table controls (Benjamini-Hochberg)
MULTIPLE_COMPARISONS = (
    "Benjamini-Hochberg over every label x model comparison in the table (false-discovery rate 5 %): with many "
    "labels and models, some 95 % intervals exclude 0 by chance"
)


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from paired bootstrap differences: twice the smaller share on one side
    of 0, counted with the observed sample (+1), so it is never 0 from a finite number of resamples."""
    finite = differences[np.isfinite(differences)]
    if len(finite) == 0:
        return 1.0
    side = min(int((finite <= 0).sum()), int((finite >= 0).sum()))
    return min(1.0, 2 * (side + 1) / (len(finite) + 1))


def best_per_label(groups: list[Group]) -> list[dict]:
    """Per label: the model (run or seed group) with the highest test ROC-AUC, and the others that are not
    distinguishable from it — a tie, not a win. Each comparison's paired bootstrap p-value is adjusted across the
    whole table (Benjamini-Hochberg, ``MULTIPLE_COMPARISONS``), so a table of many labels and models does not hand
    out chance wins; ``p`` and ``p_adjusted`` keep each figure."""
    from scipy.stats import false_discovery_control  # here: scipy.stats costs a second to import

    if not groups:
        return []
    labels = dataset_of(groups[0].runs[0]).labels
    points = np.vstack([_label_points(g, labels) for g in groups])  # (groups, labels)
    rng = np.random.default_rng(SEED_RESAMPLING_SEED)
    draws = [_label_draws(g, "roc_auc", rng) for g in groups]  # each (resamples, labels), paired over images
    out, tests = [], []  # tests: (row, other group, p)
    for j, label in enumerate(labels):
        column = points[:, j]
        if not np.isfinite(column).any():
            out.append({"label": label, "best": None, "auc": None, "tied": [], "note": "no ROC-AUC on test"})
            continue
        best = int(np.nanargmax(column))
        out.append(
            {
                "label": label,
                "best": groups[best].name,
                "auc": float(column[best]),
                "tied": [],
                "p": {},
                "p_adjusted": {},
            }
        )
        for i, group in enumerate(groups):
            if i != best and np.isfinite(column[i]):
                tests.append((out[-1], group.name, bootstrap_p_value(draws[best][:, j] - draws[i][:, j])))
    if tests:
        adjusted = false_discovery_control([p for _, _, p in tests], method="bh")
        for (row, name, raw), p in zip(tests, adjusted):
            row["p"][name], row["p_adjusted"][name] = raw, float(p)
            if p >= FDR:
                row["tied"].append(name)
    return out
