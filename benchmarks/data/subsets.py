"""Nested, label-stratified subsets of a dataset's train split, for learning curves (how many images per label?).

One seeded ordering of the train images decides every subset of a draw: at each step the next image is the first
not yet taken (in a seeded shuffle) that carries the label with the fewest positives so far, so labels fill up
evenly, rare ones first. A subset with N images per label is the shortest prefix of that ordering in which every
label has N positives (or all it has), so the 10-per-label subset is inside the 25-per-label one, and so on: a
learning curve then measures more data, not other data. Valid and test are kept whole, so every point of a curve
is scored on the same test images. ``iterative-stratification`` splits by proportions, not by positives per label,
hence this small ordering.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.errors import DatasetError

from .dataset import Dataset, write_dataset

SUBSET_KEY = "subset"  # dataset.json: {"of": fingerprint, "of_name", "of_path", "per_label", "draw", "train_images"}


def stratified_order(targets: np.ndarray, seed: int) -> np.ndarray:
    """Row indices of ``targets`` (images × labels) in the order subsets take them (see the module docstring);
    images without any label come last, in shuffled order."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(targets))
    counts = np.zeros(targets.shape[1], dtype=np.int64)
    remaining = targets[shuffled].sum(axis=0).astype(np.int64)
    taken = np.zeros(len(targets), dtype=bool)
    cursor = {label: 0 for label in range(targets.shape[1])}
    order = []
    while remaining.any():
        open_labels = np.flatnonzero(remaining > 0)
        label = int(open_labels[np.argmin(counts[open_labels])])
        position = cursor[label]
        while taken[shuffled[position]] or not targets[shuffled[position], label]:
            position += 1
        cursor[label] = position + 1
        image = shuffled[position]
        taken[image] = True
        order.append(image)
        counts += targets[image].astype(np.int64)
        remaining -= targets[image].astype(np.int64)
    order += [i for i in shuffled if not taken[i]]
    return np.array(order, dtype=np.int64)


def subset_size(targets: np.ndarray, order: np.ndarray, per_label: int) -> int:
    """How long a prefix of ``order`` gives every label ``per_label`` positives (or all of its positives)."""
    wanted = np.minimum(targets.sum(axis=0), per_label)
    reached = np.cumsum(targets[order], axis=0) >= wanted
    complete = np.flatnonzero(reached.all(axis=1))
    return int(complete[0]) + 1 if len(complete) else len(order)


def write_subset(dataset: Dataset, out: Path, per_label: int, draw: int = 0) -> Dataset:
    """A dataset folder at ``out``: the first images of draw ``draw``'s ordering with ``per_label`` positives per
    label as train, valid and test whole. Images are hard links where the file system allows (copies otherwise)."""
    if per_label < 1:
        raise DatasetError(f"--per-label {per_label}: give at least 1 image per label")
    out = Path(out)
    if (out / "labels.csv").exists():
        raise DatasetError(f"{out}: a dataset is already there; choose a new folder")
    train = dataset.rows("train").reset_index(drop=True)
    targets = dataset.targets("train")
    order = stratified_order(targets, draw)
    chosen = train.iloc[np.sort(order[: subset_size(targets, order, per_label)])]
    items = pd.concat([chosen, dataset.rows(["valid", "test"])], ignore_index=True)
    return write_derived(
        dataset,
        out,
        items,
        name=f"{dataset.name} ({per_label} per label, draw {draw})",
        description=f"{dataset.name}'s train split cut to {per_label} images per label; valid and test whole",
        extra={
            SUBSET_KEY: {
                "of": dataset.fingerprint,
                "of_name": dataset.name,
                "of_path": str(dataset.root.resolve()),
                "per_label": per_label,
                "draw": draw,
                "train_images": len(chosen),
            }
        },
    )


def subset_info(root: Path | str) -> dict | None:
    """What a subset dataset records about its origin; None for a dataset that is not a subset."""
    import json

    path = Path(root) / "dataset.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8")).get(SUBSET_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return info if isinstance(info, dict) else None


def write_derived(dataset: Dataset, out: Path, items: pd.DataFrame, *, name: str, description: str, extra: dict):
    """A dataset made of another's images (a subset, a fold) at ``out``: the images linked, its records written."""
    for image in items["image"]:
        link_or_copy(dataset.root / image, Path(out) / image)
    return write_dataset(
        out, items, dataset.labels, name=name, description=description, source=str(dataset.root), extra=extra
    )


def link_or_copy(source: Path, target: Path) -> None:
    """A derived dataset's image: a hard link to the original (no copy of the bytes), a copy across file systems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
