"""The results format: one folder per run with run.json, predictions.csv and (from the evaluator) metrics.json.

Trainers and adapters only produce predictions through :class:`Run`; nothing here computes a metric.
"""
from __future__ import annotations

import json
import os
import platform
import secrets
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from .atomic import atomic_write, atomic_write_json
from .dataset import Dataset
from .errors import RunError

RUN_JSON = "run.json"
PREDICTIONS_CSV = "predictions.csv"
METRICS_JSON = "metrics.json"
DEFAULT_RESULTS_DIR = Path("results")
STATUSES = ("running", "done", "failed", "interrupted")
PACKAGES = ("numpy", "scikit-learn", "torch", "timm", "fastai", "tensorflow-cpu", "tensorflow", "keras", "pillow")


@dataclass
class Run:
    path: Path
    info: dict

    @property
    def run_id(self) -> str:
        return self.info["run_id"]

    @property
    def labels(self) -> list[str]:
        return list(self.info["labels"])

    def update(self, **fields) -> None:
        self.info.update(fields)
        atomic_write_json(self.path / RUN_JSON, self.info)

    def write_predictions(self, images: Sequence[str], splits: Sequence[str], scores: np.ndarray) -> None:
        """Scores in [0, 1], one row per valid/test image, one column per label in run label order."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (len(images), len(self.labels)):
            raise RunError(f"{self.path}: predictions have shape {scores.shape}, expected {(len(images), len(self.labels))}")
        if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
            raise RunError(f"{self.path}: scores must be probabilities in [0, 1] with no NaN")
        table = pd.DataFrame(scores, columns=self.labels)
        table.insert(0, "split", list(splits))
        table.insert(0, "image", list(images))
        atomic_write(self.path / PREDICTIONS_CSV, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))

    def finish(self, **fields) -> None:
        self.update(status="done", finished=_now(), **fields)


def create_run(
    results_dir: Path | str, *, kind: str, dataset: Dataset, params: dict, backbone: str | None = None, labels: Sequence[str] | None = None
) -> Run:
    """Make ``RESULTS/<run_id>/`` with run.json in status ``running``."""
    run_id = f"{kind}-{backbone + '-' if backbone else ''}{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    path = Path(results_dir) / run_id
    path.mkdir(parents=True, exist_ok=False)
    info = {
        "run_id": run_id,
        "kind": kind,
        "backbone": backbone,
        "dataset": {"name": dataset.name, "path": str(dataset.root.resolve()), "fingerprint": dataset.fingerprint},
        "labels": list(labels or dataset.labels),
        "params": params,
        "timings": {},
        "model": {},
        "environment": environment(),
        "created": _now(),
        "status": "running",
    }
    run = Run(path, info)
    run.update()
    return run


@contextmanager
def recording(run: Run) -> Iterator[Run]:
    """Mark the run failed on an error and interrupted on Ctrl-C, so no run is left looking alive."""
    try:
        yield run
    except KeyboardInterrupt:
        run.update(status="interrupted", finished=_now())
        raise
    except BaseException as exc:
        run.update(status="failed", error=f"{exc.__class__.__name__}: {exc}", finished=_now())
        raise


def load_run(path: Path | str) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: run folder not found")
    run_json = path / RUN_JSON
    if not run_json.is_file():
        raise RunError(f"{run_json}: missing; this folder is not a run")
    try:
        info = json.loads(run_json.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{run_json}: damaged ({exc})") from None
    for key in ("run_id", "kind", "labels", "dataset", "status"):
        if key not in info:
            raise RunError(f"{run_json}: missing field '{key}'")
    return Run(path, info)


def read_predictions(run: Run, dataset: Dataset | None = None) -> pd.DataFrame:
    """predictions.csv, checked against the run's labels and, when given, the dataset's valid/test images."""
    csv_path = run.path / PREDICTIONS_CSV
    if not csv_path.is_file():
        raise RunError(f"{csv_path}: missing; the run has no predictions (status: {run.info.get('status')})")
    try:
        table = pd.read_csv(csv_path, dtype={"image": str, "split": str})
    except Exception as exc:
        raise RunError(f"{csv_path}: unreadable ({exc})") from None
    for column in ("image", "split"):
        if column not in table.columns:
            raise RunError(f"{csv_path}: missing column '{column}'")
    score_columns = [c for c in table.columns if c not in ("image", "split")]
    expected = list(dataset.labels) if dataset is not None else run.labels
    if score_columns != expected:
        missing = [x for x in expected if x not in score_columns]
        extra = [x for x in score_columns if x not in expected]
        detail = f"missing {missing}" if missing else f"unexpected {extra}" if extra else "in a different order"
        raise RunError(f"{csv_path}: label columns do not match the dataset's labels ({detail})")
    scores = table[score_columns].to_numpy(dtype=np.float64)
    if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
        raise RunError(f"{csv_path}: scores must be probabilities in [0, 1] with no empty cells")
    if dataset is not None:
        for split in ("valid", "test"):
            wanted = set(dataset.rows(split)["image"])
            have = set(table.loc[table["split"] == split, "image"])
            if wanted - have:
                raise RunError(f"{csv_path}: {len(wanted - have)} {split} image(s) have no prediction, e.g. {sorted(wanted - have)[0]}")
    return table


def list_runs(results_dir: Path | str) -> list[Run]:
    """Every readable run below ``results_dir`` (damaged folders are skipped, not fatal)."""
    results_dir = Path(results_dir)
    runs = []
    if results_dir.is_dir():
        for child in sorted(results_dir.iterdir()):
            if (child / RUN_JSON).is_file():
                try:
                    runs.append(load_run(child))
                except RunError:
                    continue
    return runs


def newest_done_run(results_dir: Path | str, kind: str, fingerprint: str, **same) -> Run | None:
    """The latest finished run of ``kind`` on this dataset fingerprint whose run.json fields (``backbone=...``)
    or params (``params={...}``, compared key by key) match."""
    wanted_params = same.pop("params", {})
    found = [
        run for run in list_runs(results_dir)
        if run.info["kind"] == kind and run.info["status"] == "done" and run.info["dataset"].get("fingerprint") == fingerprint
        and all(run.info.get(k) == v for k, v in same.items())
        and all(run.info["params"].get(k) == v for k, v in wanted_params.items())
    ]
    return max(found, key=lambda run: run.info["created"]) if found else None


def model_size_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.exists() else 0


def environment() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    gpu = None
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        gpu = sys.modules["torch"].cuda.get_device_name(0)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "packages": versions,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Stopwatch:
    """Seconds since start, for the timings in run.json."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self.start, 3)


def read_thresholds(run: Run) -> dict[str, float] | None:
    """Per-label thresholds the evaluator tuned on valid, or None if the run is not evaluated yet."""
    path = run.path / METRICS_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("thresholds")
    except json.JSONDecodeError:
        raise RunError(f"{path}: damaged; re-run `python -m benchmarks evaluate {run.path}`") from None
