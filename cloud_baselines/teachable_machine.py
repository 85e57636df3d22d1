"""Teachable Machine: export a dataset for TM's image project, and evaluate what TM exports.

Export strategy for multi-label data: TM trains one softmax over classes, so each label becomes a class
holding every training image that carries it (an image with two labels is uploaded to both), plus a
``none`` class for images with no label. TM pays for this: co-occurring labels compete for one probability
mass, so a two-label image can score at most ~0.5 on each — the per-label thresholds tuned on valid
recover part of it. Only the train split is exported (TM keeps its own 15% holdout inside it): valid stays
unseen, so the thresholds tuned on it are honest, and the test split is never exported.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from benchmarks.atomic import atomic_write_json
from benchmarks.data.dataset import Dataset
from benchmarks.data.paths import inside
from benchmarks.errors import BenchmarkError
from benchmarks.exports.adapter_runs import evaluate_classifier
from benchmarks.exports.class_mapping import read_indexed_labels
from benchmarks.exports.image_prep import teachable_machine_fit
from benchmarks.exports.tm_keras_model import NONE_CLASS, UPLOAD_SPLITS, load_h5, load_tfjs

from .tflite_model import TFLiteClassifier

KIND = "teachable_machine"


def export_for_tm(dataset: Dataset, out: Path) -> dict[str, int]:
    """``OUT/<class>/`` folders and ``OUT/<class>.zip`` files, one per label (+ ``none``), from the train split."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BenchmarkError(f"{out}: already exists and is not empty; choose another folder")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    counts: dict[str, int] = {}
    rows = dataset.rows(UPLOAD_SPLITS)
    for rel, labels in zip(rows["image"], rows["labels"]):
        for cls in labels or [NONE_CLASS]:
            folder = staging / cls
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / rel.replace("/", "__")
            shutil.copy2(dataset.root / rel, target)
            counts[cls] = counts.get(cls, 0) + 1
    for cls in counts:
        with zipfile.ZipFile(staging / f"{cls}.zip", "w", zipfile.ZIP_STORED) as archive:
            for image in sorted((staging / cls).iterdir()):
                archive.write(image, image.name)
    atomic_write_json(
        staging / "export.json",
        {
            "dataset": dataset.name,
            "fingerprint": dataset.fingerprint,
            "strategy": "one class per label (+ none); multi-label images in every class they carry",
            "classes": counts,
            "splits_exported": UPLOAD_SPLITS,
        },
    )
    staging.rename(out)
    return counts


def open_tm_export(export: Path):
    """A TM export in any of its forms → (classifier, class names, the file it came from)."""
    export = Path(export)
    if not export.exists():
        raise BenchmarkError(f"{export}: not found")
    if export.is_file() and export.suffix == ".zip":
        # Unpacked into a folder that is removed however this ends (the model is read into memory), so repeated
        # evaluations and re-opened predictors leave nothing behind; the run records the zip itself.
        with tempfile.TemporaryDirectory(prefix="tm-export-") as unpacked:
            extract_zip(export, Path(unpacked))
            return open_tm_export(Path(unpacked))
    folder = export if export.is_dir() else export.parent
    if export.is_file() and export.suffix == ".tflite":
        return _tflite(export, folder)
    if (folder / "keras_model.h5").is_file() or (export.is_file() and export.suffix == ".h5"):
        h5 = export if export.is_file() else folder / "keras_model.h5"
        return load_h5(h5), read_indexed_labels(folder / "labels.txt"), h5
    if (folder / "model.json").is_file():
        classifier, metadata = load_tfjs(folder / "model.json")
        labels = metadata.get("labels") or read_indexed_labels(folder / "labels.txt")
        return classifier, list(labels), folder / "model.json"
    for name in ("model_unquant.tflite", "model.tflite", "model_edgetpu.tflite"):
        if (folder / name).is_file():
            return _tflite(folder / name, folder)
    if (folder / "saved_model.pb").is_file():
        raise BenchmarkError(f"{export}: a SavedModel (AutoML Edge's Container export?); score it with vertex-eval")
    raise BenchmarkError(
        f"{export}: no Teachable Machine export found (expected keras_model.h5 + labels.txt, converted_keras.zip, "
        "model.json + weights.bin + metadata.json, or a .tflite + labels.txt)"
    )


MAX_UNPACKED_BYTES = 2 * 1024**3  # a TM export is a few MB; refuse zip bombs before writing anything


def extract_zip(archive_path: Path, into: Path) -> None:
    """Every member checked first: inside ``into`` (the path policy), not encrypted, a sane total size."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = archive.infolist()
            if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise BenchmarkError(f"{archive_path}: unpacks to more than 2 GB; not a Teachable Machine export")
            for member in members:
                inside(into, member.filename, f"{archive_path}: member", BenchmarkError)
                if member.flag_bits & 0x1:
                    raise BenchmarkError(
                        f"{archive_path}: member {member.filename} is encrypted; export it again without a password"
                    )
            archive.extractall(into)
    except zipfile.BadZipFile:
        raise BenchmarkError(f"{archive_path}: not a valid zip file (truncated download?)") from None
    except (RuntimeError, NotImplementedError) as exc:  # zipfile's own words for encryption / unknown compression
        raise BenchmarkError(f"{archive_path}: cannot unpack ({str(exc)[:120]})") from None


def _tflite(path: Path, folder: Path):
    return TFLiteClassifier(path, teachable_machine_fit), read_indexed_labels(folder / "labels.txt"), path


def evaluate_tm_export(
    export: Path, dataset: Dataset, results: Path, mapping_file: Path | None = None, trained_on: list[str] | None = None
):
    classifier, classes, source = open_tm_export(export)
    params = {
        "export": str(Path(export).resolve()),
        "trained_on_splits": trained_on or UPLOAD_SPLITS,
        "single_label_by_construction": True,
        "note": "softmax over TM classes; a label's score is its class's probability",
    }
    return evaluate_classifier(
        classifier,
        classes,
        source,
        dataset,
        results,
        mapping_file,
        kind=KIND,
        params=params,
        desc=f"Teachable Machine ({classifier.describe()['format']})",
        label_file="its label file",
    )
