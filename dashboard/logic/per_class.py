"""The per-class page's logic: curves, AUC per label, the best model per label, and the threshold explorer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.evaluate import metrics_of
from benchmarks.evaluation.leaderboard import auc_by_label
from benchmarks.evaluation.metrics import per_label
from benchmarks.evaluation.results import Run, newest_per, read_metrics, read_predictions
from benchmarks.models.registry import FLOOR, baseline_kind

from .leaderboard import runs_on


def default_curve_runs(runs: list[Run], most: int = 5) -> list[str]:
    """The newest run of each kind that ranks images (not the floor baseline, whose curves are a diagonal by
    construction)."""
    ranking = [run for run in runs if run.kind != baseline_kind(FLOOR)]
    return [run.run_id for run in newest_per(ranking, lambda run: run.kind).values()][:most]


def runs_with_label_samples(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """(runs whose per-label bootstrap samples the evaluator stored, runs without): a page reads the first and
    names the second, since recomputing them costs ~20 s per run on 2 cores."""
    from benchmarks.evaluation.groups import stored_label_samples

    stored, missing = [], []
    for run in runs:
        (stored if stored_label_samples(run, "roc_auc") is not None else missing).append(run)
    return stored, missing


def best_per_label_table(results: Path, dataset: Dataset) -> tuple[pd.DataFrame, list[str]]:
    """Per label: the best model by test ROC-AUC (runs of one model pooled over seeds), and the models not
    distinguishable from it (paired bootstrap test, Benjamini-Hochberg across the table: ``MULTIPLE_COMPARISONS``);
    and the ids of the runs left out for want of stored samples."""
    from benchmarks.evaluation.groups import group_runs
    from benchmarks.evaluation.label_verdicts import best_per_label

    stored, missing = runs_with_label_samples(runs_on(results, dataset))
    rows = best_per_label(group_runs(stored))
    table = pd.DataFrame(
        [
            {
                "label": row["label"],
                "best model": row["best"] or "—",
                "ROC-AUC": None if row["auc"] is None else round(row["auc"], 3),
                "not distinguishable from it": ", ".join(row["tied"]) or "—",
            }
            for row in rows
        ]
    )
    return table, [run.run_id for run in missing]


def auc_matrix(runs: list[Run]) -> pd.DataFrame:
    return auc_by_label(runs)


def evaluated_metrics(run: Run) -> dict:
    """metrics.json as written by the evaluator; a run not evaluated yet (or damaged) is a one-line error."""
    metrics = read_metrics(run)
    if not metrics:
        raise BenchmarkError(f"{run.path}: not evaluated yet (python -m benchmarks evaluate {run.path})")
    return metrics


def curves(run: Run) -> dict:
    return evaluated_metrics(run)["curves"]


def reliability(run: Run) -> dict:
    """The run's reliability diagrams and per-label ECE, from the evaluator (derived in memory for a run evaluated
    before calibration was scored)."""
    metrics = metrics_of(run)
    if not metrics:
        raise BenchmarkError(f"{run.path}: not evaluated yet (python -m benchmarks evaluate {run.path})")
    ece = {label: entry.get("ece") for label, entry in metrics["per_label"].items()}
    return {"curves": metrics["calibration"]["reliability"], "ece": ece}


def label_results(run: Run) -> dict[str, dict]:
    """The evaluator's per-label test results (threshold tuned on valid, counts at it, AUC, AP, F1)."""
    return evaluated_metrics(run)["per_label"]


def threshold_effect(run: Run, dataset: Dataset, label: str, threshold: float) -> pd.DataFrame:
    """Precision, recall, F1 and confusion counts of one label at ``threshold``, on valid and on test
    (computed by the shared ``benchmarks.evaluation.metrics.per_label``)."""
    table = read_predictions(run, dataset)
    rows = {}
    for split in ("valid", "test"):
        part = table[table["split"] == split]
        targets = dataset.targets(split)
        order = dataset.rows(split)["image"].tolist()
        scores = part.set_index("image").loc[order, run.labels].to_numpy(float)
        j = run.labels.index(label)
        entry = per_label(targets[:, [dataset.labels.index(label)]], scores[:, [j]], np.array([threshold]), [label])[
            label
        ]
        rows[split] = {k: entry[k] for k in ("precision", "recall", "f1", "tp", "fp", "fn", "tn")}
    return pd.DataFrame(rows).T


def test_decisions(run: Run, dataset: Dataset, label: str, threshold: float) -> dict:
    """The run's test scores decided at its tuned thresholds, except ``label`` at ``threshold`` (the per-class
    slider): the evaluator's per-label counts, which labels it mixes up, and every error of ``label``."""
    from benchmarks.evaluation.evaluate import aligned_scores
    from benchmarks.evaluation.metrics import label_confusion

    targets, scores = aligned_scores(run, dataset, "test")
    tuned = label_results(run)
    thresholds = np.array([float(tuned.get(name, {}).get("threshold", 0.5)) for name in dataset.labels])
    j = dataset.labels.index(label)
    thresholds[j] = threshold
    predicted = scores >= thresholds
    images = dataset.rows("test")["image"].tolist()

    def named(row: np.ndarray) -> str:
        return " ".join(name for name, on in zip(dataset.labels, row) if on) or "(none)"

    errors = pd.DataFrame(
        {
            "image": images,
            "score": scores[:, j],
            "true": [named(row) for row in targets.astype(bool)],
            "predicted": [named(row) for row in predicted],
            "error": np.where(
                predicted[:, j] & (targets[:, j] == 0),
                "FP",
                np.where(~predicted[:, j] & (targets[:, j] == 1), "FN", ""),
            ),
        }
    )
    errors = errors[errors["error"] != ""]
    errors = pd.concat(
        [
            errors[errors["error"] == "FP"].sort_values("score", ascending=False),
            errors[errors["error"] == "FN"].sort_values("score"),
        ]
    )
    return {
        "counts": per_label(targets, scores, thresholds, dataset.labels),
        "mixed": label_confusion(targets, predicted),
        "errors": errors.reset_index(drop=True),
    }
