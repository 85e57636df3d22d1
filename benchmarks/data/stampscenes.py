"""StampScenes: the built-in multi-label dataset, composed offline from Tux Paint stamps.

Each image is a scene of 1-4 labelled stamps (plus sometimes an unlabelled distractor) on a varied
background, with random scale, rotation, flip and colour jitter. Splits are instance-disjoint: a stamp
appears in one split only, so the test split shows objects no model saw during training.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageFilter
from tqdm.auto import tqdm

from benchmarks.atomic import atomic_write_text
from benchmarks.errors import DatasetError

from .dataset import SPLITS, Dataset, load_dataset, write_dataset
from .stamp_catalog import (
    DEFAULT_STAMPS_DIR,
    LABEL_FOLDERS,
    LABEL_OVERRIDES,
    LOOKALIKES,
    Stamp,
    assign_stamp_splits,
    catalog,
)

MIN_VISIBLE = 0.6  # every labelled object keeps at least this share of its pixels visible
OBJECT_COUNTS, OBJECT_COUNT_P = (1, 2, 3, 4), (0.35, 0.35, 0.2, 0.1)
DISTRACTOR_P = 0.35
PLACEMENT_TRIES = 25
DESCRIPTION = (
    "Scenes of 1-4 Tux Paint stamps (photographic and cartoon cut-outs) on noisy, textured backgrounds, with "
    "unlabelled distractors; labels are coarse categories grouped from stamp folders; splits are instance-disjoint, "
    "so test objects were never seen in training."
)


@dataclass
class SceneSpec:
    split: str
    index: int
    seed: int
    img_size: int


_POOLS: dict[str, dict] = {}  # per split: labelled stamps by label, and distractors (shared with forked workers)


def build_stampscenes(
    out: Path,
    *,
    size: int = 3000,
    img_size: int = 224,
    seed: int = 0,
    stamps_dir: Path | None = None,
    workers: int | None = None,
) -> Dataset:
    """Compose the dataset into ``out`` (written to a staging folder first, then renamed into place)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out}: already exists and is not empty; remove it or choose another folder")
    if size < 12:
        raise DatasetError(f"--size {size}: need at least 12 images (some per split)")
    stamps_dir = Path(stamps_dir) if stamps_dir else DEFAULT_STAMPS_DIR
    stamps = catalog(stamps_dir)
    labels = sorted({s.label for s in stamps if s.label})
    if len(labels) < 2:
        raise DatasetError(
            f"{stamps_dir}: found stamps for {len(labels)} label(s); expected the Tux Paint stamp folders "
            "(animals/birds, food/fruit, ...)"
        )
    assign_stamp_splits(stamps, seed)
    _fill_pools(stamps)
    counts = {"train": round(size * 2 / 3), "valid": round(size / 6)}
    counts["test"] = size - counts["train"] - counts["valid"]
    specs = [SceneSpec(split, i, seed, img_size) for split in SPLITS for i in range(counts[split])]

    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for split in SPLITS:
        (staging / "images" / split).mkdir(parents=True)
    workers = workers or min(2, multiprocessing.cpu_count())
    rows, objects = [], []
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        results = pool.imap(_compose_and_save, [(spec, staging) for spec in specs], chunksize=16)
        for row, scene_objects in tqdm(results, total=len(specs), desc="composing StampScenes", unit="img"):
            rows.append(row)
            objects.extend(scene_objects)
    items = pd.DataFrame(rows, columns=["image", "labels", "split"])
    atomic_write_text(staging / "objects.jsonl", "".join(json.dumps(o) + "\n" for o in objects))
    write_dataset(
        staging,
        items,
        labels,
        name="StampScenes",
        description=DESCRIPTION,
        source=f"Tux Paint stamps ({stamps_dir}); Debian package tuxpaint-stamps-default; GPL-2.0-or-later artwork",
        build={
            "size": size,
            "img_size": img_size,
            "seed": seed,
            "stamps_dir": str(stamps_dir),
            "min_visible": MIN_VISIBLE,
        },
        extra={
            "label_folders": {k: v for k, v in LABEL_FOLDERS.items()},
            "label_overrides": LABEL_OVERRIDES,
            "lookalike_distractors": list(LOOKALIKES),
            "stamps": [{"stamp": s.key, "label": s.label, "style": s.style, "split": s.split} for s in stamps],
        },
    )
    staging.rename(out)

    return load_dataset(out)


def _fill_pools(stamps: list[Stamp]) -> None:
    _POOLS.clear()
    for split in SPLITS:
        members = [s for s in stamps if s.split == split]
        by_label: dict[str, list[Stamp]] = {}
        for s in members:
            if s.label:
                by_label.setdefault(s.label, []).append(s)
        _POOLS[split] = {
            "labels": dict(sorted(by_label.items())),
            "distractors": [s for s in members if s.label is None],
        }


def _compose_and_save(job: tuple[SceneSpec, Path]) -> tuple[tuple, list[dict]]:
    spec, staging = job
    image, placed = compose_scene(spec)
    rel = f"images/{spec.split}/{spec.split}_{spec.index:05d}.jpg"
    rng = np.random.default_rng([spec.seed, SPLITS.index(spec.split), spec.index, 1])
    image.save(staging / rel, quality=int(rng.integers(80, 96)))
    labels = tuple(sorted({p["label"] for p in placed if p["label"]}))
    return (rel, labels, spec.split), [{"image": rel, **p} for p in placed]


def compose_scene(spec: SceneSpec) -> tuple[Image.Image, list[dict]]:
    """One scene, deterministic for (seed, split, index); returns the image and its placed objects."""
    rng = np.random.default_rng([spec.seed, SPLITS.index(spec.split), spec.index])
    pool = _POOLS[spec.split]
    size = spec.img_size
    canvas = _background(rng, size).convert("RGBA")
    n_objects = int(rng.choice(OBJECT_COUNTS, p=OBJECT_COUNT_P))
    label_names = list(pool["labels"])
    wanted: list[Stamp] = []
    for _ in range(n_objects):
        label = label_names[int(rng.integers(len(label_names)))]
        stamps = pool["labels"][label]
        wanted.append(stamps[int(rng.integers(len(stamps)))])
    if pool["distractors"] and rng.random() < DISTRACTOR_P:
        position = int(rng.integers(len(wanted) + 1))
        wanted.insert(position, pool["distractors"][int(rng.integers(len(pool["distractors"])))])

    masks: list[np.ndarray] = []  # visible-pixel masks of the objects placed so far
    totals: list[float] = []  # each object's full pixel count, inside the canvas or not
    placed: list[dict] = []
    largest = 0.75 if n_objects == 1 else 0.55
    for stamp in wanted:
        sprite = _jitter(stamp.image, rng, side=rng.uniform(0.28, largest) * size)
        alpha = np.asarray(sprite.getchannel("A")) > 127
        total = float(alpha.sum())
        if total == 0:  # a thin stamp shrunk to a small image size keeps no solid pixel: nothing to see or label
            continue
        for _ in range(PLACEMENT_TRIES):
            x = int(rng.integers(-sprite.width // 4, size - sprite.width * 3 // 4 + 1))
            y = int(rng.integers(-sprite.height // 4, size - sprite.height * 3 // 4 + 1))
            mask = _canvas_mask(alpha, x, y, size)
            if mask.sum() < MIN_VISIBLE * total:
                continue
            if all(
                p["label"] is None or (m & ~mask).sum() >= MIN_VISIBLE * t for p, m, t in zip(placed, masks, totals)
            ):
                break
        else:
            continue  # no place keeps everything visible: leave this object (and its label) out
        canvas.alpha_composite(sprite, (max(x, 0), max(y, 0)), (max(-x, 0), max(-y, 0)))
        masks = [m & ~mask for m in masks] + [mask]
        totals.append(total)
        placed.append(
            {"stamp": stamp.key, "label": stamp.label, "style": stamp.style, "box": [x, y, sprite.width, sprite.height]}
        )
    for p, m, t in zip(placed, masks, totals):
        p["visible"] = round(float(m.sum()) / t, 3)
    return _finish(canvas.convert("RGB"), rng), placed


def _canvas_mask(alpha: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    h, w = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, size), min(y + h, size)
    if x1 > x0 and y1 > y0:
        mask[y0:y1, x0:x1] = alpha[y0 - y : y1 - y, x0 - x : x1 - x]
    return mask


def _jitter(stamp: Image.Image, rng: np.random.Generator, side: float) -> Image.Image:
    scale = side / max(stamp.size)
    sprite = stamp.resize(
        (max(4, round(stamp.width * scale)), max(4, round(stamp.height * scale))), Image.Resampling.BILINEAR
    )
    if rng.random() < 0.5:
        sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    rgb, alpha = sprite.convert("RGB"), sprite.getchannel("A")
    rgb = ImageEnhance.Brightness(rgb).enhance(rng.uniform(0.65, 1.35))
    rgb = ImageEnhance.Contrast(rgb).enhance(rng.uniform(0.65, 1.35))
    rgb = ImageEnhance.Color(rgb).enhance(rng.uniform(0.5, 1.5))
    sprite = Image.merge("RGBA", (*rgb.split(), alpha))
    return sprite.rotate(float(rng.uniform(-35, 35)), resample=Image.Resampling.BILINEAR, expand=True)


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """Gradient, radial, stripes or blotchy texture in two random colours, with noise."""
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    kind = rng.choice(["linear", "radial", "stripes", "texture"])
    angle = rng.uniform(0, 2 * np.pi)
    if kind == "linear":
        t = np.cos(angle) * xx + np.sin(angle) * yy
    elif kind == "radial":
        cx, cy = rng.uniform(0, 1, 2)
        t = np.hypot(xx - cx, yy - cy)
    elif kind == "stripes":
        t = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(3, 14) * np.pi) * 0.5 + 0.5
    else:
        cells = int(rng.integers(3, 12))
        noise = Image.fromarray((rng.uniform(0, 255, (cells, cells))).astype(np.uint8))
        t = np.asarray(noise.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)
    t = (t - t.min()) / (np.ptp(t) or 1.0)
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    pixels = c1 * (1 - t[..., None]) + c2 * t[..., None] + rng.normal(0, rng.uniform(0, 14), (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _finish(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Camera-like degradations over the whole scene: slight blur and sensor noise."""
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    noise = rng.normal(0, rng.uniform(0, 6), (image.height, image.width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
