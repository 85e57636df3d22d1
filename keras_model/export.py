"""A Keras run's model in exchange formats (``benchmarks.exports.exchange``), through Keras' and TensorFlow's own
converters: ``Model.export`` (a TensorFlow SavedModel), ``tf.lite.TFLiteConverter`` and tf2onnx's command.

The exported graph is the run's model behind one Keras ``Rescaling`` layer that takes the exchange input
(``x / 127.5 - 1``) back to the 0..255 pixels the model normalises itself. A model trained under
``mixed_bfloat16`` (``--precision auto`` on a CPU with AMX) exports to SavedModel only: TFLite and ONNX cannot run
its bfloat16 ops, and a float32 copy would not give the scores the run was scored with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.errors import BenchmarkError
from benchmarks.exports.exchange import INPUT_NAME, OUTPUT_NAME

from .backbone import keras
from .serving import KerasPredictor, iter_layers

FORMATS = {"savedmodel": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
RESIZE = "shorter side resized to S with TensorFlow's antialiased bilinear resize, then the centre S x S square"
NEEDS_FLOAT32 = ("tflite", "onnx")
ONNX_OPSET = 17


def exchange_pixels(predictor: KerasPredictor, images: list[Image.Image]) -> np.ndarray:
    return predictor.preprocess(images)  # 0..255 NHWC float32: the served model's own view


def exchange_model(predictor: KerasPredictor) -> keras.Model:
    size = predictor.img_size
    image = keras.Input((size, size, 3), dtype="float32", name=INPUT_NAME)
    pixels = keras.layers.Rescaling(127.5, offset=127.5, dtype="float32", name="to_pixels")(image)
    scores = keras.layers.Activation("linear", dtype="float32", name=OUTPUT_NAME)(predictor.model(pixels))
    return keras.Model(image, scores, name="exchange")


def export_model(predictor: KerasPredictor, fmt: str, out_dir: Path) -> dict:
    mixed = sorted({layer.dtype_policy.name for layer in iter_layers(predictor.model)} - {"float32"})
    if fmt in NEEDS_FLOAT32 and mixed:
        raise BenchmarkError(
            f"this run was trained under {', '.join(mixed)}, whose bfloat16 ops {fmt} cannot run (a float32 copy "
            "would not be the scored model): export savedmodel, or train with --precision fp32"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    model, target = exchange_model(predictor), out_dir / FORMATS[fmt]
    saved = target if fmt == "savedmodel" else out_dir / "saved_model.tmp"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    if fmt == "savedmodel":
        return {"converter": f"keras {keras.__version__} Model.export (tf_saved_model)", "resize": RESIZE}
    if fmt == "onnx":
        converter = _saved_model_to_onnx(saved, target)
        tf.io.gfile.rmtree(str(saved))
        return {"converter": f"keras {keras.__version__} Model.export, then {converter}", "resize": RESIZE}
    target.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    tf.io.gfile.rmtree(str(saved))
    return {"converter": f"tf.lite.TFLiteConverter (TensorFlow {tf.__version__}), float32", "resize": RESIZE}


def _saved_model_to_onnx(saved: Path, target: Path) -> str:
    """tf2onnx's own command on the SavedModel. (Keras' ``Model.export(format="onnx")`` hands tf2onnx the live
    function, whose captured Normalization constants then become missing graph inputs; from a SavedModel they are
    frozen into the graph.)"""
    import tf2onnx

    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved), "--output", str(target),
               "--opset", str(ONNX_OPSET), "--rename-inputs", INPUT_NAME, "--rename-outputs", OUTPUT_NAME]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BenchmarkError(f"tf2onnx could not convert the model: {last[:200]}")
    return f"tf2onnx {tf2onnx.__version__} (opset {ONNX_OPSET})"
