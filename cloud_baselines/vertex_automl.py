"""Vertex AI AutoML Vision: import files for our splits, batch-prediction ingest, Edge exports evaluated locally.

Vertex label names allow letters, digits and underscores and must start with a letter; names are made
valid and the mapping is written beside the import files (``label_mapping.json``) and used on ingest.
Splits map to Vertex's ML_USE: train → training, valid → validation, test → test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from benchmarks.atomic import atomic_write_json, atomic_write_text
from benchmarks.data.dataset import Dataset
from benchmarks.data.paths import inside
from benchmarks.errors import BenchmarkError
from benchmarks.exports.adapter_runs import evaluate_classifier, match_to_dataset, write_adapter_run
from benchmarks.exports.class_mapping import map_classes, read_plain_labels
from benchmarks.exports.image_prep import automl_fit

from .tflite_model import TFLiteClassifier

ML_USE = {"train": "training", "valid": "validation", "test": "test"}
MAPPING_FILE = "label_mapping.json"


def vertex_label(name: str) -> str:
    """Letters, digits, underscores; starts with a letter."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if cleaned[:1].isalpha() else f"l_{cleaned}"


def export_import_files(dataset: Dataset, out: Path, gcs_prefix: str) -> dict[str, Path]:
    """``import.csv`` and ``import.jsonl`` (multi-label schema) naming images under ``gcs_prefix``, and the label
    mapping."""
    if not gcs_prefix.startswith("gs://"):
        raise BenchmarkError(
            f"--gcs-prefix {gcs_prefix!r}: must start with gs:// (the bucket folder you upload images/ to)"
        )
    names = {label: vertex_label(label) for label in dataset.labels}
    if len(set(names.values())) != len(names):
        raise BenchmarkError("two labels become the same Vertex name after cleaning; rename one in labels.csv")
    prefix = gcs_prefix.rstrip("/")
    csv_lines, jsonl_lines = [], []
    for rel, labels, split in zip(dataset.items["image"], dataset.items["labels"], dataset.items["split"]):
        uri = f"{prefix}/{rel}"
        vertex_names = [names[label] for label in labels]
        csv_lines.append(",".join([ML_USE[split], uri, *vertex_names]))
        jsonl_lines.append(
            json.dumps(
                {
                    "imageGcsUri": uri,
                    "classificationAnnotations": [{"displayName": n} for n in vertex_names],
                    "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": ML_USE[split]},
                }
            )
        )
    out = Path(out)
    written = {
        "csv": atomic_write_text(out / "import.csv", "\n".join(csv_lines) + "\n"),
        "jsonl": atomic_write_text(out / "import.jsonl", "\n".join(jsonl_lines) + "\n"),
        "mapping": atomic_write_json(out / MAPPING_FILE, {v: k for k, v in names.items()}),
    }
    return written


def read_batch_predictions(paths: list[Path]) -> dict[str, dict[str, float]]:
    """Vertex batch output lines ``{"instance": {"content": uri}, "prediction": {ids, displayNames, confidences}}``
    → {uri: {display name: confidence}}. Classes a line leaves out (confidenceThreshold / maxPredictions) score 0."""
    found: dict[str, dict[str, float]] = {}
    for path in paths:
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                uri = record["instance"]["content"]
                prediction = record["prediction"]
                names, confidences = prediction["displayNames"], prediction["confidences"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise BenchmarkError(
                    f"{path}:{number}: not a Vertex image-classification prediction line (instance.content + "
                    "prediction.displayNames/confidences)"
                ) from None
            if len(names) != len(confidences):
                raise BenchmarkError(f"{path}:{number}: {len(names)} displayNames but {len(confidences)} confidences")
            found[uri] = {str(n): float(c) for n, c in zip(names, confidences)}
    return found


def prediction_files(source: Path) -> list[Path]:
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*.jsonl") if not p.name.startswith("errors"))
    elif source.is_file():
        files = [source]
    else:
        raise BenchmarkError(f"{source}: not found")
    if not files:
        raise BenchmarkError(f"{source}: no predictions_*.jsonl files inside")
    return files


def ingest_batch_predictions(source: Path, dataset: Dataset, results: Path, mapping_file: Path | None = None):
    """Match prediction URIs to dataset images by their path inside the dataset folder (``…/images/x.jpg``)."""
    predictions = read_batch_predictions(prediction_files(source))
    per_image = match_to_dataset(predictions, dataset, source)
    classes = sorted({name for scores in predictions.values() for name in scores})
    mapping = map_classes(classes, dataset.labels, mapping_file)
    for line in mapping.report():
        print(f"  {line}")
    class_scores = np.array([[scores.get(c, 0.0) for c in classes] for scores in per_image])
    params = {"source": str(Path(source).resolve()), "classes": classes, "format": "vertex batch prediction jsonl"}
    return write_adapter_run(
        dataset,
        results,
        kind="vertex_automl",
        label_scores=mapping.label_scores(class_scores),
        params=params,
        mapping=mapping,
    )


def open_edge_export(export: Path):
    """An AutoML Vision Edge export in any of its forms → (classifier, class names, the file it came from):
    TFLite (model.tflite + dict.txt, or an ML Kit bundle), TensorFlow.js (model.json graph model + dict.txt),
    or Container (a SavedModel folder; its labels come from the model)."""
    export = Path(export)
    if not export.exists():
        raise BenchmarkError(f"{export}: not found")
    folder = export if export.is_dir() else export.parent
    if (folder / "saved_model.pb").is_file():
        from .container_model import ContainerClassifier

        classifier = ContainerClassifier(folder)
        return classifier, classifier.classes, folder / "saved_model.pb"
    if export.name == "model.json" or (export.is_dir() and (folder / "model.json").is_file()):
        from .tfjs_graph import GraphModelClassifier

        return (
            GraphModelClassifier(folder / "model.json"),
            read_plain_labels(folder / "dict.txt"),
            folder / "model.json",
        )
    model = export if export.is_file() else folder / "model.tflite"
    labels_file = folder / "dict.txt"
    manifest = folder / "manifest.json"
    if manifest.is_file():  # ML Kit bundles; the iOS copy has a trailing comma, so parse leniently
        text = re.sub(r",\s*}", "}", manifest.read_text(encoding="utf-8"))
        try:
            spec = json.loads(text)
        except json.JSONDecodeError:
            raise BenchmarkError(f"{manifest}: not valid JSON") from None
        if not isinstance(spec, dict):
            raise BenchmarkError(f"{manifest}: expected a JSON object with modelFile and labelsFile")
        model = inside(folder, str(spec.get("modelFile", model.name)), f"{manifest}: modelFile", BenchmarkError)
        labels_file = inside(
            folder, str(spec.get("labelsFile", labels_file.name)), f"{manifest}: labelsFile", BenchmarkError
        )
    if not model.is_file():
        raise BenchmarkError(
            f"{export}: no AutoML Edge export found (expected model.tflite + dict.txt, model.json + dict.txt + "
            "*.bin, or a Container export's saved_model.pb)"
        )
    classifier = TFLiteClassifier(model, automl_fit)
    return classifier, read_plain_labels(labels_file), model


def evaluate_edge_export(export: Path, dataset: Dataset, results: Path, mapping_file: Path | None = None):
    classifier, classes, source = open_edge_export(export)
    params = {"export": str(Path(export).resolve()), "format": f"automl edge {classifier.describe()['format']}"}
    return evaluate_classifier(
        classifier,
        classes,
        source,
        dataset,
        results,
        mapping_file,
        kind="vertex_automl",
        params=params,
        desc=f"AutoML Edge ({classifier.describe()['format']})",
        label_file="dict.txt",
    )
