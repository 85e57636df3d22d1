"""Importers from common layouts into the dataset format: folder-per-class, fastai CSV, Pascal VOC, COCO."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from benchmarks.errors import DatasetError

from .dataset import Dataset, label_matrix, load_dataset, write_dataset
from .image_hashes import duplicate_groups, file_sha256, perceptual_signature
from .images import is_image_file
from .splitting import stratified_splits

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "test": "test",
}


@dataclass
class Record:
    """One source image with its labels and, when the source says so, its split."""

    source: Path
    target: str  # path under images/ in the new dataset
    labels: tuple[str, ...]
    split: str | None = None


def read_folder(src: Path) -> list[Record]:
    """``SRC/<label>/*.jpg`` (single-label), or ``SRC/<split>/<label>/*.jpg`` with train/valid/test folders."""
    _need_dir(src)
    top = [p for p in sorted(src.iterdir()) if p.is_dir()]
    if top and all(p.name.lower() in SPLIT_ALIASES for p in top):
        roots = [(p, SPLIT_ALIASES[p.name.lower()]) for p in top]
    else:
        roots = [(src, None)]
    records = []
    for root, split in roots:
        for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for image in sorted(p for p in label_dir.rglob("*") if p.is_file() and is_image_file(p)):
                records.append(Record(image, str(image.relative_to(src)), (label_dir.name,), split))
    if not records:
        raise DatasetError(f"{src}: no images found in class folders (expected SRC/<label>/<image>)")
    return records


def read_fastai_csv(csv_path: Path, images: Path | None = None) -> list[Record]:
    """fastai multi-label CSV (``fname,labels[,is_valid]``, labels space-separated, like Planet)."""
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: CSV file not found")
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    if table.shape[1] < 2:
        raise DatasetError(f"{csv_path}: needs at least two columns (file name, space-separated labels)")
    name_col = (
        "fname" if "fname" in table.columns else "image_name" if "image_name" in table.columns else table.columns[0]
    )
    label_col = next((c for c in ("labels", "tags", "label") if c in table.columns), table.columns[1])
    images = images or csv_path.parent
    suffixes = ("", ".jpg", ".jpeg", ".png")
    records = []
    for index, row in enumerate(table.itertuples(index=False)):
        name = str(getattr(row, name_col)).strip()
        path = next((images / (name + s) for s in suffixes if (images / (name + s)).is_file()), None)
        if path is None:
            raise DatasetError(
                f"{csv_path} row {index + 2}: image '{name}' not found under {images} (use --images DIR)"
            )
        split = None
        if "is_valid" in table.columns:
            split = "valid" if str(row.is_valid).strip().lower() in ("1", "true", "yes") else None
        labels = tuple(dict.fromkeys(str(getattr(row, label_col)).split()))
        records.append(Record(path, str(path.relative_to(images)), labels, split))
    return records


def read_voc(src: Path) -> list[Record]:
    """Pascal VOC: every ``Annotations/*.xml`` gives its ``<object><name>`` values as labels."""
    annotations = src / "Annotations"
    _need_dir(annotations)
    image_dir = src / "JPEGImages"
    records = []
    for xml_path in sorted(annotations.glob("*.xml")):
        try:
            tree = ET.parse(xml_path).getroot()
        except ET.ParseError as exc:
            raise DatasetError(f"{xml_path}: not valid XML ({exc})") from None
        filename = (tree.findtext("filename") or xml_path.stem + ".jpg").strip()
        path = image_dir / filename
        if not path.is_file():
            raise DatasetError(f"{xml_path}: its image {path} is missing")
        names = [(obj.findtext("name") or "").strip() for obj in tree.iter("object")]
        records.append(Record(path, filename, tuple(dict.fromkeys(n for n in names if n))))
    if not records:
        raise DatasetError(f"{annotations}: no .xml annotation files")
    return records


def read_coco(json_path: Path, images: Path | None = None) -> list[Record]:
    """COCO instances JSON: the categories annotated in an image are its labels."""
    if not json_path.is_file():
        raise DatasetError(f"{json_path}: COCO JSON file not found")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        categories = {c["id"]: c["name"] for c in data["categories"]}
        files = {im["id"]: im["file_name"] for im in data["images"]}
        present: dict[int, list[str]] = {i: [] for i in files}
        for ann in data.get("annotations", []):
            present[ann["image_id"]].append(categories[ann["category_id"]])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{json_path}: not a COCO instances file ({exc.__class__.__name__}: {exc})") from None
    images = images or json_path.parent
    records = []
    for image_id, name in files.items():
        path = images / name
        if not path.is_file():
            raise DatasetError(f"{json_path}: image '{name}' not found under {images} (use --images DIR)")
        records.append(Record(path, name, tuple(dict.fromkeys(sorted(present[image_id])))))
    return records


def materialize(records: list[Record], dest: Path, *, name: str, source: str, seed: int = 0) -> Dataset:
    """Copy images, make the missing splits (stratified, duplicates kept together), write the dataset."""
    if dest.exists() and any(dest.iterdir()):
        raise DatasetError(f"{dest}: already exists and is not empty; choose a new destination")
    renames = {label: "_".join(label.split()) for r in records for label in r.labels}
    labels = sorted(set(renames.values()))
    if not labels:
        raise DatasetError(f"{source}: no labels found")
    label_sets = [tuple(renames[x] for x in r.labels) for r in records]
    exact = [file_sha256(r.source) for r in tqdm(records, desc="hashing images", unit="img")]
    signatures = [perceptual_signature(r.source) for r in tqdm(records, desc="perceptual hashes", unit="img")]
    groups = duplicate_groups(exact, [s[0] for s in signatures], [s[1] for s in signatures])
    fixed = [r.split for r in records]
    splits = (
        stratified_splits(label_matrix(label_sets, labels), groups, fixed=fixed, seed=seed)
        if None in fixed
        else np.array(fixed)
    )
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for record in tqdm(records, desc="copying images", unit="img"):
        target = staging / "images" / record.target
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(record.source, target)
    items = pd.DataFrame({"image": ["images/" + r.target for r in records], "labels": label_sets, "split": splits})
    write_dataset(
        staging,
        items,
        labels,
        name=name,
        source=source,
        build={"importer_seed": seed, "splits_made": None in fixed},
        extra={"label_renames": {k: v for k, v in renames.items() if k != v}},
    )
    if dest.exists():
        dest.rmdir()
    staging.rename(dest)
    return load_dataset(dest, require_train_positives=False)


def _need_dir(path: Path) -> None:
    if not path.is_dir():
        raise DatasetError(f"{path}: folder not found")
