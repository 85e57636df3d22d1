"""K label-stratified folds over a dataset's train + valid images, each written as a dataset of its own, for choosing
on more held-out images than a small valid split has.

Why: on 300 training images the valid split holds 75, and a macro AUC over 75 images cannot tell a +0.02 gain from
noise (docs/results.md, "Small data"). With K folds every train + valid image is held out once, so a choice made on
the mean of the K folds' valid scores rests on all of them. Fold i's dataset has fold i as its valid split, the other
folds as train, and the test split whole, so a fold run is an ordinary run the trainers and the evaluator read as
any other; its test score is never used to choose. Images are hard links where the file system allows.

Folds by instance (``grouped=True``): where a dataset records the object instances each image shows (StampScenes'
``objects.jsonl``: the labelled stamps in each scene) and its splits keep them apart, plain folds leak them (fold
valid shares stamps with fold train, and the fold score rewards memorising them). Grouped folds put each instance in
one fold, stratified by its label: fold i's valid holds the images whose instances all fall in fold i, its train the
images with none there; an image whose instances span folds is held out nowhere and trains only where none of them
is held out. That costs training images (on StampScenes-450 a fold trains on about half of train + valid).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

from benchmarks.errors import DatasetError

from .dataset import Dataset, load_dataset
from .subsets import write_derived

FOLDS_KEY = "fold"  # dataset.json: {"of": fingerprint, "of_name", "folds", "fold", "seed"[, "grouped"]}
OBJECTS_FILE = "objects.jsonl"  # one JSON object per placed object: {"image", "stamp", "label", ...}


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


def instance_groups(dataset: Dataset) -> tuple[dict[str, set[str]], dict[str, str]] | None:
    """Each image's labelled object instances and each instance's label, where the dataset records them
    (``objects.jsonl`` beside labels.csv); None where it does not."""
    path = dataset.root / OBJECTS_FILE
    if not path.is_file():
        return None
    shown, labels = defaultdict(set), {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
            image, instance, label = str(record["image"]), str(record["stamp"]), record.get("label")
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DatasetError(
                f"{path}:{number}: not an object record (image, stamp, label); rebuild the dataset or remove the file"
            ) from None
        if label:  # unlabelled distractors carry no label to memorise
            shown[image].add(instance)
            labels[instance] = str(label)
    return shown, labels


def grouped_membership(images: list[str], groups: tuple, folds: int, seed: int) -> np.ndarray:
    """(images, folds): 1 where an image is held out in that fold, 0 where it trains, -1 where it sits out. Each
    instance goes to one fold, shuffled within its label and dealt round (so every fold gets each label's
    instances); an image showing no labelled instance is held out in one seeded fold."""
    shown, labels = groups
    rng = np.random.default_rng(seed)
    fold_of, by_label = {}, defaultdict(list)
    for instance, label in sorted(labels.items()):
        by_label[label].append(instance)
    for label in sorted(by_label):
        members = by_label[label]
        rng.shuffle(members)
        offset = int(rng.integers(folds))
        fold_of.update({instance: (i + offset) % folds for i, instance in enumerate(members)})
    membership = np.zeros((len(images), folds), dtype=np.int64)
    for row, image in enumerate(images):
        owners = {fold_of[i] for i in shown.get(image, ())} or {int(rng.integers(folds))}
        for fold in owners:
            membership[row, fold] = 1 if len(owners) == 1 else -1
    return membership


def check_grouped(dataset: Dataset, membership: np.ndarray, where: str) -> None:
    """Every grouped fold must hold out and train on a positive of every label."""
    targets = dataset.targets(["train", "valid"])
    for fold in range(membership.shape[1]):
        for role, value in (("valid", 1), ("train", 0)):
            positives = targets[membership[:, fold] == value].sum(axis=0)
            missing = [label for label, n in zip(dataset.labels, positives) if n == 0]
            if missing:
                raise DatasetError(
                    f"{where}: fold {fold}'s {role} holds no image of '{missing[0]}' once its instances are kept in "
                    f"one fold; use fewer folds, or folds without --group-folds"
                )


def write_folds(dataset: Dataset, out: Path, folds: int, seed: int = 0, grouped: bool = False) -> list[Dataset]:
    """The K fold datasets under ``out`` (``fold-0`` ...), reused when already written from the same dataset with
    the same folds and seed (a resumed study finds them); anything else there is refused, never overwritten.
    ``grouped``: folds by instance (see above)."""
    check_folds(dataset, folds)
    pool = dataset.rows(["train", "valid"]).reset_index(drop=True)
    if grouped:
        groups = instance_groups(dataset)
        if groups is None:
            raise DatasetError(
                f"--group-folds: {dataset.root} records no object instances ({OBJECTS_FILE}); use plain folds"
            )
        membership = grouped_membership(list(pool["image"]), groups, folds, seed)
        check_grouped(dataset, membership, f"--folds {folds} --group-folds")
    else:
        assigned = fold_assignment(dataset.targets(["train", "valid"]), folds, seed)
        membership = (assigned[:, None] == np.arange(folds)[None, :]).astype(np.int64)
    made = []
    for fold in range(folds):
        root = Path(out) / f"fold-{fold}"
        wanted = {"of": dataset.fingerprint, "of_name": dataset.name, "folds": folds, "fold": fold, "seed": seed}
        wanted.update({"grouped": "instances"} if grouped else {})
        if (root / "labels.csv").exists():
            existing = load_dataset(root)
            if existing.info.get(FOLDS_KEY) != wanted:
                raise DatasetError(f"{root}: holds another dataset or other folds; remove it or choose another folder")
            made.append(existing)
            continue
        kept = membership[:, fold] >= 0
        items = pool[kept].assign(split=np.where(membership[kept, fold] == 1, "valid", "train"))
        items = pd.concat([items, dataset.rows("test")], ignore_index=True)
        apart = ", each instance in one fold" if grouped else ""
        made.append(
            write_derived(
                dataset,
                root,
                items,
                name=f"{dataset.name} (fold {fold} of {folds})",
                description=f"{dataset.name}'s train + valid images with fold {fold} of {folds} as valid{apart}; "
                "test whole",
                extra={FOLDS_KEY: wanted},
            )
        )
    return made
