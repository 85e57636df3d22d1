"""A TM replica in exchange formats, as Teachable Machine itself exports its models: TM's base and the run's head
as one Keras model, written by the shared Keras writer (``benchmarks.exports.keras_formats``).

Its input is already the exchange contract (TM's ``x / 127.5 - 1`` after TM's own square fit); its classes become
the run's labels inside the graph through a fixed 0/1 Dense layer (each label takes the one class mapped to it; the
``none`` class, mapped to no label, is dropped), so the export's output is a score per label like every other
export's. Softmax scores stay softmax scores: they share one unit between labels, as the served replica's do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.errors import BenchmarkError
from benchmarks.exports.exchange import INPUT_NAME, OUTPUT_NAME
from benchmarks.exports.image_prep import teachable_machine_fit
from benchmarks.exports.keras_formats import FORMATS, write_keras_model

from .serving import ReplicaPredictor

__all__ = ["FORMATS", "ROUND_TRIP", "exchange_pixels", "export_model"]
ROUND_TRIP = "tm-eval"  # our reader whose square fit is this family's (tools.export --round-trip)
RESIZE = "Teachable Machine's: ImageOps.fit to S x S with LANCZOS (cover, then centre-crop)"


def exchange_pixels(predictor: ReplicaPredictor, images: list[Image.Image]) -> np.ndarray:
    size = predictor.classifier.size
    return np.stack([teachable_machine_fit(image.convert("RGB"), size) for image in images]).astype(np.float32)


def selection_matrix(predictor: ReplicaPredictor) -> np.ndarray:
    """(classes, labels): 1 where a class feeds a label; refused where a label has several classes (its score would
    be their maximum, which a linear layer cannot take)."""
    mapping = predictor.mapping
    matrix = np.zeros((len(mapping.classes), len(predictor.labels)), dtype=np.float32)
    for i, target in enumerate(mapping.targets):
        if target is not None:
            matrix[i, predictor.labels.index(target)] = 1.0
    if (matrix.sum(axis=0) > 1).any():
        raise BenchmarkError("a label of this run takes the highest of several classes; it has no linear export")
    return matrix


def export_model(predictor: ReplicaPredictor, fmt: str, out_dir: Path) -> dict:
    import keras

    classifier = predictor.classifier
    size = classifier.size
    image = keras.Input((size, size, 3), dtype="float32", name=INPUT_NAME)
    to_labels = keras.layers.Dense(len(predictor.labels), use_bias=False, trainable=False, name=OUTPUT_NAME)
    model = keras.Model(image, to_labels(classifier.model(image)), name="exchange")
    to_labels.set_weights([selection_matrix(predictor)])
    return {"converter": write_keras_model(model, fmt, out_dir), "resize": RESIZE, "size": size}
