"""Multi-label stratified splits that keep duplicate groups together (iterative stratification)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

from benchmarks.errors import DatasetError

DEFAULT_FRACTIONS = {"train": 0.7, "valid": 0.15, "test": 0.15}


def stratified_splits(
    targets: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    fractions: dict[str, float] | None = None,
    fixed: Sequence[str | None] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Assign train/valid/test per image.

    Whole duplicate groups go to one split, stratified on the union of their labels
    (Sechidis et al.'s iterative stratification, via ``iterative-stratification``). Rows whose split is
    already ``fixed`` keep it, and pull their group with them; the free rows fill the splits that are missing.
    """
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    n = len(targets)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    assigned = np.array([s or "" for s in (fixed if fixed is not None else [None] * n)], dtype=object)
    for group in np.unique(groups[assigned != ""]):  # a group follows its already-split member
        members = groups == group
        assigned[members & (assigned == "")] = assigned[members & (assigned != "")][0]
    free = assigned == ""
    wanted = [s for s in ("test", "valid") if s not in set(assigned[~free])]
    if free.any():
        free_groups = np.unique(groups[free])
        group_targets = np.stack([targets[(groups == g) & free].max(axis=0) for g in free_groups])
        remaining = np.arange(len(free_groups))
        share_left = sum(fractions[s] for s in wanted) + fractions["train"]
        for split in wanted:
            size = fractions[split] / share_left
            share_left -= fractions[split]
            if len(remaining) < 2 or round(size * len(remaining)) < 1:
                raise DatasetError(
                    f"too few images ({n}) to make a '{split}' split; add images or give splits explicitly"
                )
            splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=size, random_state=seed)
            keep, take = next(splitter.split(np.zeros(len(remaining)), group_targets[remaining]))
            for g in free_groups[remaining[take]]:
                assigned[(groups == g) & free] = split
            remaining = remaining[keep]
        for g in free_groups[remaining]:
            assigned[(groups == g) & free] = "train"
    _move_train_positives(targets, groups, assigned, fixed)
    return assigned.astype(str)


def _move_train_positives(targets: np.ndarray, groups: np.ndarray, assigned: np.ndarray, fixed) -> None:
    """A label with no training positive cannot be learnt: move one of its free groups into train."""
    movable = np.ones(len(assigned), dtype=bool) if fixed is None else np.array([s is None for s in fixed])
    for label in range(targets.shape[1]):
        in_train = targets[assigned == "train", label].sum()
        candidates = np.flatnonzero((targets[:, label] == 1) & movable & (assigned != "train"))
        if in_train == 0 and len(candidates):
            group = groups[candidates[0]]
            assigned[groups == group] = "train"
