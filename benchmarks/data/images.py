"""Opening images the same way everywhere, with errors that name the file."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from benchmarks.errors import DatasetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

# Larger images are refused rather than decoded: a decompression bomb would take all memory.
Image.MAX_IMAGE_PIXELS = 50_000_000


class ImageTooLarge(DatasetError):
    """More pixels than MAX_IMAGE_PIXELS: refused before decoding (decompression-bomb guard)."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def open_rgb(path: Path | str | BinaryIO, name: str | None = None) -> Image.Image:
    """Decode an image (a file, or an open binary stream such as an upload called ``name``) as upright
    RGB: EXIF rotation applied, alpha flattened on white."""
    path = path if hasattr(path, "read") else Path(path)
    if name is None:
        name = str(path) if isinstance(path, Path) else "upload"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img_file = Image.open(path)  # reads the header only
        with img_file as img:
            if img.width * img.height > Image.MAX_IMAGE_PIXELS:  # PIL itself only warns below twice the limit
                raise Image.DecompressionBombError("too many pixels")
            img = ImageOps.exif_transpose(img)
            img.load()
    except FileNotFoundError:
        raise DatasetError(f"{name}: image not found") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(
            f"{name}: image is too large to decode safely (over {Image.MAX_IMAGE_PIXELS:,} pixels)"
        ) from None
    except Exception as exc:  # PIL raises many types for broken files
        # PIL's own message can carry the repr of the stream (an upload object, its ids and URLs): never shown
        detail = (
            "not a JPEG, PNG, GIF, BMP, WebP or TIFF image"
            if isinstance(exc, UnidentifiedImageError)
            else (f"{exc.__class__.__name__}: {str(exc)[:120]}")
        )
        remedy = "upload an image file" if not isinstance(path, Path) else "remove it or run `eda --drop-corrupt`"
        raise DatasetError(f"{name}: cannot read image ({detail}); {remedy}") from None
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (L, P, RGBA, CMYK, I;16, ...) to RGB; transparency becomes white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        img = Image.fromarray((arr / top * 255).astype("uint8"), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")
