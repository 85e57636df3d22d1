"""The dataset format, validated in one place.

A dataset is a folder with ``images/`` (any nesting), ``labels.csv`` (columns ``image``, ``labels``,
``split``) and ``dataset.json`` (name, description, ordered labels, source, build parameters and a
content fingerprint). Every other module reads datasets through :func:`load_dataset`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.atomic import atomic_write, atomic_write_json
from benchmarks.errors import DatasetError

from .paths import inside

SPLITS = ("train", "valid", "test")
LABELS_CSV = "labels.csv"
DATASET_JSON = "dataset.json"
COLUMNS = ("image", "labels", "split")


@dataclass
class Dataset:
    """A loaded, validated dataset; ``items`` has one row per image with ``labels`` as tuples."""

    root: Path
    name: str
    labels: list[str]
    items: pd.DataFrame
    fingerprint: str
    info: dict = field(default_factory=dict)

    def rows(self, split: str | Sequence[str] | None = None) -> pd.DataFrame:
        if split is None:
            return self.items
        splits = [split] if isinstance(split, str) else list(split)
        return self.items[self.items["split"].isin(splits)]

    def targets(self, split: str | Sequence[str] | None = None) -> np.ndarray:
        """0/1 matrix (images × labels) in dataset label order."""
        return label_matrix(self.rows(split)["labels"], self.labels)

    def image_paths(self, split: str | Sequence[str] | None = None) -> list[Path]:
        return [self.root / rel for rel in self.rows(split)["image"]]

    def counts(self) -> pd.DataFrame:
        """Positives per label (rows) and split (columns), plus image totals."""
        table = {s: self.targets(s).sum(axis=0) for s in SPLITS}
        frame = pd.DataFrame(table, index=self.labels)
        frame.loc["(images)"] = [int((self.items["split"] == s).sum()) for s in SPLITS]
        return frame.astype(int)


def label_matrix(label_sets: Iterable[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(labels)}
    label_sets = list(label_sets)
    matrix = np.zeros((len(label_sets), len(labels)), dtype=np.int8)
    for row, names in enumerate(label_sets):
        for name in names:
            matrix[row, index[name]] = 1
    return matrix


def parse_labels(cell: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(cell.split()))


def load_dataset(root: Path | str, *, require_train_positives: bool = True) -> Dataset:
    """Read and validate a dataset folder; every problem is one :class:`DatasetError` line."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: dataset folder not found; build the default one with `python -m benchmarks build-default {root}` "
            "or import yours with `python -m benchmarks import`"
        )
    csv_path = root / LABELS_CSV
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: missing; a dataset needs labels.csv with columns image, labels, split")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DatasetError(f"{csv_path}: not a readable CSV ({exc})") from None
    for column in COLUMNS:
        if column not in table.columns:
            raise DatasetError(f"{csv_path}: missing column '{column}' (expected columns: {', '.join(COLUMNS)})")
    info = _read_info(root)
    declared = info.get("labels")
    items = _validate_rows(root, csv_path, table, declared)
    labels = list(declared) if declared else sorted({name for names in items["labels"] for name in names})
    if require_train_positives:
        _check_labels_seen_in_train(csv_path, items, labels)
    fingerprint = compute_fingerprint(root, items["image"])
    return Dataset(
        root=root, name=info.get("name", root.name), labels=labels, items=items, fingerprint=fingerprint, info=info
    )


def _read_info(root: Path) -> dict:
    path = root / DATASET_JSON
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{path}: not valid JSON ({exc}); fix it or delete it to infer labels from labels.csv"
        ) from None
    if not isinstance(info, dict):
        raise DatasetError(
            f"{path}: expected a JSON object (name, labels, ...), found {type(info).__name__}; fix it or delete it"
        )
    labels = info.get("labels")
    if labels is not None and (
        not isinstance(labels, list)
        or not all(isinstance(x, str) and x and not any(c.isspace() for c in x) for x in labels)
    ):
        raise DatasetError(f"{path}: field 'labels' must be a list of label names without spaces")
    return info


def _validate_rows(root: Path, csv_path: Path, table: pd.DataFrame, declared: list[str] | None) -> pd.DataFrame:
    known = set(declared) if declared else None
    seen: set[str] = set()
    rows = []
    for index, record in enumerate(table.itertuples(index=False)):
        where = f"{csv_path} row {index + 2}"  # +2: header line and 1-based numbering
        image, cell, split = str(record.image).strip(), str(record.labels), str(record.split).strip()
        if not image:
            raise DatasetError(f"{where}: empty 'image' field")
        if split not in SPLITS:
            raise DatasetError(f"{where}: unknown split '{split}' (use one of: {', '.join(SPLITS)})")
        if image in seen:
            raise DatasetError(f"{where}: image '{image}' is listed twice")
        seen.add(image)
        path = inside(root, image, f"{where}: image path", DatasetError)
        if not path.is_file():
            raise DatasetError(f"{where}: image '{image}' is listed but missing from {root}")
        names = parse_labels(cell)
        if known is not None:
            unknown = [name for name in names if name not in known]
            if unknown:
                raise DatasetError(f"{where}: label '{unknown[0]}' is not in the labels of {root / DATASET_JSON}")
        rows.append((image, names, split))
    if not rows:
        raise DatasetError(f"{csv_path}: has no rows")
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _check_labels_seen_in_train(csv_path: Path, items: pd.DataFrame, labels: list[str]) -> None:
    train = {name for names in items.loc[items["split"] == "train", "labels"] for name in names}
    for split in ("valid", "test"):
        for names in items.loc[items["split"] == split, "labels"]:
            for name in names:
                if name not in train:
                    raise DatasetError(
                        f"{csv_path}: label '{name}' appears in {split} but never in train; "
                        "add training images for it or re-split with `python -m benchmarks eda DATASET --resplit`"
                    )


def compute_fingerprint(root: Path, images: Iterable[str]) -> str:
    """SHA-256 over labels.csv and every listed image's bytes: equal fingerprints mean identical data."""
    digest = hashlib.sha256()
    digest.update((root / LABELS_CSV).read_bytes())
    for rel in images:
        digest.update(rel.encode("utf-8") + b"\0")
        digest.update((root / rel).read_bytes())
    return "sha256:" + digest.hexdigest()[:32]


def write_dataset(
    root: Path | str,
    items: pd.DataFrame,
    labels: Sequence[str],
    *,
    name: str,
    description: str = "",
    source: str = "",
    build: dict | None = None,
    extra: dict | None = None,
) -> Dataset:
    """Write labels.csv and dataset.json for images already placed under ``root``; returns the loaded dataset."""
    root = Path(root)
    bad = [label for label in labels if not label or any(c.isspace() for c in label)]
    if bad:
        raise DatasetError(f"label name {bad[0]!r} is invalid: label names must be non-empty and have no spaces")
    table = pd.DataFrame(
        {
            "image": items["image"].astype(str),
            "labels": [" ".join(names) for names in items["labels"]],
            "split": items["split"].astype(str),
        }
    )
    atomic_write(root / LABELS_CSV, lambda tmp: table.to_csv(tmp, index=False))
    info = {
        "name": name,
        "description": description,
        "labels": list(labels),
        "source": source,
        "build": build or {},
        **(extra or {}),
        "fingerprint": compute_fingerprint(root, table["image"]),
    }
    atomic_write_json(root / DATASET_JSON, info)
    return load_dataset(root, require_train_positives=False)
