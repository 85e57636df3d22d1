"""``python -m keras_model.soup``: a greedy soup of Keras runs (benchmarks/training/soup.py), their weights averaged
with Keras' own get_weights / set_weights and saved as the usual ``model.keras``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from benchmarks.training.soup import SoupKit, soup_main

from .serving import KerasPredictor, save_serving_artifact


def weights(predictor: KerasPredictor) -> list[np.ndarray]:
    return predictor.model.get_weights()


def set_weights(predictor: KerasPredictor, arrays: list[np.ndarray]) -> None:
    predictor.model.set_weights(arrays)


def save(predictor: KerasPredictor, run_dir: Path) -> Path:
    backbone, backend = predictor.config["backbone"], predictor.config.get("trained_on_backend", "tensorflow")
    return save_serving_artifact(predictor.model, run_dir, backbone, predictor.labels, predictor.img_size, backend)


KIT = SoupKit("keras", weights, set_weights, save)

if __name__ == "__main__":
    sys.exit(soup_main(KIT))
