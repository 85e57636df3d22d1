"""K label-stratified folds over a dataset's train + valid images, each written as a dataset of its own, for choosing
on more held-out images than a small valid split has.

Why: on 300 training images the valid split holds 75, and a macro AUC over 75 images cannot tell a +0.02 gain from
noise (docs/results.md, "Small data"). With K folds every train + valid image is held out once, so a choice made on
the mean of the K folds' valid scores rests on all of them. Fold i's dataset has fold i as its valid split, the other
folds as train, and the test split whole, so a fold run is an ordinary run the trainers and the evaluator read as
any other; its test score is never used to choose. Images are hard links where the file system allows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

from benchmarks.errors import DatasetError

from .dataset import Dataset, load_dataset
from .subsets import write_derived

FOLDS_KEY = "fold"  # dataset.json: {"of": fingerprint, "of_name", "folds", "fold", "seed"}


def fold_assignment(targets: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each image's fold (0..folds-1), label-stratified (iterative stratification, as the splits are made)."""
    assigned = np.empty(len(targets), dtype=np.int64)
    splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(targets)), targets)):
        assigned[held_out] = fold
    return assigned


def check_folds(dataset: Dataset, folds: int, where: str = "--folds") -> None:
    """Refuse, in one line, a fold count the data cannot fill: every fold's valid needs a positive of every label."""
    if folds < 2:
        raise DatasetError(f"{where} {folds}: give 2 or more folds (1: choose on the dataset's own valid split)")
    pool = dataset.rows(["train", "valid"])
    if len(pool) < 2 * folds:
        raise DatasetError(f"{where} {folds}: {dataset.root} has {len(pool)} train + valid images; use fewer folds")
    positives = dataset.targets(["train", "valid"]).sum(axis=0)
    short = [(label, int(n)) for label, n in zip(dataset.labels, positives) if n < folds]
    if short:
        label, n = short[0]
        raise DatasetError(
            f"{where} {folds}: label '{label}' has {n} positive train + valid image(s), so some fold would hold none "
            f"of it; use at most {n} folds or add images of '{label}'"
        )


def grouped_splits(dataset: Dataset) -> str | None:
    """What the dataset's splits keep apart that folds over train + valid cannot (None: nothing declared). StampScenes
    puts each stamp in one split, so its valid images show objects train never saw; a fold mixes train and valid
    scenes, so fold valid images share stamps with fold train and the fold score rewards memorising them."""
    stamps = dataset.info.get("stamps")
    if isinstance(stamps, list) and any(isinstance(s, dict) and s.get("split") for s in stamps):
        return "stamp instances (each stamp is in one split)"
    return dataset.info.get("split_groups")


def write_folds(dataset: Dataset, out: Path, folds: int, seed: int = 0) -> list[Dataset]:
    """The K fold datasets under ``out`` (``fold-0`` ...), reused when already written from the same dataset with
    the same folds and seed (a resumed study finds them); anything else there is refused, never overwritten."""
    check_folds(dataset, folds)
    pool = dataset.rows(["train", "valid"]).reset_index(drop=True)
    assigned = fold_assignment(dataset.targets(["train", "valid"]), folds, seed)
    made = []
    for fold in range(folds):
        root = Path(out) / f"fold-{fold}"
        wanted = {"of": dataset.fingerprint, "of_name": dataset.name, "folds": folds, "fold": fold, "seed": seed}
        if (root / "labels.csv").exists():
            existing = load_dataset(root)
            if existing.info.get(FOLDS_KEY) != wanted:
                raise DatasetError(f"{root}: holds another dataset or other folds; remove it or choose another folder")
            made.append(existing)
            continue
        items = pool.assign(split=np.where(assigned == fold, "valid", "train"))
        items = pd.concat([items, dataset.rows("test")], ignore_index=True)
        made.append(
            write_derived(
                dataset,
                root,
                items,
                name=f"{dataset.name} (fold {fold} of {folds})",
                description=f"{dataset.name}'s train + valid images with fold {fold} of {folds} as valid; test whole",
                extra={FOLDS_KEY: wanted},
            )
        )
    return made
