import numpy as np
import pytest

from benchmarks.evaluation.metrics import (
    macro_auc,
    mean_ap,
    overall,
    per_label,
    tune_thresholds,
)


def test_auc_ap_f1_match_a_hand_computed_case():
    targets = np.array([[1], [0], [1], [0]])
    scores = np.array([[0.9], [0.8], [0.4], [0.1]])
    # positive/negative pairs: (0.9>0.8) (0.9>0.1) (0.4<0.8) (0.4>0.1) -> 3/4
    assert macro_auc(targets, scores) == pytest.approx(0.75)
    # ranks: 0.9 (P: prec 1, rec .5), 0.8 (N), 0.4 (P: prec 2/3, rec 1) -> AP = .5*1 + .5*2/3
    assert mean_ap(targets, scores) == pytest.approx(0.5 + 1 / 3)
    table = per_label(targets, scores, np.array([0.5]), ["x"])["x"]
    # predicted 1 for 0.9 and 0.8: tp 1, fp 1, fn 1 -> precision .5, recall .5, F1 .5
    assert (table["tp"], table["fp"], table["fn"], table["tn"]) == (1, 1, 1, 1)
    assert table["f1"] == pytest.approx(0.5)


def test_threshold_is_the_max_f1_cut_on_the_split_given():
    targets = np.array([[1], [1], [0], [0], [1]])
    scores = np.array([[0.9], [0.7], [0.6], [0.2], [0.3]])
    thresholds, notes = tune_thresholds(targets, scores)
    # cut at 0.3 predicts 4 positives: tp 3, fp 1 -> F1 6/7, the best available
    assert thresholds[0] == pytest.approx(0.3) and notes == [None]


def test_a_threshold_tuned_where_the_model_cannot_rank_is_flagged():
    targets = np.array([[1, 1], [1, 1], [0, 0], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.8, 0.6], [0.2, 0.7], [0.1, 0.3]])  # label 2: AUC 0.25 on this split
    _, notes = tune_thresholds(targets, scores)
    assert notes[0] is None and "ROC-AUC on the tuning split is only 0.25" in notes[1]


def test_label_without_positives_gets_null_auc_with_a_reason():
    targets = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.1, 0.4], [0.8, 0.3], [0.3, 0.1]])
    table = per_label(targets, scores, np.array([0.5, 0.5]), ["a", "b"])
    assert table["b"]["roc_auc"] is None and "no positive" in table["b"]["note"]
    summary = overall(targets, scores, np.array([0.5, 0.5]))
    assert summary["macro_roc_auc"] == 1.0 and summary["labels_scored"] == 1
    assert not any(isinstance(v, float) and np.isnan(v) for v in summary.values())


def test_overall_metrics_on_a_small_case():
    targets = np.array([[1, 0], [0, 1], [1, 1]])
    scores = np.array([[0.9, 0.2], [0.3, 0.8], [0.7, 0.4]])
    summary = overall(targets, scores, np.array([0.5, 0.5]))
    # predictions [[1,0],[0,1],[1,0]]: one miss of 6 cells -> Hamming 1/6; 2 of 3 rows exact
    assert summary["hamming_loss"] == pytest.approx(1 / 6)
    assert summary["subset_accuracy"] == pytest.approx(2 / 3)
    assert summary["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 0 + 1))


def test_a_dataset_with_one_label_gets_every_overall_metric():
    """scikit-learn treats a one-column indicator as binary; per-sample F1 must still be defined and right."""
    from benchmarks.evaluation.metrics import overall

    targets = np.array([[1], [1], [0], [1]])
    scores = np.array([[0.9], [0.2], [0.1], [0.8]])
    summary = overall(targets, scores, np.array([0.5]))
    assert summary["samples_f1"] == pytest.approx(0.5)  # rows: hit, miss, (empty: 0), hit
    assert summary["micro_f1"] == pytest.approx(0.8) and summary["labels_total"] == 1


def test_label_confusion_counts_which_labels_a_model_mixes_up():
    from benchmarks.evaluation.metrics import label_confusion

    targets = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]])
    predicted = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0], [1, 0, 1]])
    mixed = label_confusion(targets, predicted)
    # image 0: a predicted b (and a missed); image 1: a predicted c; image 3: a and b predicted c, b missed
    assert mixed.tolist() == [[1, 1, 2], [0, 1, 1], [0, 0, 0]]
