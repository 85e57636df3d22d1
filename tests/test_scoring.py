"""The one scoring path: thresholds from the evaluator (0.5 when not evaluated), labels over them, timed calls."""

import numpy as np
import pytest
from PIL import Image

from benchmarks.errors import RunError
from benchmarks.evaluation.evaluate import evaluate_run
from benchmarks.evaluation.results import load_run
from benchmarks.models.baselines import run_prior
from benchmarks.models.registry import Predictor
from benchmarks.models.scoring import UNTUNED_THRESHOLD, score, thresholds_of


class FixedPredictor:
    """Scores one row per image: [0.9, 0.1] — what any family's predictor returns, shape-wise."""

    labels = ["cat", "dog"]

    def __init__(self):
        self.calls = 0

    def predict(self, images):
        self.calls += 1
        return np.tile([0.9, 0.1], (len(images), 1))


def test_fake_predictor_satisfies_the_protocol_every_family_implements():
    assert isinstance(FixedPredictor(), Predictor)


def test_untuned_run_uses_half_and_says_so_then_tuned_thresholds_after_evaluation(tmp_path, small_dataset):
    from benchmarks.data.dataset import load_dataset

    run = run_prior(load_dataset(small_dataset), tmp_path)
    untuned = thresholds_of(load_run(run.path))
    assert not untuned.tuned and set(untuned.values.values()) == {UNTUNED_THRESHOLD} and "not evaluated" in untuned.note
    evaluate_run(run.path)
    tuned = thresholds_of(load_run(run.path))
    assert tuned.tuned and tuned.note == "tuned on valid" and sorted(tuned.values) == ["cat", "dog"]
    (run.path / "metrics.json").write_text("{damaged")
    with pytest.raises(RunError, match="metrics.json: damaged"):
        thresholds_of(load_run(run.path))


def test_score_gives_labels_over_thresholds_and_the_median_latency_of_repeats():
    predictor = FixedPredictor()
    images = [Image.new("RGB", (8, 8))] * 3
    from benchmarks.models.scoring import Thresholds

    prediction = score(predictor, images, Thresholds({"cat": 0.5, "dog": 0.05}, True), repeats=4)
    assert predictor.calls == 4 and prediction.scores.shape == (3, 2) and prediction.latency_ms >= 0
    assert prediction.predicted(0) == ["cat", "dog"] and prediction.label_scores(2) == {"cat": 0.9, "dog": 0.1}
