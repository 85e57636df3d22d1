"""EDA remedies: write a cleaned copy of a dataset (never edit the source in place)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.errors import DatasetError

from .dataset import Dataset, label_matrix, load_dataset, write_dataset
from .image_hashes import duplicate_groups
from .splitting import stratified_splits


def clean_dataset(
    dataset: Dataset, facts: pd.DataFrame, out: Path, *, drop_corrupt: bool, dedupe: bool, resplit: bool, seed: int = 0
) -> Dataset:
    """Apply the chosen remedies and write the result to ``out``."""
    if out.resolve() == dataset.root.resolve():
        raise DatasetError(f"{out}: remedies write a new dataset; choose an --out different from the source")
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out}: already exists and is not empty; choose another --out")
    items = dataset.items.copy()
    keep = np.ones(len(items), dtype=bool)
    actions = []
    readable = facts["readable"].to_numpy()
    if drop_corrupt:
        keep &= readable
        actions.append(f"dropped {int((~readable).sum())} unreadable file(s)")
    elif not readable.all():
        raise DatasetError(
            f"{dataset.root}: {int((~readable).sum())} unreadable file(s); add --drop-corrupt to remove them"
        )
    ok = np.flatnonzero(readable)
    groups = np.full(len(items), -1)
    groups[ok] = duplicate_groups(
        list(facts["sha256"].iloc[ok]), list(facts["phash"].iloc[ok]), list(facts["thumb"].iloc[ok])
    )
    groups[~readable] = groups.max() + 1 + np.arange(int((~readable).sum()))
    if dedupe:
        split_rank = items["split"].map({"train": 0, "valid": 1, "test": 2}).to_numpy()
        order = np.lexsort((np.arange(len(items)), split_rank))  # keep the training copy when there is one
        first = {}
        for i in order:
            first.setdefault(groups[i], i)
        duplicates = np.array([first[groups[i]] != i for i in range(len(items))])
        keep &= ~duplicates
        actions.append(f"dropped {int(duplicates.sum())} duplicate image(s)")
    items, groups = items[keep].reset_index(drop=True), groups[keep]
    if resplit:
        items["split"] = stratified_splits(label_matrix(items["labels"], dataset.labels), groups, seed=seed)
        actions.append(f"re-split with iterative stratification (seed {seed}), duplicates kept together")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for rel in items["image"]:
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(dataset.root / rel, staging / rel)
    info = dict(dataset.info)
    write_dataset(
        staging,
        items,
        dataset.labels,
        name=f"{dataset.name} (cleaned)",
        description=info.get("description", ""),
        source=info.get("source", ""),
        build=info.get("build", {}),
        extra={"derived_from": {"path": str(dataset.root), "fingerprint": dataset.fingerprint, "remedies": actions}},
    )
    staging.rename(out)
    return load_dataset(out, require_train_positives=False)
