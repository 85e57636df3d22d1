"""A Keras model behind the exchange contract written as SavedModel, TFLite or ONNX, through Keras' and
TensorFlow's own converters (``Model.export``, ``tf.lite.TFLiteConverter``) and tf2onnx's command: shared by every
family whose model is Keras (the Keras trainer, the TM replica)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.errors import BenchmarkError

from .exchange import INPUT_NAME, OUTPUT_NAME

FORMATS = {"savedmodel": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
NEEDS_FLOAT32 = ("tflite", "onnx")  # neither runs bfloat16 ops
ONNX_OPSET = 17


def refuse_mixed_precision(policies: set[str], fmt: str) -> None:
    """One line for a model trained under a mixed policy where the format cannot run it: a float32 copy would not
    give the scores the run was scored with."""
    mixed = sorted(policies - {"float32"})
    if fmt in NEEDS_FLOAT32 and mixed:
        raise BenchmarkError(
            f"this run was trained under {', '.join(mixed)}, whose bfloat16 ops {fmt} cannot run (a float32 copy "
            "would not be the scored model): export savedmodel, or train with --precision fp32"
        )


def write_keras_model(model, fmt: str, out_dir: Path) -> str:
    """Write ``model`` (already taking the exchange input) as ``FORMATS[fmt]`` in ``out_dir``; returns the
    converter's name and version for export.json."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    target = out_dir / FORMATS[fmt]
    saved = target if fmt == "savedmodel" else out_dir / "saved_model.tmp"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    if fmt == "savedmodel":
        return f"keras {keras.__version__} Model.export (tf_saved_model)"
    if fmt == "onnx":
        converter = _saved_model_to_onnx(saved, target)
        tf.io.gfile.rmtree(str(saved))
        return f"keras {keras.__version__} Model.export, then {converter}"
    target.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    tf.io.gfile.rmtree(str(saved))
    return f"tf.lite.TFLiteConverter (TensorFlow {tf.__version__}), float32"


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
