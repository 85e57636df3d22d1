"""The one scoring path: thresholds from the evaluator (0.5 when not evaluated), labels over them, timed calls."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.errors import RunError
from benchmarks.evaluation.evaluate import evaluate_run
from benchmarks.evaluation.results import load_run
from benchmarks.models.baselines import run_prior
from benchmarks.models.registry import Predictor
from benchmarks.serving.scoring import UNTUNED_THRESHOLD, score, thresholds_of


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
    from benchmarks.serving.scoring import Thresholds

    prediction = score(predictor, images, Thresholds({"cat": 0.5, "dog": 0.05}, True), repeats=4)
    assert predictor.calls == 4 and prediction.scores.shape == (3, 2) and prediction.latency_ms >= 0
    assert prediction.predicted(0) == ["cat", "dog"] and prediction.label_scores(2) == {"cat": 0.9, "dog": 0.1}


class CountingPredictor(FixedPredictor):
    def __init__(self):
        super().__init__()
        self.batch_sizes = []

    def predict(self, images):
        self.batch_sizes.append(len(images))
        return super().predict(images)


def test_latency_protocol_warms_up_then_times_batch_1_and_batch_32():
    from benchmarks.serving.measure import measure_predictor

    predictor = CountingPredictor()
    record = measure_predictor(predictor, [Image.new("RGB", (8, 8))] * 3, repeats=8, warmup=2)
    assert predictor.batch_sizes == [1] * (2 + 8) + [32] * (1 + 3)  # warm-ups, timed singles, batch warm-up, batches
    assert record["batch_1"]["calls"] == 8 and record["batch_32"]["calls"] == 3
    assert 0 <= record["batch_1"]["p50_ms"] <= record["batch_1"]["p95_ms"]
    assert record["batch_32"]["images_per_s"] > 0


def test_measure_records_every_run_and_says_why_a_run_has_no_latency(tmp_path, small_dataset, capsys):
    from benchmarks.cli import main
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.latency import NOT_MEASURED, latency_of
    from benchmarks.evaluation.leaderboard import format_table, leaderboard
    from benchmarks.models.baselines import run_linear_probe

    dataset = load_dataset(small_dataset)
    prior = run_prior(dataset, tmp_path)
    probe = run_linear_probe(dataset, tmp_path, img_size=64)
    assert latency_of(load_run(probe.path)) == (None, None, NOT_MEASURED)
    assert main(["measure", str(small_dataset), "--results", str(tmp_path), "--repeats", "2"]) == 0
    ms, per_s, note = latency_of(load_run(probe.path))
    assert ms > 0 and per_s > 0 and note == ""
    threads = load_run(probe.path).info["latency"]["threads"]
    assert threads["torch"] == threads["tensorflow_intra_op"] == threads["requested"]
    assert (
        latency_of(load_run(prior.path))[:2] == (None, None) and "nothing to run" in latency_of(load_run(prior.path))[2]
    )
    table = leaderboard(tmp_path, dataset)
    assert pd.isna(table.set_index("kind").loc["prior", "latency_ms"])  # "—" on every page, never 0
    assert "latency —: the prior scores every image the same" in format_table(table)
    capsys.readouterr()
    assert main(["measure", str(small_dataset), "--results", str(tmp_path), "--missing"]) == 0
    assert "every run already has its latency measured" in capsys.readouterr().out


@pytest.fixture
def probe_run(tiny_scenes, tmp_path):
    """In a folder of its own: the shared results folder is what test_api counts models in."""
    from benchmarks.data.dataset import load_dataset
    from benchmarks.models.baselines import run_linear_probe

    return run_linear_probe(load_dataset(tiny_scenes), tmp_path, img_size=64)


@pytest.mark.parametrize("fixture", ["fastai_run", "keras_run", "replica_run", "probe_run"])
def test_served_model_is_the_scored_model_for_every_trained_kind(request, tiny_scenes, fixture):
    """Whatever the kind, the predictor the API / dashboard / tools.predict load (through the registry)
    reproduces the scores the evaluator scored, on every test image. (Exports: tests/test_cloud_baselines.py.)"""
    from benchmarks.data.images import open_rgb
    from benchmarks.serving.predictors import load_predictor

    run = request.getfixturevalue(fixture)
    written = pd.read_csv(run.path / "predictions.csv")
    test = written[written["split"] == "test"].set_index("image")
    served = load_predictor(run.path).predict([open_rgb(tiny_scenes / rel) for rel in test.index])
    np.testing.assert_allclose(served, test[load_run(run.path).labels].to_numpy(float), atol=1e-4)
