"""The Keras port of EfficientNet-Lite equals the PyTorch model fastai fine-tunes: same ImageNet logits."""

import numpy as np
import pytest
import torch

from benchmarks.models.backbones import get_backbone, normalise
from keras_model.backbone import feature_extractor, imagenet_model, keras, ported_model_path


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3)).astype(np.uint8)


@pytest.mark.parametrize("size", [224, 161])  # 161: not a multiple of 32, where padding mistakes show
def test_keras_port_gives_the_pytorch_imagenet_logits(images, size):
    backbone = get_backbone("lite0")
    pixels = images[:, :size, :size]
    keras_logits = imagenet_model(backbone)(pixels.astype(np.float32)).numpy()
    with torch.inference_mode():
        torch_logits = backbone.create_torch_model()(torch.from_numpy(normalise(pixels, backbone))).numpy()
    assert np.abs(keras_logits - torch_logits).max() < 1e-3
    assert (keras_logits.argmax(1) == torch_logits.argmax(1)).all()


def test_port_is_cached_and_loads_in_safe_mode():
    backbone = get_backbone("lite0")
    imagenet_model(backbone)
    path = ported_model_path(backbone)
    stamp = path.stat().st_mtime_ns
    body = feature_extractor(backbone)
    assert path.stat().st_mtime_ns == stamp  # not ported again
    assert body.output.shape[-1] == 1280
    assert keras.saving.load_model(path, safe_mode=True).count_params() == imagenet_model(backbone).count_params()
