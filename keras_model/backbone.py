"""EfficientNet-Lite in Keras 3, from Keras' own layers, carrying the registry's ImageNet weights ported from PyTorch.

Why hand-written: ``keras.applications`` has no Lite variant, and keras-hub's ``EfficientNetBackbone``
pads depthwise convolutions symmetrically (timm's non-TF variant) and pulls in tensorflow-text. These
weights were trained in TensorFlow with "same" padding, which Keras' ``padding="same"`` is exactly, at any
input size. The architecture is read off the weights themselves (every tensor shape), so lite0/1/2 need
no hand-copied tables beyond the stage strides; ``tests/test_keras_backbone.py`` proves the port equal
to the PyTorch model that fastai fine-tunes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.atomic import atomic_write
from benchmarks.data.paths import cache_dir
from benchmarks.errors import BenchmarkError
from benchmarks.models.backbones import Backbone
from benchmarks.models.features import torch_loadable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402

STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)  # EfficientNet's seven stages; the first block of each stage strides
BN_EPSILON = 1e-3  # TensorFlow's default, which the TF-trained weights (and timm's tf_ models) use
FEATURES_LAYER = "head_act"  # last feature map before pooling: the body that trainers fine-tune
PORT_VERSION = 1  # bump when the port changes, so stale caches are rebuilt


def _relu6(name: str) -> keras.layers.Layer:
    return keras.layers.ReLU(max_value=6.0, name=name)


def _conv(x, weights: np.ndarray, stride: int, name: str):
    """A 1x1 or kxk convolution; PyTorch ``(out, in, k, k)`` tells its shape."""
    out_ch, _, k, _ = weights.shape
    return keras.layers.Conv2D(out_ch, k, strides=stride, padding="same", use_bias=False, name=name)(x)


def _depthwise(x, weights: np.ndarray, stride: int, name: str):
    return keras.layers.DepthwiseConv2D(weights.shape[-1], strides=stride, padding="same", use_bias=False, name=name)(x)


def _bn(x, name: str):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=name)(x)


def _block_keys(state: dict) -> list[tuple[int, int]]:
    found = {tuple(map(int, m.groups())) for k in state if (m := re.match(r"blocks\.(\d+)\.(\d+)\.", k))}
    return sorted(found)


def build_efficientnet_lite(state: dict, backbone: Backbone, name: str) -> keras.Model:
    """The full ImageNet classifier (logits), layer names mirroring timm's keys (dots → underscores).

    Input: RGB pixels 0-255 of any size; normalisation is the first layer, so preprocessing travels with the model.
    """
    inputs = keras.Input((None, None, 3), name="pixels")
    mean = [255.0 * m for m in backbone.mean]
    variance = [(255.0 * s) ** 2 for s in backbone.std]
    x = keras.layers.Normalization(mean=mean, variance=variance, name="normalise")(inputs)
    x = _conv(x, state["conv_stem.weight"], 2, "conv_stem")
    x = _relu6("stem_act")(_bn(x, "bn1"))
    for stage, index in _block_keys(state):
        prefix = f"blocks.{stage}.{index}."
        name_of = lambda part: (prefix + part).replace(".", "_")  # noqa: E731
        stride = STAGE_STRIDES[stage] if index == 0 else 1
        shortcut = x
        if prefix + "conv_pwl.weight" in state:  # inverted residual: expand, depthwise, project
            x = _relu6(name_of("act1"))(
                _bn(_conv(x, state[prefix + "conv_pw.weight"], 1, name_of("conv_pw")), name_of("bn1"))
            )
            x = _relu6(name_of("act2"))(
                _bn(_depthwise(x, state[prefix + "conv_dw.weight"], stride, name_of("conv_dw")), name_of("bn2"))
            )
            x = _bn(_conv(x, state[prefix + "conv_pwl.weight"], 1, name_of("conv_pwl")), name_of("bn3"))
        else:  # depthwise separable: depthwise, project
            x = _relu6(name_of("act1"))(
                _bn(_depthwise(x, state[prefix + "conv_dw.weight"], stride, name_of("conv_dw")), name_of("bn1"))
            )
            x = _bn(_conv(x, state[prefix + "conv_pw.weight"], 1, name_of("conv_pw")), name_of("bn2"))
        if stride == 1 and shortcut.shape[-1] == x.shape[-1]:
            x = keras.layers.Add(name=name_of("add"))([shortcut, x])
    x = _conv(x, state["conv_head.weight"], 1, "conv_head")
    x = _relu6(FEATURES_LAYER)(_bn(x, "bn2"))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(state["classifier.weight"].shape[0], name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def port_weights(model: keras.Model, state: dict) -> None:
    """PyTorch tensors into the Keras layers: convolutions transposed to Keras' layouts, BatchNorm as
    (gamma, beta, moving mean, moving variance). Every tensor must be used exactly once."""
    used = set()

    def take(key: str) -> np.ndarray:
        used.add(key)
        return state[key]

    for layer in model.layers:
        key = layer.name.replace("blocks_", "blocks.")
        key = re.sub(r"^blocks\.(\d+)_(\d+)_", r"blocks.\1.\2.", key)
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            layer.set_weights([take(key + ".weight").transpose(2, 3, 0, 1)])  # (C,1,k,k) -> (k,k,C,1)
        elif isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([take(key + ".weight").transpose(2, 3, 1, 0)])  # (out,in,k,k) -> (k,k,in,out)
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([take(key + s) for s in (".weight", ".bias", ".running_mean", ".running_var")])
        elif isinstance(layer, keras.layers.Dense):
            layer.set_weights([take(key + ".weight").T, take(key + ".bias")])
    unused = [k for k in state if k not in used and not k.endswith("num_batches_tracked")]
    if unused:
        raise BenchmarkError(f"Keras port left PyTorch tensors unused: {unused[:3]}")


def ported_model_path(backbone: Backbone) -> Path:
    return cache_dir() / "keras" / f"{backbone.timm_arch}-v{PORT_VERSION}.keras"


def port_to_cache(backbone: Backbone) -> Path:
    """Read the PyTorch weights, build and fill the Keras model, save it atomically. Needs torch imported
    before TensorFlow in this process (the other order segfaults), hence ``python -m keras_model.port``."""
    from benchmarks.models.backbones import timm_state_dict

    state = {k: v.numpy() for k, v in timm_state_dict(backbone).items()}
    model = build_efficientnet_lite(state, backbone, name=backbone.timm_arch)
    port_weights(model, state)
    return atomic_write(ported_model_path(backbone), lambda tmp: model.save(tmp), suffix=".keras")


def imagenet_model(backbone: Backbone) -> keras.Model:
    """The ported ImageNet classifier, converted once (in a subprocess when torch is not loaded yet) and cached."""
    path = ported_model_path(backbone)
    if not path.is_file():
        if torch_loadable():
            port_to_cache(backbone)
        else:
            done = subprocess.run(
                [sys.executable, "-m", "keras_model.port", backbone.name], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise BenchmarkError(
                    f"porting {backbone.name} to Keras failed: "
                    f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
                )
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:
        raise BenchmarkError(
            f"{path}: cached Keras backbone is unreadable ({exc.__class__.__name__}); delete it to port again"
        ) from None


def feature_extractor(backbone: Backbone) -> keras.Model:
    """The ported body up to its last feature map (pixels 0-255 in, (H/32, W/32, 1280) out), for fine-tuning."""
    full = imagenet_model(backbone)
    return keras.Model(full.input, full.get_layer(FEATURES_LAYER).output, name=f"{backbone.name}_body")
