"""Teachable Machine's Keras (.h5) and TensorFlow.js (model.json) exports, rebuilt natively in Keras 3.

Why rebuilt: TM's h5 files were written by Keras 2.4 and ``keras.models.load_model`` fails on them under
Keras 3 (``DepthwiseConv2D`` ``groups``, then nested-Sequential input errors; see FORMATS.md §1). Both exports
hold the same network — ``keras.applications.MobileNetV2`` (width read off the weights) + global average
pooling + Dense(relu) + Dense(softmax) — so we build that and copy the tensors in by layer name. Inner group
names differ between exports, so nothing but the layer/variable names of MobileNetV2 itself is assumed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.errors import BenchmarkError

from .image_prep import teachable_machine_fit, teachable_machine_gray, to_minus_one_one
from .tfjs_layers import load_layers_model
from .tfjs_weights import read_manifest_weights, read_model_json

NONE_CLASS = "none"  # the class an image with no label is uploaded as
UPLOAD_SPLITS = ["train"]  # what a Teachable Machine project is trained on: never valid (thresholds) nor test

ALPHA_BY_LAST_CHANNELS = {112: 0.35, 160: 0.5, 240: 0.75, 320: 1.0, 416: 1.3, 448: 1.4}  # MobileNetV2 block_16 width
DEFAULT_SIZE = 224  # TM's IMAGE_SIZE when metadata.json has no imageSize


def read_h5_weights(path: Path) -> tuple[dict[str, np.ndarray], int]:
    """``{"<layer>/<variable>": array}`` from an h5 file's ``model_weights``, and the model's input size."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "model_weights" not in f:
                raise BenchmarkError(f"{path}: an HDF5 file without model_weights; is this TM's keras_model.h5?")
            weights: dict[str, np.ndarray] = {}

            def collect(name, obj):
                if isinstance(obj, h5py.Dataset):
                    parts = name.split("/")
                    weights["/".join(parts[-2:]).removesuffix(":0")] = obj[()]

            f["model_weights"].visititems(collect)
            config = f.attrs.get("model_config")
    except OSError as exc:
        raise BenchmarkError(
            f"{path}: not a readable HDF5 model ({str(exc).splitlines()[0][:100]}); re-download the export"
        ) from None
    return weights, _input_size_from_config(config)


def _input_size_from_config(config) -> int:
    if config is None:
        return DEFAULT_SIZE
    text = config.decode() if isinstance(config, bytes) else str(config)
    for key in ('"batch_input_shape": [null, ', '"batch_shape": [null, '):
        if key in text:
            return int(text.split(key, 1)[1].split(",", 1)[0])
    return DEFAULT_SIZE


def build_base(weights: dict[str, np.ndarray], size: int, source: Path, used: set | None = None):
    """TM's frozen feature extractor: MobileNetV2 (width read off the weights), filled by layer name."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    if "Conv_1/kernel" not in weights:
        raise BenchmarkError(
            f"{source}: no MobileNetV2 weights (Conv_1/kernel) inside; is this a Teachable Machine image model?"
        )
    last = weights["Conv_1/kernel"].shape[2]
    if last not in ALPHA_BY_LAST_CHANNELS or weights["Conv1/kernel"].shape[2] != 3:
        raise BenchmarkError(
            f"{source}: not a MobileNetV2 RGB image model this adapter knows (TM's tiny/grayscale models are not "
            "supported)"
        )
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=ALPHA_BY_LAST_CHANNELS[last], include_top=False, weights=None
    )
    used = set() if used is None else used
    for layer in base.layers:
        values = []
        for variable in layer.weights:
            name = variable.name
            if isinstance(layer, keras.layers.DepthwiseConv2D) and name == "kernel":
                name = "depthwise_kernel"  # TF 2.3's name for what Keras 3 calls kernel
            key = f"{layer.name}/{name}"
            if key not in weights:
                raise BenchmarkError(f"{source}: weight {key} is missing; the file is damaged or not a TM export")
            values.append(np.asarray(weights[key], dtype=np.float32))
            used.add(key)
        if values:
            layer.set_weights(values)
    return base


def build_tm_classifier(weights: dict[str, np.ndarray], size: int, source: Path):
    import keras

    used: set = set()
    base = build_base(weights, size, source, used)
    hidden, output = _head_weights(weights, used, base.output_shape[-1], source)
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    x = keras.layers.Dense(hidden[0].shape[1], activation="relu", use_bias=len(hidden) == 2)(x)
    outputs = keras.layers.Dense(output[0].shape[1], activation="softmax", use_bias=len(output) == 2)(x)
    model = keras.Model(base.input, outputs)
    model.layers[-2].set_weights(hidden)
    model.layers[-1].set_weights(output)
    return model


def base_weights(weights: dict[str, np.ndarray], source: Path) -> dict[str, np.ndarray]:
    """Only the MobileNetV2 arrays of an export (what every TM image model shares)."""
    used: set = set()
    build_base(weights, DEFAULT_SIZE, source, used)
    return {k: weights[k] for k in sorted(used)}


def weights_of_export(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a TM Keras (h5 / converted_keras.zip folder) or TF.js export."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if path.suffix == ".h5" or (folder / "keras_model.h5").is_file():
        return read_h5_weights(path if path.suffix == ".h5" else folder / "keras_model.h5")[0]
    if (folder / "model.json").is_file():
        return read_manifest_weights(folder / "model.json", read_model_json(folder / "model.json"))
    raise BenchmarkError(
        f"{path}: need a TM Keras (keras_model.h5) or TensorFlow.js (model.json) export to take the base from"
    )


def _head_weights(weights: dict, used: set, features: int, source: Path) -> tuple[list, list]:
    """The two Dense layers after pooling, found by shape: (features, hidden) then (hidden, classes)."""
    rest = {k: v for k, v in weights.items() if k not in used}
    kernels = {k.rsplit("/", 1)[0]: v for k, v in rest.items() if k.endswith("/kernel") and v.ndim == 2}
    first = [layer for layer, k in kernels.items() if k.shape[0] == features]
    if len(first) != 1:
        raise BenchmarkError(f"{source}: cannot find the classifier head (a {features}×N Dense kernel)")
    hidden_units = kernels[first[0]].shape[1]
    second = [layer for layer, k in kernels.items() if k.shape[0] == hidden_units and layer != first[0]]
    if len(second) != 1:
        raise BenchmarkError(f"{source}: cannot find the output layer (a {hidden_units}×classes Dense kernel)")

    def dense(layer):
        return [kernels[layer]] + ([rest[f"{layer}/bias"]] if f"{layer}/bias" in rest else [])

    return dense(first[0]), dense(second[0])


class TMKerasClassifier:
    """A rebuilt TM model: TM's preprocessing (ImageOps.fit + LANCZOS, ``x/127.5 - 1``; TM's grey weighting for
    the tiny one-channel models), softmax out."""

    def __init__(self, model, size: int, describe: dict, channels: int = 3):
        from benchmarks.serving.tf_runtime import traced_forward

        self.model, self.size, self._describe, self.channels = model, size, describe, channels
        self.n_classes = int(model.output_shape[-1])
        self._forward = traced_forward(model, size, channels)

    def describe(self) -> dict:
        return self._describe

    def predict(self, image: Image.Image) -> np.ndarray:
        return self.predict_batch([image])[0]

    def predict_batch(self, images: list[Image.Image]) -> np.ndarray:
        return self.network_output(self.network_input(images))

    def network_input(self, images: list[Image.Image]) -> np.ndarray:
        fit = teachable_machine_gray if self.channels == 1 else teachable_machine_fit
        return np.stack([to_minus_one_one(fit(image, self.size)) for image in images])

    def network_output(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._forward(batch))

    def export_openvino(self, xml_path: Path, example: np.ndarray) -> None:
        self.model.export(str(xml_path), format="openvino", verbose=False)


def load_h5(path: Path) -> TMKerasClassifier:
    weights, size = read_h5_weights(path)
    model = build_tm_classifier(weights, size, path)
    return TMKerasClassifier(
        model, size, {"format": "keras-h5", "file": path.name, "size_bytes": path.stat().st_size, "input_size": size}
    )


def load_tfjs(model_json: Path) -> tuple[TMKerasClassifier, dict]:
    """TM's TF.js export, standard (224 px RGB) or tiny (96 px grayscale): the network its topology declares."""
    metadata_path = model_json.parent / "metadata.json"
    metadata = {}
    if metadata_path.is_file():
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BenchmarkError(f"{metadata_path}: not valid JSON ({exc.msg})") from None
        if not isinstance(metadata, dict):
            raise BenchmarkError(f"{metadata_path}: expected a JSON object with labels; re-download the export")
    model, (height, width, channels) = load_layers_model(model_json)
    if height != width:
        raise BenchmarkError(f"{model_json}: input {height}×{width} is not square; not a Teachable Machine model")
    if metadata.get("imageSize") and int(metadata["imageSize"]) != height:
        raise BenchmarkError(
            f"{metadata_path}: imageSize {metadata['imageSize']} but model.json takes {height} px; the files do not "
            "belong together"
        )
    size_bytes = sum(p.stat().st_size for p in model_json.parent.glob("*.bin"))
    described = {
        "format": "tfjs" if channels == 3 else "tfjs-tiny-grayscale",
        "file": model_json.name,
        "size_bytes": size_bytes,
        "input_size": height,
        "input_channels": channels,
        "tm_version": metadata.get("tmVersion"),
    }
    return TMKerasClassifier(model, height, described, channels), metadata
