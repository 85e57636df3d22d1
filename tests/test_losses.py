"""The multi-label losses both trainers offer: each against a value worked by hand, and fastai's equal to Keras'."""

import math

import numpy as np
import pytest

import benchmarks.models.torch_first  # noqa: F401  (PyTorch before TensorFlow)

LOGITS = np.array([[2.0, -1.0], [0.5, -3.0]], dtype=np.float32)
TARGETS = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def hand_bce():
    terms = [-math.log(sigmoid(2)), -math.log(1 - sigmoid(-1)), -math.log(1 - sigmoid(0.5)), -math.log(sigmoid(-3))]
    return sum(terms) / 4


def hand_focal(gamma=2.0):
    """-(1 - p_t)^γ log p_t, p_t the probability of the true answer."""
    p_t = [sigmoid(2), 1 - sigmoid(-1), 1 - sigmoid(0.5), sigmoid(-3)]
    return sum(-((1 - p) ** gamma) * math.log(p) for p in p_t) / 4


def hand_asl(gamma_neg=4.0, gamma_pos=1.0, clip=0.05):
    """Positives: -(1 - p)^γ+ log p. Negatives: p_m = max(p - m, 0), -(p_m)^γ- log(1 - p_m)."""
    positives = [sigmoid(2), sigmoid(-3)]
    negatives = [max(sigmoid(-1) - clip, 0), max(sigmoid(0.5) - clip, 0)]
    total = sum(-((1 - p) ** gamma_pos) * math.log(p) for p in positives)
    total += sum(-(p**gamma_neg) * math.log(1 - p) for p in negatives)
    return total / 4


def fastai_loss(kind, eps=0.0):
    import torch

    from fastai_model.learner import MultiLabelLossFlat

    return float(MultiLabelLossFlat(kind, eps)(torch.tensor(LOGITS), torch.tensor(TARGETS)))


def keras_loss(kind, eps=0.0):
    from keras_model.config import make_config
    from keras_model.model import loss_function

    probabilities = 1 / (1 + np.exp(-LOGITS))
    return float(loss_function(make_config(loss=kind, label_smoothing=eps))(TARGETS, probabilities))


@pytest.mark.parametrize("kind, expected", [("bce", hand_bce()), ("focal", hand_focal()), ("asl", hand_asl())])
def test_each_loss_matches_the_hand_computed_value_in_both_frameworks(kind, expected):
    assert fastai_loss(kind) == pytest.approx(expected, rel=1e-5)
    assert keras_loss(kind) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind", ["bce", "focal", "asl"])
def test_label_smoothing_is_the_same_in_both_frameworks(kind):
    assert fastai_loss(kind, 0.1) == pytest.approx(keras_loss(kind, 0.1), rel=1e-5)
    assert fastai_loss(kind, 0.1) != pytest.approx(fastai_loss(kind), rel=1e-3)


def test_an_unknown_loss_is_refused_in_one_line():
    from benchmarks.errors import BenchmarkError
    from fastai_model.config import make_config

    with pytest.raises(BenchmarkError, match="--loss 'hinge': choose one of bce, focal, asl"):
        make_config(loss="hinge")


def test_the_keras_asymmetric_loss_survives_a_save_and_load(tmp_path):
    import keras

    from keras_model.model import AsymmetricLoss

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="sigmoid")])
    model.compile(optimizer="adam", loss=AsymmetricLoss(gamma_neg=3.0))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.loss.gamma_neg == 3.0
