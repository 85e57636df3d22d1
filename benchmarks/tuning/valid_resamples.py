"""Each trial's valid macro AUC on every resample of the valid images, so the tuning curve's bands and verdicts see
how little a small valid split can tell two trials apart, not only which trials happened to run.

Every trial of every family on a dataset is scored on the same resampled images (one draw: the band seed and the
valid split's size), so family A's resample b and family B's resample b hold the same images and their difference
is paired. A trial whose run kept no predictions (a pruned trial, a deleted or damaged run folder) repeats its
recorded score on every resample: it adds no valid-image noise, which the page says by counting the trials that do.
A cross-validated trial's score is the mean over its folds, each fold's valid images resampled (fold i is the same
images for every family of the same seed, so the pairing holds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.data.dataset import Dataset
from benchmarks.data.paths import inside
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.evaluate import aligned_scores, dataset_of
from benchmarks.evaluation.metrics import macro_of
from benchmarks.evaluation.resampling import draw_counts, per_label_samples
from benchmarks.evaluation.results import load_run

from .curves import BAND_SEED


class ValidResampler:
    """Scores trials on resampled valid images; one per page or command, so each dataset is loaded once."""

    def __init__(self, resamples: int, dataset: Dataset | None = None):
        self.resamples = resamples
        self.datasets = {dataset.fingerprint: dataset} if dataset is not None else {}

    def samples(self, study_dir: Path, trials: list[dict]) -> tuple[np.ndarray, int]:
        """(resamples, trials) valid macro AUC, one column per trial in order, and how many columns come from the
        trial's predictions (the rest repeat the recorded score)."""
        columns, resampled = [], 0
        for trial in trials:
            values = self.trial_samples(study_dir, trial)
            resampled += values is not None
            columns.append(values if values is not None else np.full(self.resamples, float(trial["valid"])))
        return np.stack(columns, axis=1), resampled

    def trial_samples(self, study_dir: Path, trial: dict) -> np.ndarray | None:
        """One trial's valid macro AUC on every resample; None where it kept no predictions to rescore."""
        names = trial.get("runs") or ([trial["run"]] if trial.get("run") else [])
        if trial.get("state") != "complete" or not names:
            return None
        per_run = []
        for name in names:  # a cross-validated trial: every fold's run, each on its own valid images
            try:
                run = load_run(inside(study_dir / "trials", name, f"{study_dir / 'study.json'}: trial run"))
                targets, scores = aligned_scores(run, self._dataset(run), "valid")
            except (BenchmarkError, OSError, KeyError, ValueError, TypeError):
                return None
            counts = draw_counts(len(targets), self.resamples, BAND_SEED)
            per_run.append(macro_of(per_label_samples(targets, scores, counts)["roc_auc"]))
        values = np.nanmean(np.stack(per_run), axis=0) if len(per_run) > 1 else per_run[0]
        return np.where(np.isfinite(values), values, float(trial["valid"]))

    def _dataset(self, run) -> Dataset:
        fingerprint = run.info.get("dataset", {}).get("fingerprint")
        if fingerprint not in self.datasets:
            self.datasets[fingerprint] = dataset_of(run)
        return self.datasets[fingerprint]
