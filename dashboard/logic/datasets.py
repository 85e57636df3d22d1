"""The dataset page's logic: which datasets there are, their splits, EDA report, gallery and image lookups."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from benchmarks.data.dataset import Dataset, load_dataset
from benchmarks.errors import BenchmarkError

DEFAULT_DATA_ROOT = Path(os.environ.get("DASHBOARD_DATA", "data"))


def find_datasets(root: Path | None = None) -> list[Path]:
    """Dataset folders (with dataset.json) directly under ``root`` (default ``DASHBOARD_DATA`` or data/)."""
    root = Path(root or DEFAULT_DATA_ROOT)
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("*/dataset.json"))


def split_counts(dataset: Dataset) -> pd.DataFrame:
    return dataset.counts()


def eda_report(dataset: Dataset) -> dict | None:
    path = dataset.root / "eda" / "report.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except json.JSONDecodeError:
        return None


def gallery(
    dataset: Dataset,
    label: str | None = None,
    split: str | None = None,
    flagged: set[str] | None = None,
    limit: int = 48,
) -> pd.DataFrame:
    rows = dataset.items
    if label:
        rows = rows[rows["labels"].map(lambda labels: label in labels)]
    if split:
        rows = rows[rows["split"] == split]
    if flagged is not None:
        rows = rows[rows["image"].isin(flagged)]
    return rows.head(limit)


def flagged_images(report: dict | None) -> set[str]:
    """Images named in any EDA check that is not ok."""
    found: set[str] = set()
    for check in (report or {}).get("checks", []):
        if check.get("verdict") not in ("ok", "info"):
            for example in check.get("examples", []):
                found.update(example if isinstance(example, list) else [example])
    return {str(x) for x in found}


def dataset_image(dataset: Dataset, rel: str) -> tuple[str, str, list[str]]:
    row = dataset.items.loc[dataset.items["image"] == rel].iloc[0]
    return rel, row["split"], list(row["labels"])


def dataset_image_with_bytes(
    dataset: Dataset, facts: pd.DataFrame, content: bytes
) -> tuple[str, str, list[str]] | None:
    """An upload that is byte-for-byte one of the dataset's images (facts: ``eda.scan_images``' sha256 column)."""
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    matches = facts.loc[facts["sha256"] == digest, "image"]
    return dataset_image(dataset, matches.iloc[0]) if len(matches) else None


def load_dataset_safely(path: Path) -> tuple[Dataset | None, str | None]:
    try:
        return load_dataset(path), None
    except BenchmarkError as exc:
        return None, str(exc)
