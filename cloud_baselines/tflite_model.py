"""Run an exported TFLite classifier (float or quantized) on PIL images, on the CPU."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.errors import BenchmarkError
from benchmarks.exports.image_prep import to_minus_one_one

EDGE_TPU_OP = b"edgetpu-custom-op"


class TFLiteClassifier:
    """Input handling read off the model: float input gets ``x/127.5 - 1``; uint8 input gets raw pixels, as
    TM's and AutoML's own snippets feed quantized models; quantized outputs are dequantised with the output
    tensor's own scale and zero point."""

    def __init__(self, path: Path, fit: Callable[[Image.Image, int], np.ndarray]):
        self.path, self.fit = Path(path), fit
        if not self.path.is_file():
            raise BenchmarkError(f"{self.path}: model file not found")
        content = self.path.read_bytes()
        if EDGE_TPU_OP in content:
            raise BenchmarkError(
                f"{self.path}: an Edge TPU model (it needs a Coral device and libedgetpu); evaluate the export's "
                "model.tflite or model_unquant.tflite instead"
            )
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (it still works in TF 2.21)
                self.interpreter = tf.lite.Interpreter(model_content=content)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BenchmarkError(
                f"{self.path}: not a readable TFLite model ({str(exc).splitlines()[0][:120]})"
            ) from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = self.input["shape"]
        if len(shape) != 4 or shape[-1] != 3:
            raise BenchmarkError(f"{self.path}: input shape {list(shape)} is not an RGB image batch [1, H, W, 3]")
        self.size = int(shape[1])
        self._batch: int | None = 1
        self._batchable = True
        self.n_classes = int(self.output["shape"][-1])
        if self.input["dtype"] not in (np.float32, np.uint8, np.int8):
            raise BenchmarkError(
                f"{self.path}: input type {np.dtype(self.input['dtype']).name} is not supported (float32, uint8, int8)"
            )

    def describe(self) -> dict:
        scale_in, zero_in = self.input["quantization"]
        scale_out, zero_out = self.output["quantization"]
        return {
            "format": "tflite",
            "file": self.path.name,
            "size_bytes": self.path.stat().st_size,
            "input_size": self.size,
            "input_dtype": np.dtype(self.input["dtype"]).name,
            "input_quantization": {"scale": scale_in, "zero_point": zero_in},
            "output_dtype": np.dtype(self.output["dtype"]).name,
            "output_quantization": {"scale": scale_out, "zero_point": zero_out},
        }

    def predict_batch(self, images: list[Image.Image]) -> np.ndarray:
        """One interpreter call for the whole batch: the exported input is [1, H, W, 3], so it is resized to
        [N, H, W, 3] (kept until another N comes); a model whose graph cannot take that goes one image per call."""
        x = np.stack([self._input_pixels(image) for image in images])
        if self._batchable and len(images) > 1:
            try:
                return self._invoke(x)
            except (RuntimeError, ValueError):
                self._batchable, self._batch = False, None  # e.g. a Reshape with the batch of 1 baked in
                self._resize(1)
        return np.concatenate([self._invoke(row[None]) for row in x])

    def predict(self, image: Image.Image) -> np.ndarray:
        return self.predict_batch([image])[0]

    def _input_pixels(self, image: Image.Image) -> np.ndarray:
        pixels = self.fit(image, self.size)
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return to_minus_one_one(pixels)
        if dtype == np.uint8:
            return pixels
        return (pixels.astype(np.int16) - 128).astype(np.int8)  # int8: the uint8 convention shifted by 128

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"], [batch, self.size, self.size, 3])
            self.interpreter.allocate_tensors()
            self._batch = batch

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self._resize(len(x))
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        scale, zero_point = self.output["quantization"]
        if self.output["dtype"] != np.float32 and scale:
            y = (y.astype(np.float32) - zero_point) * scale
        return y.astype(np.float32)
