"""Roboflow: export our dataset as Roboflow's multi-label classification CSV, and bring a hosted model's
predictions (live through its HTTP inference API, or saved responses) back as a run.

Export layout (what Roboflow's "Multi-Label Classification CSV" import reads): ``train/``, ``valid/``,
``test/`` folders with the images and a ``_classes.csv`` each — ``filename`` then one 0/1 column per label.
Responses: single-label models answer ``{"predictions": [{"class", "confidence"}, ...]}``, multi-label
models ``{"predictions": {"<class>": {"confidence": ...}}, "predicted_classes": [...]}``; both are read.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.data.dataset import SPLITS, Dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.results import EVAL_SPLITS
from benchmarks.exports.adapter_runs import match_to_dataset, write_adapter_run
from benchmarks.exports.class_mapping import map_classes

from .http_calls import cached_responses, post_json

ROBOFLOW_URL = "https://classify.roboflow.com"


def export_for_roboflow(dataset: Dataset, out: Path) -> dict[str, int]:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BenchmarkError(f"{out}: already exists and is not empty; choose another folder")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    counts = {}
    for split in SPLITS:
        rows = dataset.rows(split)
        (staging / split).mkdir(parents=True)
        table = {"filename": []} | {label: [] for label in dataset.labels}
        for rel, labels in zip(rows["image"], rows["labels"]):
            name = rel.replace("/", "__")
            shutil.copy2(dataset.root / rel, staging / split / name)
            table["filename"].append(name)
            for label in dataset.labels:
                table[label].append(int(label in labels))
        pd.DataFrame(table).to_csv(staging / split / "_classes.csv", index=False)
        counts[split] = len(rows)
    staging.rename(out)
    return counts


def response_scores(response: dict, where: str) -> dict[str, float]:
    predictions = response.get("predictions")
    if isinstance(predictions, dict):  # multi-label model
        return {str(name): float(value.get("confidence", 0.0)) for name, value in predictions.items()}
    if isinstance(predictions, list):  # single-label model: one softmax
        return {str(p["class"]): float(p.get("confidence", 0.0)) for p in predictions}
    raise BenchmarkError(f"{where}: not a Roboflow classification response (no 'predictions')")


def read_saved_responses(source: Path) -> dict[str, dict]:
    """JSONL lines ``{"image": <path or name>, "response": {...}}``, or a folder of ``<image name>.json`` files."""
    source = Path(source)
    found: dict[str, dict] = {}
    if source.is_dir():
        for path in sorted(source.glob("*.json")):
            found[path.name.removesuffix(".json")] = json.loads(path.read_text(encoding="utf-8"))
    elif source.is_file():
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                    found[record["image"]] = record["response"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise BenchmarkError(f'{source}:{number}: expected {{"image": ..., "response": {{...}}}}') from None
    else:
        raise BenchmarkError(f"{source}: not found")
    if not found:
        raise BenchmarkError(f"{source}: no saved Roboflow responses inside")
    return found


def classify(paths: list[Path], model: str, api_key: str, endpoint: str = ROBOFLOW_URL) -> list[dict]:
    """POST each image (base64) to ``{endpoint}/{project}/{version}``; answers cached by image hash."""
    import requests

    if not api_key:
        raise BenchmarkError("Roboflow: pass --api-key or set ROBOFLOW_API_KEY")
    if model.count("/") != 1:
        raise BenchmarkError(f"--model {model!r}: expected PROJECT/VERSION, e.g. stampscenes/3")
    session = requests.Session()
    url = f"{endpoint.rstrip('/')}/{model}?api_key={api_key}"

    def call(content: bytes) -> dict:
        return post_json(
            session,
            url,
            "Roboflow",
            data=base64.b64encode(content),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    return cached_responses(paths, "roboflow", call, desc=f"Roboflow {model}", variant=f"{endpoint} {model}")


def responses_to_run(per_image: list[dict], dataset: Dataset, results: Path, mapping_file: Path | None, params: dict):
    scores = [response_scores(r, f"response for image {i}") for i, r in enumerate(per_image)]
    classes = sorted({name for s in scores for name in s})
    mapping = map_classes(classes, dataset.labels, mapping_file)
    for line in mapping.report():
        print(f"  {line}")
    class_scores = np.array([[s.get(c, 0.0) for c in classes] for s in scores])
    multi_label = all(isinstance(r.get("predictions"), dict) for r in per_image)
    return write_adapter_run(
        dataset,
        results,
        kind="roboflow",
        label_scores=mapping.label_scores(class_scores),
        params={**params, "classes": classes, "single_label_by_construction": not multi_label},
        mapping=mapping,
    )


def ingest_saved(source: Path, dataset: Dataset, results: Path, mapping_file: Path | None = None):
    per_image = match_to_dataset(read_saved_responses(source), dataset, source)
    return responses_to_run(per_image, dataset, results, mapping_file, {"source": str(Path(source).resolve())})


def classify_dataset(
    dataset: Dataset,
    results: Path,
    model: str,
    api_key: str,
    mapping_file: Path | None = None,
    endpoint: str = ROBOFLOW_URL,
):
    per_image = classify(dataset.image_paths(EVAL_SPLITS), model, api_key, endpoint)
    return responses_to_run(per_image, dataset, results, mapping_file, {"model": model, "endpoint": endpoint})
