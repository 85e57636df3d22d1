"""Turn an adapter's scores for the dataset's valid and test images into a run, scored by the shared evaluator."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from benchmarks.data.dataset import Dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.evaluate import evaluate_run
from benchmarks.evaluation.results import EVAL_SPLITS, Run, create_run, recording

from .class_mapping import ClassMapping


def match_to_dataset(by_uri: dict[str, object], dataset: Dataset, source: Path) -> list:
    """Values keyed by URI or path (``gs://bucket/x/images/a.jpg``) lined up with the valid + test images:
    the longest path suffix equal to a dataset path wins, else a unique file name."""
    rels = list(dataset.rows(EVAL_SPLITS)["image"])
    by_path: dict[str, object] = {}
    by_name: dict[str, list] = {}
    for uri, value in by_uri.items():
        parts = uri.split("://", 1)[-1].replace("__", "/").split("/")  # exports flatten paths with "__"
        for i in range(len(parts)):
            by_path.setdefault("/".join(parts[i:]), value)
        by_name.setdefault(parts[-1], []).append(value)
    matched, missing = [], []
    for rel in rels:
        if rel in by_path:
            matched.append(by_path[rel])
        elif len(by_name.get(rel.rsplit("/", 1)[-1], [])) == 1:
            matched.append(by_name[rel.rsplit("/", 1)[-1]][0])
        else:
            missing.append(rel)
    if missing:
        raise BenchmarkError(
            f"{source}: no prediction for {len(missing)} of {len(rels)} valid/test images, e.g. {missing[0]}; predict "
            "both splits"
        )
    return matched


def score_images(dataset: Dataset, predict: Callable[[Image.Image], np.ndarray], desc: str) -> tuple[np.ndarray, float]:
    """Class scores for every valid and test image (dataset order) and the seconds they took in all."""
    rows, start = [], time.perf_counter()
    for path in tqdm(dataset.image_paths(EVAL_SPLITS), desc=desc, unit="img"):
        rows.append(predict(open_rgb(path)))
    return np.stack(rows), time.perf_counter() - start


def write_adapter_run(
    dataset: Dataset,
    results: Path,
    *,
    kind: str,
    label_scores: np.ndarray,
    params: dict,
    mapping: ClassMapping | None = None,
    model: dict | None = None,
    backbone: str | None = None,
    timings: dict | None = None,
    save_model: Callable[[Path], None] | None = None,
) -> Run:
    """One run: predictions for valid + test in dataset order, then the shared evaluator's metrics.json.
    ``save_model(run_dir)`` stores a model trained here, so the run can predict new images later."""
    rows = dataset.rows(EVAL_SPLITS)
    if mapping is not None:
        params = {**params, "class_mapping": mapping.to_dict(), "unscored_labels": mapping.unscored_labels}
    run = create_run(results, kind=kind, dataset=dataset, params=params, backbone=backbone)
    with recording(run):
        run.write_predictions(list(rows["image"]), list(rows["split"]), label_scores)
        if save_model is not None:
            save_model(run.path)
        run.finish(timings=timings or {}, model=model or {})  # latency: one protocol, benchmarks measure
    metrics = evaluate_run(run.path, dataset)
    summary = metrics["overall"]
    shown = {key: "n/a" if summary.get(key) is None else f"{summary[key]:.3f}" for key in ("macro_roc_auc", "map")}
    print(f"{run.path}: test macro AUC {shown['macro_roc_auc']}, mAP {shown['map']} (shared evaluator)")
    return run


def evaluate_classifier(
    classifier,
    classes: list[str],
    source: Path,
    dataset: Dataset,
    results: Path,
    mapping_file: Path | None,
    *,
    kind: str,
    params: dict,
    desc: str,
    label_file: str,
) -> Run:
    """An exported softmax classifier scored on the valid and test images, classes mapped to labels, as a run."""
    from .class_mapping import map_classes

    if classifier.n_classes != len(classes):
        raise BenchmarkError(
            f"{source}: the model outputs {classifier.n_classes} classes but {label_file} lists {len(classes)}"
        )
    mapping = map_classes(classes, dataset.labels, mapping_file)
    for line in mapping.report():
        print(f"  {line}")
    class_scores, predict_s = score_images(dataset, classifier.predict, desc=desc)
    return write_adapter_run(
        dataset,
        results,
        kind=kind,
        label_scores=mapping.label_scores(class_scores),
        params={**params, "classes": classes},
        mapping=mapping,
        model=classifier.describe(),
        timings={"predict_s": round(predict_s, 2)},
    )
