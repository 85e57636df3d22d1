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
from .paths import inside, relative_target
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
            if not label_dir.name.strip():
                raise DatasetError(f"{label_dir}: a class folder whose name is only spaces; rename it to the label")
            for image in sorted(p for p in label_dir.rglob("*") if p.is_file() and is_image_file(p)):
                records.append(Record(image, str(image.relative_to(src)), (label_dir.name,), split))
    if not records:
        raise DatasetError(f"{src}: no images found in class folders (expected SRC/<label>/<image>)")
    return records


def read_fastai_csv(csv_path: Path, images: Path | None = None) -> list[Record]:
    """fastai multi-label CSV (``fname,labels[,is_valid]``, labels space-separated, like Planet)."""
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: CSV file not found")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else exc.__class__.__name__
        raise DatasetError(
            f"{csv_path}: not a readable CSV ({detail}); expected columns fname,labels[,is_valid]"
        ) from None
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
        name = relative_target(getattr(row, name_col), f"{csv_path} row {index + 2}", DatasetError)
        candidates = [inside(images, name + s, f"{csv_path} row {index + 2}", DatasetError) for s in suffixes]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise DatasetError(
                f"{csv_path} row {index + 2}: image '{name}' not found under {images} (use --images DIR)"
            )
        split = None
        if "is_valid" in table.columns:
            split = "valid" if str(row.is_valid).strip().lower() in ("1", "true", "yes") else None
        labels = tuple(dict.fromkeys(str(getattr(row, label_col)).split()))
        records.append(Record(path, str(path.relative_to(images.resolve())), labels, split))
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
        filename = relative_target(
            tree.findtext("filename") or xml_path.stem + ".jpg", f"{xml_path} <filename>", DatasetError
        )
        path = inside(image_dir, filename, f"{xml_path} <filename>", DatasetError)
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
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{json_path}: not a COCO instances file ({exc.__class__.__name__}: {exc})") from None
    for category_id, category in categories.items():
        if not isinstance(category, str) or not category.strip():
            raise DatasetError(f"{json_path}: category {category_id} has an empty name; name it or remove it")
    images = images or json_path.parent
    records = []
    for image_id, raw_name in files.items():
        name = relative_target(raw_name, f"{json_path} image {image_id} file_name", DatasetError)
        path = inside(images, name, f"{json_path} image {image_id} file_name", DatasetError)
        if not path.is_file():
            raise DatasetError(f"{json_path}: image '{name}' not found under {images} (use --images DIR)")
        records.append(Record(path, name, tuple(dict.fromkeys(sorted(present[image_id])))))
    return records


def materialize(records: list[Record], dest: Path, *, name: str, source: str, seed: int = 0) -> Dataset:
    """Copy images, make the missing splits (stratified, duplicates kept together), write the dataset."""
    if dest.exists() and not dest.is_dir():
        raise DatasetError(f"{dest}: is a file; choose a new folder as the destination")
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
    try:
        _copy_and_write(
            records, staging, label_sets, labels, splits, renames, name=name, source=source, seed=seed, fixed=fixed
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a failed import leaves nothing behind
        raise
    if dest.exists():
        dest.rmdir()
    staging.rename(dest)
    return load_dataset(dest, require_train_positives=False)


def _copy_and_write(records, staging: Path, label_sets, labels, splits, renames, *, name, source, seed, fixed) -> None:
    for record in tqdm(records, desc="copying images", unit="img"):
        target = inside(staging / "images", record.target, f"{record.source}", DatasetError)
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


def _need_dir(path: Path) -> None:
    if not path.is_dir():
        raise DatasetError(f"{path}: folder not found")
