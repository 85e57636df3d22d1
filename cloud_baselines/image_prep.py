"""How each service's own code turns a photo into its model's input square (so our scores match theirs)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


def teachable_machine_fit(image: Image.Image, size: int) -> np.ndarray:
    """TM's Python snippet: ``ImageOps.fit(image, (size, size), LANCZOS)`` — cover, then centre-crop."""
    return np.asarray(ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def automl_fit(image: Image.Image, size: int) -> np.ndarray:
    """tfjs-automl: centre-crop to a square, then bilinear resize."""
    image = image.convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def to_minus_one_one(pixels: np.ndarray) -> np.ndarray:
    """Float models of both services expect ``x / 127.5 - 1``."""
    return pixels.astype(np.float32) / 127.5 - 1.0
