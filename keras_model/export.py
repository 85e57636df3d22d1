"""A Keras run's model in exchange formats (``benchmarks.exports.exchange``), written by the shared Keras writer
(``benchmarks.exports.keras_formats``: SavedModel, TFLite, ONNX).

The exported graph is the run's model behind one Keras ``Rescaling`` layer that takes the exchange input
(``x / 127.5 - 1``) back to the 0..255 pixels the model normalises itself. A model trained under
``mixed_bfloat16`` (``--precision auto`` on a CPU with AMX) exports to SavedModel only: TFLite and ONNX cannot run
its bfloat16 ops, and a float32 copy would not give the scores the run was scored with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.exports.exchange import INPUT_NAME, OUTPUT_NAME
from benchmarks.exports.keras_formats import FORMATS, refuse_mixed_precision, write_keras_model

from .backbone import keras
from .serving import KerasPredictor, iter_layers

__all__ = ["FORMATS", "ROUND_TRIP", "exchange_pixels", "export_model"]
ROUND_TRIP = "vertex-eval"  # our reader whose square fit is this family's (tools.export --round-trip)
RESIZE = "shorter side resized to S with TensorFlow's antialiased bilinear resize, then the centre S x S square"


def exchange_pixels(predictor: KerasPredictor, images: list[Image.Image]) -> np.ndarray:
    return predictor.preprocess(images)  # 0..255 NHWC float32: the served model's own view


def exchange_model(predictor: KerasPredictor) -> keras.Model:
    size = predictor.img_size
    image = keras.Input((size, size, 3), dtype="float32", name=INPUT_NAME)
    pixels = keras.layers.Rescaling(127.5, offset=127.5, dtype="float32", name="to_pixels")(image)
    scores = keras.layers.Activation("linear", dtype="float32", name=OUTPUT_NAME)(predictor.model(pixels))
    return keras.Model(image, scores, name="exchange")


def export_model(predictor: KerasPredictor, fmt: str, out_dir: Path) -> dict:
    refuse_mixed_precision({layer.dtype_policy.name for layer in iter_layers(predictor.model)}, fmt)
    converter = write_keras_model(exchange_model(predictor), fmt, out_dir)
    return {"converter": converter, "resize": RESIZE, "size": predictor.img_size}
