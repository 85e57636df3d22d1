"""How each service's own code turns a photo into its model's input square (so our scores match theirs)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


def teachable_machine_fit(image: Image.Image, size: int) -> np.ndarray:
    """TM's Python snippet: ``ImageOps.fit(image, (size, size), LANCZOS)`` — cover, then centre-crop."""
    return np.asarray(ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


TM_GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)  # TM's libraries/image/src/utils/tf.ts


def teachable_machine_gray(image: Image.Image, size: int) -> np.ndarray:
    """TM's tiny (grayscale) models: the same square, then TM's own grey weighting of R, G, B, kept as float
    ``[size, size, 1]`` in 0..255 (PIL's ``L`` rounds to integers and weighs 0.299/0.587/0.114)."""
    return (teachable_machine_fit(image, size).astype(np.float32) @ TM_GRAY_WEIGHTS)[..., None]


def automl_fit(image: Image.Image, size: int) -> np.ndarray:
    """AutoML Edge's TFLite samples: centre-crop to a square, then bilinear resize."""
    image = image.convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def automl_tfjs_fit(image: Image.Image, size: int) -> np.ndarray:
    """tfjs-automl's ``centerCropAndResize``, op for op: the centre square as a normalised box, then
    ``tf.image.crop_and_resize`` (bilinear, align-corners sampling, no antialiasing) on the float image; float
    ``[size, size, 3]`` in 0..255, not rounded. PIL's crop + ``resize`` filters and moves scores by up to ~0.01."""
    import tensorflow as tf

    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) / 2, (width - side) / 2  # tfjs-automl's halves are not rounded
    box = [[top / height, left / width, (top + side) / height, (left + side) / width]]
    return tf.image.crop_and_resize(pixels[None], box, [0], [size, size], method="bilinear").numpy()[0]


def to_minus_one_one(pixels: np.ndarray) -> np.ndarray:
    """Float models of both services expect ``x / 127.5 - 1``."""
    return pixels.astype(np.float32) / 127.5 - 1.0
