"""A run's served model scored on the test split under every chosen corruption: robustness.json + robustness.npz.

The model is opened by ``load_predictor`` — the one the API serves, through the same runtime — and sees the cached
corrupted sets every run on the dataset shares. Scores are kept per set in robustness.npz as each set finishes, so an
interrupted scoring (or one extended with more corruptions) resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks.atomic import atomic_write, atomic_write_json
from benchmarks.data.corrupted_test import (
    CLEAN,
    clean_test_images,
    corrupted_test_images,
    parse_set,
    set_digest,
    set_name,
)
from benchmarks.data.corruptions import corruptions
from benchmarks.data.dataset import Dataset
from benchmarks.errors import RunError
from benchmarks.evaluation.evaluate import dataset_of
from benchmarks.evaluation.machine import environment
from benchmarks.evaluation.results import Run, load_run
from benchmarks.evaluation.robustness import (
    ROBUSTNESS_JSON,
    ROBUSTNESS_NPZ,
    read_robustness,
    resampled_macro_auc,
    stored_scores,
    summarize,
)
from benchmarks.serving.predictors import (
    can_predict,
    load_predictor,
    load_servable_predictor,
    runtime_of,
    why_no_model,
)
from benchmarks.serving.runtime import serving_runtime

BATCH = 32
FASTEST = "fastest"  # --runtime fastest: OpenVINO where the run exports to it, else native


def plan(names: list[str], severities: list[int]) -> list[tuple[str, int]]:
    """The sets to score, clean first: every chosen corruption at every chosen severity."""
    return [(CLEAN, 0)] + [(name, severity) for name in names for severity in sorted(set(severities))]


def score_run(
    run: Run | Path | str,
    names: list[str],
    severities: list[int],
    runtime: str | None = None,
    force: bool = False,
    dataset: Dataset | None = None,
) -> dict:
    """Score the run on every set (those robustness.npz holds already are kept unless ``force``), write
    robustness.json and return it (as ``read_robustness`` reads it). ``runtime``: native, openvino, ``FASTEST``
    (OpenVINO where the model exports to it, else native), or None (the stored scores', else ``SERVING_RUNTIME``)."""
    run = run if isinstance(run, Run) else load_run(run)
    if not can_predict(run):
        raise RunError(f"{run.path}: no robustness row: {why_no_model(run)}")
    dataset = dataset_of(run, dataset)
    sets = plan(names, severities)
    stored_runtime, scores = stored_scores(run.path / ROBUSTNESS_NPZ)
    fastest = runtime == FASTEST
    if fastest:  # keep the stored scores' runtime unless asked to score afresh; else chosen when loading below
        runtime = None if force else stored_runtime
    if force or (runtime is not None and serving_runtime(runtime) != stored_runtime):
        scores = {}  # asked to score again, or through another runtime than the stored scores were
    missing = [(c, s) for c, s in sets if set_name(c, s) not in scores]
    used = stored_runtime
    started = time.perf_counter()
    if missing:
        if fastest and runtime is None:  # OpenVINO where the model exports to it, else native
            predictor = load_servable_predictor(run, "openvino")
        else:
            predictor = load_predictor(run, runtime or stored_runtime)
        used = runtime_of(predictor)
        if used != stored_runtime:  # one runtime for every set of a run
            scores, missing = {}, sets
        _score_sets(run, dataset, predictor, missing, scores, used)
    targets = dataset.targets("test")
    chosen = {set_name(c, s): scores[set_name(c, s)].astype(np.float64) for c, s in sets}
    samples = {name: resampled_macro_auc(targets, values) for name, values in chosen.items()}
    _write_npz(run, scores, samples, used)
    record = {
        "run_id": run.run_id,
        "dataset_fingerprint": dataset.fingerprint,
        "runtime": used,
        "metric": "macro ROC-AUC on the test split, 95% CI from the evaluator's resampled test images",
        "summary_sets": list(chosen),
        "corruptions": {
            name: {
                "group": corruptions()[name].group,
                "parameters": {str(s): repr(corruptions()[name].ladder[s - 1]) for s in sorted(set(severities))},
                "values_from": corruptions()[name].source,
            }
            for name in names
        },
        "severities": sorted(set(severities)),
        "summary": summarize(targets, chosen, samples),
        "n_test_images": int(len(targets)),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {k: v for k, v in environment().items() if k in ("cpu", "cpu_features", "cpu_count")},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_json(run.path / ROBUSTNESS_JSON, record)
    return read_robustness(run)


def _score_sets(run: Run, dataset: Dataset, predictor, sets: list, scores: dict, runtime: str) -> None:
    """Each set's scores into ``scores`` (dataset label order), robustness.npz rewritten after each set: a kill
    loses one set at most."""
    columns = _label_columns(list(predictor.labels), dataset.labels, run)
    clean = clean_test_images(dataset)
    with tqdm(total=len(sets) * len(clean), desc=f"robustness {run.run_id}", unit="img") as bar:
        for corruption, severity in sets:
            bar.set_postfix_str(set_name(corruption, severity))
            images = corrupted_test_images(dataset, corruption, severity, clean)
            batches = []
            for start in range(0, len(images), BATCH):
                batches.append(np.asarray(predictor.predict(images[start : start + BATCH]), dtype=np.float32))
                bar.update(len(batches[-1]))
            scores[set_name(corruption, severity)] = np.concatenate(batches)[:, columns]
            _write_npz(run, scores, {}, runtime)


def _label_columns(predictor_labels: list[str], dataset_labels: list[str], run: Run) -> list[int]:
    missing = [label for label in dataset_labels if label not in predictor_labels]
    if missing:
        raise RunError(f"{run.path}: its model has no score for {', '.join(missing)}; it cannot be scored here")
    return [predictor_labels.index(label) for label in dataset_labels]


def _write_npz(run: Run, scores: dict, samples: dict, runtime: str) -> None:
    """Every set's scores (each with the digest of how its images were made) and the chosen sets' resamples."""
    meta = json.dumps({"runtime": runtime, "digests": {name: set_digest(*parse_set(name)) for name in scores}})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            np.savez(
                out,
                meta=np.array(meta),
                **{f"scores/{name}": values for name, values in scores.items()},
                **{f"samples/{name}": values.astype(np.float32) for name, values in samples.items()},
            )

    atomic_write(run.path / ROBUSTNESS_NPZ, write)
