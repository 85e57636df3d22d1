"""A dataset's test split under one corruption at one severity, made once and cached for every run to share.

Each set is one compressed ``.npz`` of uint8 images under the cache (``IMGBENCH_CACHE``), named by the dataset's
fingerprint and a digest of everything that decides its pixels (corruption, severity, parameter, seed, size cap,
albumentations version): an upgrade that could change the pixels makes a new set instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.atomic import atomic_write

from .corruptions import CORRUPTION_SEED, LARGEST_SIDE, corrupt, corruptions, prepared
from .dataset import Dataset
from .images import open_rgb
from .paths import cache_dir

CLEAN = "clean"  # the prepared, uncorrupted test images: the reference every corruption is measured against


def set_name(corruption: str, severity: int) -> str:
    return CLEAN if corruption == CLEAN else f"{corruption}-{severity}"


def parse_set(name: str) -> tuple[str, int]:
    """``set_name``'s inverse: (corruption, severity); (CLEAN, 0) for the clean set."""
    if name == CLEAN:
        return CLEAN, 0
    corruption, _, severity = name.rpartition("-")
    return corruption, int(severity)


def set_digest(corruption: str, severity: int) -> str:
    import albumentations

    recipe = {
        "corruption": corruption,
        "severity": severity,
        "parameter": None if corruption == CLEAN else repr(corruptions()[corruption].ladder[severity - 1]),
        "seed": CORRUPTION_SEED,
        "largest_side": LARGEST_SIDE,
        "albumentations": albumentations.__version__,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]


def set_path(dataset: Dataset, corruption: str, severity: int) -> Path:
    folder = cache_dir() / "corruptions" / dataset.fingerprint.replace(":", "-")
    return folder / f"{set_name(corruption, severity)}-{set_digest(corruption, severity)}.npz"


def clean_test_images(dataset: Dataset) -> list[Image.Image]:
    return [prepared(open_rgb(path)) for path in dataset.image_paths("test")]


def corrupted_test_images(
    dataset: Dataset, corruption: str, severity: int, clean: list[Image.Image] | None = None
) -> list[Image.Image]:
    """The test images (dataset order) under ``corruption`` at ``severity`` (``CLEAN``: none), from the cache, made
    and cached first when missing. ``clean``: the prepared clean images, when the caller has them already."""
    if corruption == CLEAN:
        return clean if clean is not None else clean_test_images(dataset)
    path = set_path(dataset, corruption, severity)
    if path.is_file():
        try:
            with np.load(path) as stored:
                arrays = [stored[f"i{k}"] for k in range(len(stored.files))]
            if len(arrays) == len(dataset.rows("test")):
                return [Image.fromarray(a) for a in arrays]
        except (OSError, ValueError, KeyError):
            pass  # damaged (or from another split size): made again below
    clean = clean if clean is not None else clean_test_images(dataset)
    ids = list(dataset.rows("test")["image"])
    arrays = [corrupt(image, corruption, severity, image_id) for image, image_id in zip(clean, ids)]

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            np.savez_compressed(out, **{f"i{k}": a for k, a in enumerate(arrays)})

    atomic_write(path, write)
    return [Image.fromarray(a) for a in arrays]
