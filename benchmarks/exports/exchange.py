"""The contract every model ``python -m tools.export`` writes keeps, and the runtimes that read each format back.

Input: float32 ``[N, S, S, 3]``, RGB pixels scaled ``x / 127.5 - 1`` — the float convention of Teachable Machine's
and AutoML's exports, so our own readers (``tm-eval``, ``vertex-eval``) read ours like theirs — after the image is
brought to an ``S``-pixel square the way the run's served model does it (export.json says how). Output: float32
``[N, labels]``, the sigmoid score of each label in labels.txt order. Normalisation and the sigmoid are inside
the exported graph; resizing is not (every consumer has its own image library).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

INPUT_NAME, OUTPUT_NAME = "image", "scores"
INPUT_RANGE = "RGB x / 127.5 - 1 (Teachable Machine's and AutoML's float convention)"
FLOAT_TOLERANCE = 1e-4  # max |score difference| from the served model on the test images, for float formats


def to_exchange(pixels: np.ndarray) -> np.ndarray:
    """Pixels 0..255 (NHWC) as the exported models take them."""
    return (np.asarray(pixels, dtype=np.float32) / 127.5 - 1.0).astype(np.float32)


class ExportedModel:
    """Scores from an exported file through its format's own runtime: ONNX Runtime, TensorFlow's SavedModel loader,
    or the TFLite interpreter — what a user of the export would run."""

    def __init__(self, fmt: str, path: Path):
        self.fmt, self.path = fmt, Path(path)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if fmt == "onnx":
            import onnxruntime

            self._session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        elif fmt == "savedmodel":
            import tensorflow as tf

            self._serve = tf.saved_model.load(str(self.path)).signatures["serving_default"]
        elif fmt == "tflite":
            import tensorflow as tf

            self._interpreter = tf.lite.Interpreter(model_path=str(self.path))
            self._batch = None
        else:
            raise ValueError(f"no runtime for {fmt}")

    def scores(self, x: np.ndarray) -> np.ndarray:
        if self.fmt == "onnx":
            return self._session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        if self.fmt == "savedmodel":
            import tensorflow as tf

            return next(iter(self._serve(tf.constant(x)).values())).numpy()
        return self._tflite(x)

    def _tflite(self, x: np.ndarray) -> np.ndarray:
        interpreter = self._interpreter
        source = interpreter.get_input_details()[0]
        if self._batch != len(x):
            interpreter.resize_tensor_input(source["index"], list(x.shape))
            interpreter.allocate_tensors()
            self._batch = len(x)
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
