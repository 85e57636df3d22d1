"""A fastai run's network in an exchange format (``benchmarks.exports.exchange``): ONNX through PyTorch's own
exporter (``torch.onnx.export``, the dynamo path), with the backbone's normalisation and the sigmoid in the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.exports.exchange import INPUT_NAME, OUTPUT_NAME
from benchmarks.models.backbones import prepare_image

from .serving import FastaiPredictor

FORMATS = {"onnx": "model.onnx"}
ROUND_TRIP = None  # no TFLite export to read back
RESIZE = (
    "shorter side resized to S (PIL bilinear), then the centre S x S square (benchmarks.models.backbones.prepare_image)"
)


class ExchangeScores(torch.nn.Module):
    """The run's network behind the exchange contract: NHWC in [-1, 1] -> the backbone's normalisation -> sigmoid."""

    def __init__(self, network: torch.nn.Module, mean, std):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = ((image.permute(0, 3, 1, 2) + 1.0) / 2.0 - self.mean) / self.std
        return torch.sigmoid(self.network(x))


def exchange_pixels(predictor: FastaiPredictor, images: list[Image.Image]) -> np.ndarray:
    """The square the served model sees, as 0..255 NHWC (before the exchange scaling)."""
    size = predictor.img_size
    return np.stack([np.asarray(prepare_image(image.convert("RGB"), size)) for image in images]).astype(np.float32)


def export_model(predictor: FastaiPredictor, fmt: str, out_dir: Path) -> dict:
    """Write ``FORMATS[fmt]`` into ``out_dir``; returns what export.json records about the conversion."""
    module = ExchangeScores(predictor.model.to(memory_format=torch.contiguous_format), predictor.backbone.mean,
                            predictor.backbone.std).eval()  # fmt: skip
    size = predictor.img_size
    example = torch.zeros(2, size, size, 3)
    batch = torch.export.Dim("batch", max=4096)
    torch.onnx.export(
        module,
        (example,),
        str(out_dir / FORMATS[fmt]),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={"image": {0: batch}},
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    return {"converter": f"torch.onnx.export (dynamo) from torch {torch.__version__}", "resize": RESIZE, "size": size}
