"""``python -m tools.export RUN --format FORMAT``: take a trained run's model away in a format other programs load.

fastai runs export to ONNX; Keras runs and TM replicas to SavedModel, TFLite and ONNX. Every export is checked
against the served model on the dataset's test images (max |score difference| within 1e-4, or nothing is written)
and carries labels.txt, thresholds.json (tuned on valid by the evaluator) and export.json (input and output
contract, parity, converter, size) beside it. ``--round-trip`` (TFLite) reads the export back through our reader of
the service whose square fit the family shares (Keras: ``vertex-eval``, AutoML Edge's; the TM replica: ``tm-eval``,
Teachable Machine's), as a TM or AutoML export would be, and compares its test scores with the run's own.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks.atomic import atomic_write_json, atomic_write_text, current_umask, fsync
from benchmarks.errors import BenchmarkError, RunError, run_cli
from benchmarks.evaluation.evaluate import dataset_of
from benchmarks.evaluation.machine import environment
from benchmarks.evaluation.results import Run, load_run, model_size_bytes, read_predictions
from benchmarks.exports.exchange import (
    FLOAT_TOLERANCE,
    INPUT_NAME,
    INPUT_RANGE,
    OUTPUT_NAME,
    ExportedModel,
    to_exchange,
)
from benchmarks.models.registry import family_of, load_predictor_class
from benchmarks.serving.predictors import can_predict, load_predictor, runtime_of, why_no_model
from benchmarks.serving.scoring import thresholds_of

ALL_FORMATS = ("onnx", "savedmodel", "tflite", "tfjs")
BATCH = 32
ROUND_TRIP_FORMATS = ("tflite",)
OUTPUT_MEANING = (
    "the served model's score per label (sigmoid; a TM replica's softmax) in labels.txt order; a label is predicted "
    "at or above its threshold in thresholds.json"
)


def exporter_of(run: Run, fmt: str):
    """The family's export module, or one line saying why this run cannot be exported to ``fmt``."""
    family = family_of(run.kind)
    if family is None or not can_predict(run):
        raise RunError(f"{run.path}: nothing to export: {why_no_model(run)}")
    if fmt in family.unreachable_formats:
        raise BenchmarkError(f"{run.kind} runs cannot be exported to {fmt}: {family.unreachable_formats[fmt]}")
    load_predictor_class(family)  # first: it loads PyTorch before TensorFlow where both will be needed
    if family.exporter is None:
        raise BenchmarkError(
            f"{run.kind} runs have no exporter yet; fastai, Keras and TM replica runs have (docs/api.md)"
        )
    module = importlib.import_module(family.exporter)
    if fmt not in module.FORMATS:
        raise BenchmarkError(f"{run.kind} runs export to {', '.join(module.FORMATS)} (not {fmt})")
    return module


def export_run(run_dir: Path, fmt: str, out: Path | None = None, round_trip: bool = False, limit: int | None = None):
    """Export, check parity (and the round trip), then move the finished folder into place; returns export.json."""
    run = load_run(run_dir)
    exporter = exporter_of(run, fmt)
    if round_trip and fmt not in ROUND_TRIP_FORMATS:
        raise BenchmarkError(f"--round-trip reads {', '.join(ROUND_TRIP_FORMATS)} exports back (not {fmt})")
    dataset = dataset_of(run)
    thresholds = thresholds_of(run)
    out = Path(out) if out else run.path / "exports" / fmt
    native = load_predictor_class(family_of(run.kind))(run.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700 folders; an export is meant to be shared
    try:
        started = time.perf_counter()
        conversion = exporter.export_model(native, fmt, staging)
        seconds = time.perf_counter() - started
        model_path = staging / exporter.FORMATS[fmt]
        images = dataset.image_paths("test")[:limit]
        parity = check_parity(run, fmt, model_path, exporter, native, images)
        # labels.txt as Teachable Machine writes it ("<index> <label>"), dict.txt as AutoML Edge does (one per line):
        # tm-eval and vertex-eval then read our exports like theirs
        atomic_write_text(staging / "labels.txt", "".join(f"{i} {label}\n" for i, label in enumerate(native.labels)))
        if fmt == "tflite":
            atomic_write_text(staging / "dict.txt", "".join(f"{label}\n" for label in native.labels))
        atomic_write_json(staging / "thresholds.json", {"thresholds": thresholds.values, "note": thresholds.note})
        record = {
            "run_id": run.run_id,
            "kind": run.kind,
            "format": fmt,
            "file": model_path.name,
            "size_bytes": model_size_bytes(model_path),
            "export_seconds": round(seconds, 2),
            "input": {
                "name": INPUT_NAME,
                "shape": [None, conversion["size"], conversion["size"], 3],
                "dtype": "float32",
                "range": INPUT_RANGE,
                "resize": conversion["resize"],
            },
            "output": {"name": OUTPUT_NAME, "shape": [None, len(native.labels)], "meaning": OUTPUT_MEANING},
            "converter": conversion["converter"],
            "parity": parity,
            "machine": {k: v for k, v in environment().items() if k in ("cpu", "cpu_features", "cpu_count")},
        }
        if round_trip:
            record["round_trip"] = read_back(run, staging, dataset, exporter.ROUND_TRIP)
        atomic_write_json(staging / "export.json", record)
        _replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record


def check_parity(run: Run, fmt: str, model_path: Path, exporter, native, images: list[Path]) -> dict:
    """Max |exported - served| over the test images, each through its own runtime; refused above the tolerance."""
    from benchmarks.data.images import open_rgb

    served = load_predictor(run)
    exported = ExportedModel(fmt, model_path)
    worst = 0.0
    for start in tqdm(range(0, len(images), BATCH), desc=f"parity ({fmt} vs served)", unit="batch"):
        batch = [open_rgb(path) for path in images[start : start + BATCH]]
        expected = np.asarray(served.predict(batch), dtype=np.float64)
        got = exported.scores(to_exchange(exporter.exchange_pixels(native, batch))).astype(np.float64)
        worst = max(worst, float(np.abs(got - expected).max()))
    parity = {
        "images": len(images),
        "split": "test",
        "max_abs_diff": worst,
        "tolerance": FLOAT_TOLERANCE,
        "against": f"the served model ({runtime_of(served)} runtime)",
    }
    if not worst <= FLOAT_TOLERANCE:
        raise BenchmarkError(
            f"{run.path}: the {fmt} export differs from the served model by up to {worst:.2e} on test images "
            f"(tolerance {FLOAT_TOLERANCE:g}); nothing was written"
        )
    return parity


READERS = {  # the family's square fit decides which service's reader fits its exports (exporter.ROUND_TRIP)
    "vertex-eval": "python -m cloud_baselines vertex-eval (AutoML Edge TFLite: model.tflite + dict.txt; centre crop, "
    "bilinear resize)",
    "tm-eval": "python -m cloud_baselines tm-eval (Teachable Machine TFLite: model.tflite + labels.txt; ImageOps.fit, "
    "LANCZOS)",
}


def read_back(run: Run, folder: Path, dataset, reader: str) -> dict:
    """The export scored by our reader of a service's exports (``vertex-eval`` or ``tm-eval``) into a scratch
    results folder: its test scores against the run's own (predictions.csv), and both test macro AUCs from the
    shared evaluator."""
    from benchmarks.evaluation.evaluate import metrics_of
    from cloud_baselines.teachable_machine import evaluate_tm_export
    from cloud_baselines.vertex_automl import evaluate_edge_export

    evaluate = evaluate_tm_export if reader == "tm-eval" else evaluate_edge_export
    with tempfile.TemporaryDirectory() as scratch:
        read = load_run(evaluate(folder / "model.tflite", dataset, Path(scratch)).path)
        ours, theirs = read_predictions(run, dataset), read_predictions(read, dataset)
        rows = ours["split"] == "test"
        columns = list(dataset.labels)
        mine = ours[rows].set_index("image")[columns]
        back = theirs[theirs["split"] == "test"].set_index("image").loc[mine.index, columns]
        difference = float(np.abs(mine.to_numpy(np.float64) - back.to_numpy(np.float64)).max())
        return {
            "reader": READERS[reader],
            "test_images": int(rows.sum()),
            "max_abs_diff_vs_run_predictions": difference,
            "test_macro_auc_run": metrics_of(run)["overall"]["macro_roc_auc"],
            "test_macro_auc_read_back": metrics_of(read)["overall"]["macro_roc_auc"],
        }


def _replace(staging: Path, out: Path) -> None:
    """The finished folder takes ``out``'s place in one rename (an older export is moved aside, then removed)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    staging.rename(out)
    fsync(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.export", description=__doc__.split("\n\n", 1)[0])
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("run", type=Path, help="a finished fastai or Keras run folder")
    parser.add_argument(
        "--format", required=True, choices=ALL_FORMATS, help="onnx, savedmodel, tflite (tfjs: see why not)"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder to write (default RUN/exports/FORMAT)")
    parser.add_argument(
        "--round-trip", action="store_true", help="tflite: read it back through vertex-eval's or tm-eval's reader"
    )
    parser.add_argument("--limit", type=int, default=None, help="check parity on the first N test images only")

    args = parser.parse_args(argv)

    def body() -> None:
        record = export_run(args.run, args.format, args.out, args.round_trip, args.limit)
        print(json.dumps({k: record[k] for k in ("format", "file", "size_bytes", "parity")}, indent=2))
        if "round_trip" in record:
            print(json.dumps({"round_trip": record["round_trip"]}, indent=2))
        print(f"written: {args.out or Path(args.run) / 'exports' / args.format}")

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
