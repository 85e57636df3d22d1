"""A TensorFlow.js *layers* model (what Teachable Machine exports) rebuilt as a Keras 3 model from its own topology.

Why from the topology: TM makes more than one network — the standard MobileNetV2 RGB model and the tiny
96×96 grayscale model for microcontrollers — and writes each as nested models (Sequential of Sequential of a
functional ``Model``). Keras 3 cannot load that nesting from one config (keras#20084), but it reads every leaf:
functional models with ``keras.Model.from_config`` and single layers with their class's ``from_config``. Only
plain ``keras.layers`` classes are accepted (no ``Lambda``, no custom code); weights are set by layer and
variable name from the manifest, so nothing depends on the order the writer used.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.errors import BenchmarkError

from .tfjs_weights import read_manifest_weights, read_model_json

CONTAINERS = {"Sequential", "Model", "Functional"}
LAYERS = {
    "Activation", "Add", "AveragePooling2D", "BatchNormalization", "Concatenate", "Conv2D", "Dense",
    "DepthwiseConv2D", "Dropout", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "InputLayer",
    "MaxPooling2D", "Multiply", "ReLU", "Reshape", "Rescaling", "SeparableConv2D", "Softmax", "ZeroPadding2D",
}  # fmt: skip
DROPPED_KEYS = {"module", "registered_name", "build_config", "batch_input_shape"}
RENAMED_VARIABLES = {("DepthwiseConv2D", "kernel"): "depthwise_kernel"}  # Keras 2 / tfjs names vs Keras 3


def load_layers_model(model_json: Path):
    """(Keras model, input shape (H, W, C)) for a tfjs layers-model export."""
    spec = read_model_json(model_json)
    if spec.get("format") == "graph-model" or "node" in spec["modelTopology"]:
        raise BenchmarkError(
            f"{model_json}: a TensorFlow.js graph model (AutoML Edge's TF.js export), not TM's layers model; "
            "score it with vertex-eval"
        )
    topology = spec["modelTopology"].get("model_config", spec["modelTopology"])
    _check_classes(model_json, topology)
    shape = _input_shape(topology)
    if shape is None or len(shape) != 4 or shape[-1] not in (1, 3):
        raise BenchmarkError(f"{model_json}: the model's input {shape} is not an image batch [null, H, W, 1 or 3]")
    weights = read_manifest_weights(model_json, spec)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    inputs = keras.Input(shape=tuple(int(d) for d in shape[1:]))
    try:
        model = keras.Model(inputs, _apply(keras, topology, inputs))
    except (TypeError, ValueError, KeyError) as exc:
        raise BenchmarkError(
            f"{model_json}: Keras cannot rebuild this topology ({str(exc).splitlines()[0][:140]})"
        ) from None
    _set_weights(keras, model, weights, model_json)
    return model, tuple(int(d) for d in shape[1:])


def _layers_of(config: dict) -> list:
    inner = config.get("config")
    if isinstance(inner, list):  # very old Sequential configs are a bare list of layers
        return inner
    return inner.get("layers", []) if isinstance(inner, dict) else []


def _check_classes(model_json: Path, config) -> None:
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise BenchmarkError(f"{model_json}: a layer without class_name in modelTopology; re-download the export")
    name = config["class_name"]
    if name in CONTAINERS:
        for layer in _layers_of(config):
            _check_classes(model_json, layer)
    elif name not in LAYERS:
        raise BenchmarkError(
            f"{model_json}: layer class {name!r} is not one this reader rebuilds (plain Keras image layers only)"
        )


def _input_shape(config: dict):
    inner = config.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("batch_input_shape"), list):
        return inner["batch_input_shape"]
    for layer in _layers_of(config):
        shape = _input_shape(layer)
        if shape is not None:
            return shape
    return None


def _apply(keras, config: dict, x):
    name, inner = config["class_name"], config.get("config", {})
    if name == "Sequential":
        for layer in _layers_of(config):
            x = _apply(keras, layer, x)
        return x
    if name in ("Model", "Functional"):
        y = keras.Model.from_config(_clean(inner))(x)
        return y[0] if isinstance(y, list | tuple) and len(y) == 1 else y
    if name == "InputLayer":
        return x
    return getattr(keras.layers, name).from_config(_clean(inner, name))(x)


def _clean(value, class_name: str | None = None):
    """Keys Keras 3 refuses: writer bookkeeping, and DepthwiseConv2D's ``groups`` (keras#19151)."""
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if not isinstance(value, dict):
        return value
    cleaned = {
        k: _clean(v, value.get("class_name") if k == "config" else None)
        for k, v in value.items()
        if k not in DROPPED_KEYS or (k == "batch_input_shape" and class_name == "InputLayer")
    }
    if class_name == "DepthwiseConv2D":
        cleaned.pop("groups", None)
    if cleaned.get("class_name") == "Model":
        cleaned["class_name"] = "Functional"
    return cleaned


def _leaf_layers(keras, model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(keras, layer)
        else:
            yield layer


def _set_weights(keras, model, weights: dict, model_json: Path) -> None:
    used = set()
    for layer in _leaf_layers(keras, model):
        values = []
        for variable in layer.weights:
            stored = RENAMED_VARIABLES.get((type(layer).__name__, variable.name), variable.name)
            key = next((k for k in (f"{layer.name}/{stored}", f"{layer.name}/{variable.name}") if k in weights), None)
            if key is None:
                raise BenchmarkError(f"{model_json}: weight {layer.name}/{stored} is missing from the weight files")
            if tuple(weights[key].shape) != tuple(variable.shape):
                raise BenchmarkError(
                    f"{model_json}: weight {key} has shape {list(weights[key].shape)}, the layer needs "
                    f"{list(variable.shape)}; the files do not belong together"
                )
            values.append(weights[key])
            used.add(key)
        if values:
            layer.set_weights(values)
    unused = sorted(set(weights) - used)
    if unused:
        raise BenchmarkError(f"{model_json}: {len(unused)} weights belong to no layer (first: {unused[0]})")
