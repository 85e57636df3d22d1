"""Keep-best's rule: an epoch replaces the starting model only where its valid gain survives the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.metrics import macro_auc
from benchmarks.evaluation.resampling import paired_macro_auc_gain
from benchmarks.training.keep_best import KEEP_BEST_RESAMPLES, KeepBest, kept_the_start
from fastai_model.config import make_config


class FakeRun:
    def __init__(self):
        self.info = {}

    def update(self, **fields):
        self.info.update(fields)


@pytest.fixture
def valid():
    """200 valid images, 5 labels; a start that ranks them moderately well."""
    rng = np.random.default_rng(0)
    targets = (rng.random((200, 5)) < 0.3).astype(int)
    start = targets + rng.normal(0, 1.0, targets.shape)
    return rng, targets, start


def test_a_gain_within_the_noise_keeps_the_start_and_says_why(valid, capsys):
    rng, targets, start = valid
    rule = KeepBest(targets, start, confidence=0.95, start="the start")
    wobble = start + rng.normal(0, 0.05, start.shape)  # the same model, give or take: any gain is noise
    assert not rule.offer(targets, wobble, "unfrozen epoch 0")
    run = FakeRun()
    rule.record(run)
    kept = run.info["kept"]
    assert kept["from"] == "the start" and kept["start_valid_macro_auc"] == kept["valid_macro_auc"]
    assert kept["epochs"][0]["from"] == "unfrozen epoch 0" and kept["epochs"][0]["share_ahead_of_start"] < 0.95
    # ahead on the full valid set, but not in 95% of resamples: the output says how far ahead it had to be
    paired = paired_macro_auc_gain(targets, wobble, start, resamples=KEEP_BEST_RESAMPLES)
    assert paired.gain > 0 and kept["epochs"][0]["lead_needed"] == round(1.6449 * paired.spread, 4)
    out = capsys.readouterr().out
    assert "the run ends where it started, the start" in out
    assert f"95% needed: a lead of about +{kept['epochs'][0]['lead_needed']:.3f} on these images)" in out


def test_a_clear_gain_is_kept_and_the_best_trusted_epoch_wins(valid):
    rng, targets, start = valid
    rule = KeepBest(targets, start, confidence=0.95, start="the start")
    better = targets + rng.normal(0, 0.5, targets.shape)
    best = targets + rng.normal(0, 0.3, targets.shape)
    assert rule.offer(targets, better, "unfrozen epoch 0")
    assert rule.offer(targets, best, "unfrozen epoch 1")
    assert not rule.offer(targets, better, "unfrozen epoch 2")  # trusted over the start, but not the best
    run = FakeRun()
    rule.record(run)
    assert run.info["kept"]["from"] == "unfrozen epoch 1"
    assert run.info["kept"]["valid_macro_auc"] > run.info["kept"]["start_valid_macro_auc"] + 0.1
    assert [e["share_ahead_of_start"] for e in run.info["kept"]["epochs"]] == [1.0, 1.0, 1.0]


def test_the_run_says_after_each_epoch_what_it_would_end_on(valid):
    """What a tuning study's pruner reads: the start's score until an epoch beats it beyond the noise, written
    before the first epoch so the history is never ahead of it."""
    rng, targets, start = valid
    run = FakeRun()
    rule = KeepBest(targets, start, confidence=0.95, start="the start", run=run)
    assert run.info["keep_best_progress"]["ends_on"] == []
    rule.offer(targets, start + rng.normal(0, 2.0, start.shape), "unfrozen epoch 0")  # a dip
    rule.offer(targets, targets + rng.normal(0, 0.5, targets.shape), "unfrozen epoch 1")  # a clear gain
    rule.offer(targets, start, "unfrozen epoch 2")  # back where it started: the gain is still kept
    ends_on = run.info["keep_best_progress"]["ends_on"]
    start_auc = run.info["keep_best_progress"]["start_valid_macro_auc"]
    assert ends_on[0] == start_auc and ends_on[1] > start_auc + 0.1 and ends_on[2] == ends_on[1]


def test_under_wise_ft_the_epochs_are_only_recorded_and_the_blend_is_judged(valid):
    """The run ends on a blend of its start and its last epoch: keep-best saves no epoch, the pruner sees each
    epoch's score where it beats the start beyond the noise (the start's otherwise) as the blend's stand-in, and the
    blend stays only if it beats the start beyond the noise."""
    rng, targets, start = valid
    clear = targets + rng.normal(0, 0.5, targets.shape)
    for blend, stays in ((clear, True), (start + rng.normal(0, 0.05, start.shape), False)):
        run = FakeRun()
        rule = KeepBest(targets, start, confidence=0.95, start="the start", run=run, wise_ft=0.5)
        assert not rule.offer(targets, clear, "unfrozen epoch 0")  # a clear gain, but the weights stay as trained
        assert not rule.offer(targets, start + rng.normal(0, 2.0, start.shape), "unfrozen epoch 1")  # a dip
        start_auc = run.info["keep_best_progress"]["start_valid_macro_auc"]
        assert run.info["keep_best_progress"]["ends_on"] == [round(macro_auc(targets, clear), 5), start_auc]
        assert rule.judge_blend(targets, blend) is stays
        rule.record(run)
        kept = run.info["kept"]
        assert kept_the_start(kept) is not stays and "wise_ft_blend" in kept
        assert (
            kept["from"].startswith("the WiSE-FT blend (0.5 × the last epoch") if stays else kept["from"] == "the start"
        )


def test_confidence_zero_keeps_any_gain_and_a_worse_epoch_never_replaces_the_start(valid):
    rng, targets, start = valid
    worse = start + rng.normal(0, 2.0, start.shape)
    slightly = start.copy()
    slightly[targets[:, 0] == 1, 0] += 0.05  # label 0's positives nudged up: a small, real gain
    assert not KeepBest(targets, start, confidence=0.0, start="s").offer(targets, worse, "e0")
    assert KeepBest(targets, start, confidence=0.0, start="s").offer(targets, slightly, "e0")


def test_valid_images_in_another_order_are_judged_on_the_point_value(valid):
    """fastai's data-parallel validation gathers the images per batch across processes: no pairing then."""
    rng, targets, start = valid
    order = rng.permutation(len(targets))
    rule = KeepBest(targets, start, confidence=0.95, start="s")
    assert rule.offer(targets[order], (targets + rng.normal(0, 0.5, targets.shape))[order], "e0")
    assert rule.epochs[0]["share_ahead_of_start"] is None


def test_confidence_out_of_range_is_refused_in_one_line():
    with pytest.raises(BenchmarkError, match="--keep-best-confidence 1.0"):
        make_config("quick", keep_best_confidence=1.0)
