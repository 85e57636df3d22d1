"""The vectorised bootstrap gives, resample for resample, what scikit-learn gives on the drawn images."""

import numpy as np
import pytest

from benchmarks.evaluation import evaluate
from benchmarks.evaluation.metrics import confidence_interval, macro_auc
from benchmarks.evaluation.resampling import (
    draw_counts,
    lead_needed,
    paired_macro_auc_gain,
    per_label_samples,
    per_label_samples_by_resample,
)
from benchmarks.evaluation.results import load_run


def assert_identical(targets, scores, resamples=300, seed=0):
    want = per_label_samples_by_resample(targets, scores, resamples, seed)
    got = per_label_samples(targets, scores, draw_counts(len(targets), resamples, seed))
    for name in ("roc_auc", "ap"):
        assert np.array_equal(np.isnan(got[name]), np.isnan(want[name])), name
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-12, err_msg=name)


def test_identical_to_scikit_learn_on_a_trained_run(fastai_run):
    """A real model's test predictions (the session's tiny fastai run), all 1,000 resamples the evaluator draws."""
    run = load_run(fastai_run.path)
    targets, scores = evaluate.aligned_scores(run, evaluate.dataset_of(run), "test")
    assert_identical(targets, scores, evaluate.BOOTSTRAP_RESAMPLES, evaluate.BOOTSTRAP_SEED)


def test_identical_with_ties_rare_labels_and_undefined_resamples():
    """Coarse scores (many ties, within and across classes), a label with 2 positives (undefined in many
    resamples), a constant scorer, and float32 scores."""
    rng = np.random.default_rng(3)
    targets = (rng.random((60, 4)) < [0.4, 0.2, 0.5, 0.5]).astype(int)
    targets[:, 1] = 0
    targets[[5, 40], 1] = 1
    scores = np.round(targets * 0.3 + rng.random((60, 4)) * 0.7, 1)
    scores[:, 2] = 0.5
    assert_identical(targets, scores.astype(np.float32), resamples=400, seed=7)


def test_the_evaluators_intervals_bracket_the_estimate_and_are_seeded():
    rng = np.random.default_rng(0)
    targets = (rng.random((200, 3)) < 0.3).astype(int)
    scores = np.clip(targets * 0.3 + rng.random((200, 3)) * 0.7, 0, 1)
    samples = evaluate.bootstrap_per_label(targets, scores)
    assert np.array_equal(samples["roc_auc"], evaluate.bootstrap_per_label(targets, scores)["roc_auc"])
    low, high = confidence_interval(np.nanmean(samples["roc_auc"], axis=1))
    assert low < macro_auc(targets, scores) < high
    assert confidence_interval(np.array([np.nan])) is None


def test_paired_gain_counts_the_resamples_where_the_better_model_leads():
    rng = np.random.default_rng(1)
    targets = (rng.random((150, 3)) < 0.4).astype(int)
    noise = rng.random((150, 3))
    strong, weak = targets * 0.6 + noise * 0.4, targets * 0.1 + noise * 0.9
    gain, share, spread = paired_macro_auc_gain(targets, strong, weak)
    assert gain == pytest.approx(macro_auc(targets, strong) - macro_auc(targets, weak)) and gain > 0.2
    assert share == 1.0 and 0 < spread < gain / 3  # ahead in every resample: the gain is many spreads wide
    itself = paired_macro_auc_gain(targets, strong, strong)
    assert itself.share_ahead == 0.0 and itself.spread == 0.0  # never strictly ahead of itself, never apart


def test_the_lead_needed_is_the_one_sided_quantile_times_the_paired_spread():
    assert lead_needed(0.01, 0.95) == pytest.approx(0.016449, rel=1e-4)
    assert lead_needed(0.01, 0.99) == pytest.approx(0.023263, rel=1e-4)
    assert lead_needed(0.0, 0.95) is None  # the two models never differ
    assert lead_needed(0.01, 0.0) is None and lead_needed(0.01, 0.5) is None  # no confidence asked beyond a lead


def test_a_share_just_below_the_bar_never_reads_as_the_bar():
    from benchmarks.evaluation.resampling import share_text

    assert share_text(0.795, 0.8) == "79.5%"  # keep-best refused it: "80% of resamples, 80% needed" would not say why
    assert share_text(0.78, 0.8) == "78%" and share_text(0.80, 0.8) == "80%" and share_text(0.955, 0.95) == "96%"
