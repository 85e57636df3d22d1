"""Calibration: ECE (equal-mass bins) and Brier against hand-computed values, their bootstrap against a
resample-by-resample computation, and the verdicts where lower is better."""

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from benchmarks.evaluation.calibration import bin_ids, per_label_calibration, reliability_curves
from benchmarks.evaluation.evaluate import LOWER_IS_BETTER
from benchmarks.evaluation.groups import verdict
from benchmarks.evaluation.resampling import draw_counts

SCORES = np.arange(1, 11) / 10  # 0.1 ... 1.0: ten equal-mass bins of one image each
LABELS = np.array([0, 0, 0, 1, 0, 1, 1, 0, 1, 1])


def test_ece_and_brier_of_a_hand_computed_case():
    targets = np.column_stack([LABELS, (np.arange(10) < 3).astype(int)])
    scores = np.column_stack([SCORES, np.full(10, 0.3)])  # the second label: one score for every image
    got = per_label_calibration(targets, scores, np.ones(10))
    # one image per bin: ECE is the mean |label - score| = (.1+.2+.3+.6+.5+.4+.3+.8+.1+0)/10
    assert got["ece"][0, 0] == pytest.approx(0.33)
    assert got["brier"][0, 0] == pytest.approx((0.01 + 0.04 + 0.09 + 0.36 + 0.25 + 0.16 + 0.09 + 0.64 + 0.01) / 10)
    # one bin holding every image: 30% positives at score 0.3 is perfectly calibrated; Brier (3x.49 + 7x.09)/10
    assert got["ece"][0, 1] == pytest.approx(0.0) and got["brier"][0, 1] == pytest.approx(0.21)
    assert got["brier"][0, 0] == pytest.approx(brier_score_loss(LABELS, SCORES))


def test_the_reliability_diagram_and_the_ece_share_their_bins():
    rng = np.random.default_rng(2)
    targets = (rng.random((300, 2)) < 0.3).astype(int)
    scores = np.clip(targets * 0.4 + rng.random((300, 2)) * 0.6, 0, 1)
    ece = per_label_calibration(targets, scores, np.ones(300))["ece"][0]
    curves = reliability_curves(targets, scores, ["a", "b"])
    for j, label in enumerate(["a", "b"]):
        curve = curves[label]
        from_curve = sum(n / 300 * abs(o - p) for n, o, p in zip(curve["count"], curve["observed"], curve["predicted"]))
        assert from_curve == pytest.approx(ece[j], abs=1e-4)  # the curve's points are rounded to 5 decimals
        assert sum(curve["count"]) == 300 and max(curve["count"]) - min(curve["count"]) <= 1  # equal mass


def test_every_resample_is_scored_as_if_its_images_were_drawn_one_by_one():
    rng = np.random.default_rng(3)
    targets = (rng.random((80, 3)) < 0.4).astype(int)
    scores = np.round(np.clip(targets * 0.3 + rng.random((80, 3)) * 0.7, 0, 1), 2)
    counts = draw_counts(80, 50, 4)
    got = per_label_calibration(targets, scores, counts)
    indices = np.random.default_rng(4).integers(0, 80, (50, 80))
    for b, rows in enumerate(indices):
        for j in range(3):
            y, p, bins = targets[rows, j], scores[rows, j], bin_ids(scores[:, j])[rows]  # bins: the test split's
            want = sum(abs(y[bins == k].sum() - p[bins == k].sum()) for k in range(10)) / 80
            assert got["ece"][b, j] == pytest.approx(want, abs=1e-12)
            assert got["brier"][b, j] == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_lower_is_better_for_calibration_verdicts():
    assert set(LOWER_IS_BETTER) == {"macro_ece", "brier"}
    assert verdict([-0.02, -0.01], "A", "B", False, lower_is_better=True) == "A is better"
    assert verdict([0.01, 0.02], "A", "B", False, lower_is_better=True) == "B is better"
    assert verdict([0.01, 0.02], "A", "B", False) == "A is better"
    assert verdict([-0.01, 0.02], "A", "B", False, lower_is_better=True) == "no significant difference"


@pytest.fixture
def overconfident(tmp_path):
    """A run on 80 valid and 80 test images whose scores rank well but are pushed to 0 and 1 (overconfident)."""
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.evaluate import evaluate_run
    from benchmarks.evaluation.results import create_run
    from tests.conftest import make_dataset

    rows = [
        (f"images/{s}{i}.png", ["a", "b", "a b", ""][i % 4], s) for s in ("train", "valid", "test") for i in range(80)
    ]
    dataset = load_dataset(make_dataset(tmp_path / "ds", rows, ["a", "b"]))
    rng = np.random.default_rng(0)
    run = create_run(tmp_path / "r", kind="linear_probe", dataset=dataset, params={"seed": 0})
    images = dataset.rows(["valid", "test"])
    targets = dataset.targets(["valid", "test"])
    margin = (targets - 0.5) * 1.5 + rng.normal(0, 1.5, targets.shape)
    run.write_predictions(list(images["image"]), list(images["split"]), 1 / (1 + np.exp(-4 * margin)))
    run.finish()
    evaluate_run(run.path)
    return dataset, run


@pytest.mark.parametrize("method", ["platt", "temperature"])
def test_posthoc_calibration_is_a_new_run_fitted_on_valid_that_keeps_the_ranking(overconfident, method):
    from benchmarks.evaluation.posthoc import calibrate_run
    from benchmarks.evaluation.results import list_runs, read_metrics
    from benchmarks.serving.predictors import can_predict, why_no_model

    dataset, source = overconfident
    before = read_metrics(source)
    calibrated = calibrate_run(source.path, method)
    after = read_metrics(calibrated)
    assert len(list_runs(source.path.parent)) == 2 and read_metrics(source) == before  # the original is untouched
    # an increasing map keeps the ranking, but for scores it saturates at 0 or 1 in the stored precision (ties)
    assert after["overall"]["macro_roc_auc"] == pytest.approx(before["overall"]["macro_roc_auc"], abs=5e-3)
    assert after["overall"]["brier"] < before["overall"]["brier"]
    assert after["overall"]["macro_ece"] < before["overall"]["macro_ece"]
    assert calibrated.params["calibration"] == f"{method} on valid"
    assert calibrated.params["calibrated_from"] == source.run_id
    assert not can_predict(calibrated) and "calibrated copy" in why_no_model(calibrated)


def test_posthoc_calibration_never_reads_the_test_labels(overconfident, monkeypatch):
    from benchmarks.data.dataset import Dataset
    from benchmarks.evaluation.posthoc import calibrate_run

    dataset, source = overconfident
    targets = Dataset.targets

    def valid_only(self, splits=None):
        assert splits == "valid", f"calibration read the {splits} labels"
        return targets(self, splits)

    monkeypatch.setattr("benchmarks.evaluation.posthoc.evaluate_run", lambda *a, **k: None)  # scoring reads test
    monkeypatch.setattr(Dataset, "targets", valid_only)
    calibrate_run(source.path, "platt")
