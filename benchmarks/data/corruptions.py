"""Common corruptions of a phone photo (ImageNet-C's list: noise, blur, weather, digital) at five severities,
from albumentations, seeded per image so every model sees exactly the same corrupted pixels.

Hendrycks & Dietterich (ICLR 2019) apply 15 corruptions × 5 severities to 224-px images. Where albumentations has
the same parameter as ImageNet-C's reference code (Gaussian noise σ, impulse amount, defocus radius, glass blur,
zoom blur, contrast factor, brightness shift, pixelate scale, JPEG quality) the values are ImageNet-C's; the others
(motion blur, snow, fog, spatter, elastic) are albumentations' own effect with a severity ladder from light to heavy.
Frost has no albumentations equivalent (ImageNet-C overlays photos of frost it ships): ``spatter`` takes its place
in the weather group. ``imagecorruptions`` (the ImageNet-C code on PyPI) is not used: its 1.1.2 calls scikit-image
with an argument removed in 0.19 and fails with the pinned stack (its issue #30; the fix is unreleased).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from benchmarks.errors import BenchmarkError

SEVERITIES = (1, 2, 3, 4, 5)
DEFAULT_SEVERITIES = (1, 3, 5)
CORRUPTION_SEED = 0
LARGEST_SIDE = 256  # larger test images are first downscaled to this (aspect kept): a severity then means the same


@dataclass(frozen=True)
class Corruption:
    name: str
    group: str  # noise | blur | weather | digital
    make: Callable[[float], object]  # severity's parameter -> an albumentations transform (p=1)
    ladder: tuple  # the parameter at severities 1..5
    source: str  # "ImageNet-C" where the values are its own, else "albumentations"

    def transform(self, severity: int):
        return self.make(self.ladder[severity - 1])


def _table() -> dict[str, Corruption]:
    import albumentations as A  # noqa: N812 - the library's own idiom
    import cv2

    def fixed(low_high):
        return (low_high, low_high)

    pixelate = {"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_NEAREST}
    # fmt: off
    entries = [
        Corruption("gaussian_noise", "noise", lambda s: A.GaussNoise(std_range=fixed(s), p=1),
                   (0.08, 0.12, 0.18, 0.26, 0.38), "ImageNet-C"),
        Corruption("shot_noise", "noise", lambda s: A.ShotNoise(scale_range=fixed(s), p=1),
                   (1 / 60, 1 / 25, 1 / 12, 1 / 5, 1 / 3), "ImageNet-C"),
        Corruption("impulse_noise", "noise",
                   lambda s: A.SaltAndPepper(amount=fixed(s), salt_vs_pepper=fixed(0.5), p=1),
                   (0.03, 0.06, 0.09, 0.17, 0.27), "ImageNet-C"),
        Corruption("defocus_blur", "blur", lambda s: A.Defocus(radius=fixed(s[0]), alias_blur=fixed(s[1]), p=1),
                   ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)), "ImageNet-C"),
        Corruption("glass_blur", "blur",
                   lambda s: A.GlassBlur(sigma=s[0], max_delta=s[1], iterations=s[2], mode="fast", p=1),
                   ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)), "ImageNet-C"),
        Corruption("motion_blur", "blur",
                   lambda s: A.MotionBlur(blur_limit=fixed(s), allow_shifted=False, p=1),
                   (5, 9, 13, 17, 23), "albumentations"),
        Corruption("zoom_blur", "blur", lambda s: A.ZoomBlur(max_factor=fixed(s[0]), step_factor=fixed(s[1]), p=1),
                   ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)), "ImageNet-C"),
        Corruption("snow", "weather",
                   lambda s: A.RandomSnow(snow_point_range=fixed(s), brightness_coeff=2.0, method="texture", p=1),
                   (0.1, 0.2, 0.3, 0.4, 0.5), "albumentations"),
        Corruption("spatter", "weather", lambda s: A.Spatter(mode="mud", intensity=fixed(s), p=1),
                   (0.2, 0.35, 0.5, 0.65, 0.8), "albumentations"),
        Corruption("fog", "weather", lambda s: A.RandomFog(fog_coef_range=fixed(s), alpha_coef=0.1, p=1),
                   (0.2, 0.4, 0.6, 0.8, 1.0), "albumentations"),
        Corruption("brightness", "digital",
                   lambda s: A.RandomBrightnessContrast(brightness_limit=fixed(s), contrast_limit=fixed(0), p=1),
                   (0.1, 0.2, 0.3, 0.4, 0.5), "ImageNet-C"),
        Corruption("contrast", "digital",
                   lambda s: A.ColorJitter(brightness=fixed(1), contrast=fixed(s), saturation=fixed(1),
                                           hue=fixed(0), p=1),
                   (0.4, 0.3, 0.2, 0.1, 0.05), "ImageNet-C"),
        Corruption("elastic_transform", "digital", lambda s: A.ElasticTransform(alpha=s[0], sigma=s[1], p=1),
                   ((15, 4), (30, 4), (45, 5), (60, 5), (80, 6)), "albumentations"),
        Corruption("pixelate", "digital",
                   lambda s: A.Downscale(scale_range=fixed(s), interpolation_pair=pixelate, p=1),
                   (0.6, 0.5, 0.4, 0.3, 0.25), "ImageNet-C"),
        Corruption("jpeg_compression", "digital", lambda s: A.ImageCompression(quality_range=fixed(s), p=1),
                   (25, 18, 15, 10, 7), "ImageNet-C"),
    ]
    # fmt: on
    return {c.name: c for c in entries}


_TABLE: dict[str, Corruption] | None = None


def corruptions() -> dict[str, Corruption]:
    """Every corruption by name, in ImageNet-C's order (albumentations is imported on first use)."""
    global _TABLE
    if _TABLE is None:
        try:
            _TABLE = _table()
        except ImportError as error:
            raise BenchmarkError(
                f"corruptions need albumentations ({error.name} is missing): pip install -r requirements.txt"
            ) from None
    return _TABLE


CORRUPTION_NAMES = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "spatter", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip


def check_choice(names: list[str], severities: list[int]) -> None:
    """One line for an unknown corruption or severity, before anything is loaded."""
    unknown = [n for n in names if n not in CORRUPTION_NAMES]
    if unknown:
        raise BenchmarkError(f"unknown corruption {', '.join(unknown)} (known: {', '.join(CORRUPTION_NAMES)})")
    wrong = [s for s in severities if s not in SEVERITIES]
    if wrong:
        raise BenchmarkError(f"severity {', '.join(map(str, wrong))} is not one of 1..5")


def image_seed(corruption: str, severity: int, image: str) -> int:
    """The seed of one image's corruption: the same for every run and process (Python's hash() is salted)."""
    text = f"{CORRUPTION_SEED}/{corruption}/{severity}/{image}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "little")


def prepared(image: Image.Image) -> Image.Image:
    """The clean image every corruption starts from: RGB, its longer side at most LARGEST_SIDE."""
    image = image.convert("RGB")
    if max(image.size) > LARGEST_SIDE:
        image = image.copy()
        image.thumbnail((LARGEST_SIDE, LARGEST_SIDE), Image.Resampling.LANCZOS)
    return image


def corrupt(image: Image.Image, corruption: str, severity: int, image_id: str) -> np.ndarray:
    """``image`` (already ``prepared``) under one corruption at one severity, as uint8 HxWx3: deterministic per
    (corruption, severity, image id)."""
    import albumentations as A  # noqa: N812

    seed = image_seed(corruption, severity, image_id)
    transform = A.Compose([corruptions()[corruption].transform(severity)], seed=seed)
    return np.ascontiguousarray(transform(image=np.asarray(image, dtype=np.uint8))["image"], dtype=np.uint8)
