"""The one evaluator: every run, whatever made it, is scored here on the same frozen test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.atomic import atomic_write, atomic_write_json
from benchmarks.data.dataset import Dataset, load_dataset
from benchmarks.errors import RunError

from .calibration import BINS, per_label_calibration, reliability_curves
from .metrics import (
    confidence_interval,
    curves,
    macro_auc,
    macro_of,
    mean_ap,
    overall,
    per_label,
    tune_thresholds,
)
from .resampling import draw_counts, per_label_samples
from .results import BOOTSTRAP_NPZ, METRICS_JSON, Run, load_run, read_metrics, read_predictions

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
# the macro metrics with bootstrap samples, and the per-label samples each is the mean of (lower is better for
# the last two: LOWER_IS_BETTER)
MACRO_OF_LABEL_SAMPLES = {"macro_roc_auc": "roc_auc", "map": "ap", "macro_ece": "ece", "brier": "brier"}
LOWER_IS_BETTER = ("macro_ece", "brier")
BIASED_UNDER_RESAMPLING = ("macro_ece",)  # its intervals are shifted by the bootstrap's estimate of the bias


def dataset_of(run: Run, dataset: Dataset | None = None) -> Dataset:
    """The run's dataset (or the one given), refusing a dataset whose content differs from the run's."""
    recorded = run.info["dataset"]
    if dataset is None:
        path = Path(recorded.get("path", ""))
        if not path.is_dir():
            raise RunError(f"{run.path / 'run.json'}: dataset folder {path} not found; pass --dataset DIR")
        dataset = load_dataset(path, require_train_positives=False)
    if recorded.get("fingerprint") != dataset.fingerprint:
        raise RunError(
            f"{run.path}: was made on dataset fingerprint {recorded.get('fingerprint')}, but {dataset.root} has "
            f"{dataset.fingerprint}; evaluate it on the dataset it was trained on"
        )
    return dataset


def aligned_scores(run: Run, dataset: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(targets, scores) for a split, rows in dataset order."""
    table = read_predictions(run, dataset)
    rows = dataset.rows(split)
    scores = (
        table[table["split"] == split].set_index("image").loc[rows["image"], dataset.labels].to_numpy(dtype=np.float64)
    )
    return dataset.targets(split), scores


def evaluate_run(run_dir: Path | str, dataset: Dataset | None = None) -> dict:
    """Tune thresholds on valid, apply them to test, write metrics.json (and the per-label bootstrap samples,
    bootstrap.npz) and return the metrics."""
    run = load_run(run_dir)
    metrics, samples = compute_metrics(run, dataset, with_samples=True)
    write_bootstrap_samples(run, samples, metrics["bootstrap"])
    atomic_write_json(run.path / METRICS_JSON, metrics)
    return metrics


def bootstrap_per_label(targets: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Each label's ROC-AUC, AP, ECE and Brier score on every resampled test split: (resamples, labels), NaN where
    undefined. The macro values of a resample are their means over the labels defined in it."""
    counts = draw_counts(len(targets), BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
    return {**per_label_samples(targets, scores, counts), **per_label_calibration(targets, scores, counts)}


def write_bootstrap_samples(run: Run, samples: dict[str, np.ndarray], settings: dict) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            np.savez(
                out,
                resamples=settings["resamples"],
                seed=settings["seed"],
                **{name: values.astype(np.float32) for name, values in samples.items()},
            )

    atomic_write(run.path / BOOTSTRAP_NPZ, write)


def metrics_of(run: Run) -> dict | None:
    """metrics.json, or — when it is missing, damaged or from an evaluator that did not score calibration yet, on a
    finished run — the evaluator's result computed in memory (it is derived data); nothing is written, so a
    read-only deployment works. None: not evaluable."""
    try:
        metrics = read_metrics(run)
    except RunError:
        metrics = None
    if run.status == "done" and (metrics is None or "macro_ece" not in metrics.get("overall", {})):
        return compute_metrics(run)  # missing, damaged, or written before calibration was scored
    return metrics


def contamination_note(run: Run) -> str | None:
    """Thresholds are tuned on valid: a run whose model trained on valid images has them tuned on its own training
    data (over-confident, so its F1 / precision / recall on test mislead). Said wherever the run appears."""
    trained_on = list(run.params.get("trained_on_splits") or [])
    if not trained_on and "train + valid" in str(run.params.get("trained_on", "")):  # TM replicas made before 0.4
        trained_on = ["train", "valid"]
    if "valid" in trained_on:
        return (
            f"trained on {' + '.join(trained_on)}: its thresholds were tuned on images it trained on, so its F1, "
            "precision and recall at them are not comparable (AUC and AP do not use thresholds)"
        )
    return None


def compute_metrics(run: Run, dataset: Dataset | None = None, with_samples: bool = False):
    """What metrics.json holds, computed without writing it (read-only deployments derive it in memory); with
    ``with_samples``, also the per-label bootstrap samples: ``(metrics, samples)``."""
    dataset = dataset_of(run, dataset)
    labels = dataset.labels
    valid_targets, valid_scores = aligned_scores(run, dataset, "valid")
    test_targets, test_scores = aligned_scores(run, dataset, "test")
    thresholds, threshold_notes = tune_thresholds(valid_targets, valid_scores)

    samples = bootstrap_per_label(test_targets, test_scores)
    macro_samples = {metric: macro_of(samples[name]) for metric, name in MACRO_OF_LABEL_SAMPLES.items()}
    calibration = per_label_calibration(test_targets, test_scores, np.ones(len(test_targets)))
    summary = overall(test_targets, test_scores, thresholds)
    summary["macro_ece"] = float(calibration["ece"].mean())
    summary["brier"] = float(calibration["brier"].mean())
    for metric, values in macro_samples.items():
        summary[f"{metric}_ci"] = confidence_interval(values)
    # ECE of a resample is biased upward (drawn duplicates make each bin's gap noisier): its percentile interval
    # would sit above the estimate, so the interval is shifted by the bootstrap's own estimate of that bias
    for metric in BIASED_UNDER_RESAMPLING:
        bias = float(np.nanmean(macro_samples[metric])) - summary[metric]
        summary[f"{metric}_ci"] = confidence_interval(macro_samples[metric] - bias)
    per = per_label(test_targets, test_scores, thresholds, labels)
    for j, label in enumerate(labels):
        per[label].update(ece=float(calibration["ece"][0, j]), brier=float(calibration["brier"][0, j]))
    for label, note in zip(labels, threshold_notes):
        if note:
            per[label]["threshold_note"] = note
    metrics = {
        "run_id": run.run_id,
        "dataset_fingerprint": dataset.fingerprint,
        "split": "test",
        "thresholds_tuned_on": "valid",
        "threshold_contamination": contamination_note(run),
        "n_test_images": int(len(test_targets)),
        "overall": summary,
        "per_label": per,
        "thresholds": dict(zip(labels, map(float, thresholds))),
        "valid": {"macro_roc_auc": macro_auc(valid_targets, valid_scores), "map": mean_ap(valid_targets, valid_scores)},
        "curves": curves(test_targets, test_scores, labels),
        "calibration": {
            "bins": BINS,
            "binning": "equal-mass: per label, the test scores' deciles (scikit-learn's calibration_curve, quantile)",
            "reliability": reliability_curves(test_targets, test_scores, labels),
        },
        "bootstrap": {
            "resamples": BOOTSTRAP_RESAMPLES,
            "seed": BOOTSTRAP_SEED,
            "level": 0.95,
            # kept so seed groups and paired comparisons reuse them: every run on a dataset draws the same
            # resampled test images (same seed, same count), so run A's sample b and run B's sample b are paired
            "samples": {metric: _rounded(values) for metric, values in macro_samples.items()},
        },
    }
    return (metrics, samples) if with_samples else metrics


def _rounded(samples: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 6) for v in samples]
