"""The one scoring path: a predictor's scores turned into labels with the run's tuned thresholds, timed.

The API, the dashboard's Try page and ``python -m tools.predict`` all call :func:`score`, so a threshold, the
0.5 fallback for a run not evaluated yet, and what "latency" means are decided here once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from benchmarks.evaluation.results import Run, read_thresholds
from benchmarks.models.registry import Predictor

UNTUNED_THRESHOLD = 0.5


@dataclass(frozen=True)
class Thresholds:
    values: dict[str, float]
    tuned: bool  # False: the run has no metrics.json yet, so every label uses UNTUNED_THRESHOLD

    @property
    def note(self) -> str:
        return "tuned on valid" if self.tuned else f"run not evaluated yet: {UNTUNED_THRESHOLD} for every label"


def thresholds_of(run: Run) -> Thresholds:
    """The evaluator's thresholds (raises RunError when metrics.json is damaged), or 0.5 when not evaluated."""
    tuned = read_thresholds(run)
    return Thresholds(tuned, True) if tuned else untuned_thresholds(run)


def untuned_thresholds(run: Run) -> Thresholds:
    return Thresholds({label: UNTUNED_THRESHOLD for label in run.labels}, False)


@dataclass(frozen=True)
class Prediction:
    """Scores for a batch of images, the thresholds used, the labels over them, and the time per image."""

    labels: list[str]
    scores: np.ndarray  # (images, labels)
    thresholds: Thresholds
    latency_ms: float  # wall time of the predictor call divided by the number of images

    def label_scores(self, i: int) -> dict[str, float]:
        return {label: float(s) for label, s in zip(self.labels, self.scores[i])}

    def predicted(self, i: int) -> list[str]:
        return [label for label, s in zip(self.labels, self.scores[i]) if s >= self.thresholds.values[label]]


def score(predictor: Predictor, images: list, thresholds: Thresholds, repeats: int = 1) -> Prediction:
    """Score decoded PIL images with any predictor; preprocessing is inside the timed call. With ``repeats`` > 1
    the call is made that many times and the latency is their median (one call is at the mercy of the OS)."""
    timings = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        scores = np.asarray(predictor.predict(images), dtype=np.float64)
        timings.append((time.perf_counter() - start) * 1000 / max(len(images), 1))
    return Prediction(list(predictor.labels), scores, thresholds, float(np.median(timings)))
