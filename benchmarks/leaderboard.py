"""One table of every run on a dataset, read from metrics.json (never recomputed here)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .dataset import Dataset
from .errors import BenchmarkError, RunError
from .evaluate import evaluate_run
from .results import METRICS_JSON, Run, list_runs

COLUMNS = [
    "run", "kind", "backbone", "macro_auc", "macro_auc_ci", "map", "map_ci", "micro_f1", "macro_f1",
    "hamming_loss", "subset_accuracy", "train_s", "ms_per_image", "model_mb", "status",
]


def runs_for(results_dir: Path, dataset: Dataset | None) -> list[Run]:
    """Runs on ``dataset`` (by fingerprint); without one, all runs, which must share one dataset."""
    runs = list_runs(results_dir)
    if dataset is not None:
        return [r for r in runs if r.info["dataset"].get("fingerprint") == dataset.fingerprint]
    fingerprints = {r.info["dataset"].get("fingerprint") for r in runs}
    if len(fingerprints) > 1:
        names = sorted({f"{r.info['dataset'].get('name')} ({r.info['dataset'].get('fingerprint')})" for r in runs})
        raise BenchmarkError(f"{results_dir}: runs are on {len(fingerprints)} different datasets ({'; '.join(names)}); pass --dataset DIR to rank one")
    return runs


METRICS_KEYS = ("overall", "per_label", "thresholds", "curves")


def read_metrics(run: Run, *, evaluate_missing: bool = True) -> dict | None:
    """A run's metrics.json; None when there is none yet. It is derived data, so with ``evaluate_missing`` a
    missing or damaged one is written again by the evaluator; otherwise a damaged one is a RunError."""
    path = run.path / METRICS_JSON
    problem = None
    if path.is_file():
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
            missing = [k for k in METRICS_KEYS if not isinstance(metrics, dict) or not isinstance(metrics.get(k), dict)]
            if not missing:
                return metrics
            problem = f"{path}: damaged (no {', '.join(missing)})"
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problem = f"{path}: damaged ({exc.__class__.__name__})"
    if evaluate_missing and run.info.get("status") == "done":
        return evaluate_run(run.path)
    if problem:
        raise RunError(f"{problem}; write it again with `python -m benchmarks evaluate {run.path}`")
    return None


def leaderboard(results_dir: Path | str, dataset: Dataset | None = None) -> pd.DataFrame:
    rows = []
    for run in runs_for(Path(results_dir), dataset):
        try:
            metrics, problem = read_metrics(run), None
        except BenchmarkError as exc:  # e.g. predictions.csv damaged: the row stays, saying why it has no scores
            metrics, problem = None, str(exc)
        summary = (metrics or {}).get("overall", {})
        timings, model = run.info.get("timings", {}), run.info.get("model", {})
        rows.append({
            "run": run.run_id,
            "kind": run.info["kind"],
            "backbone": run.info.get("backbone") or "",
            "macro_auc": summary.get("macro_roc_auc"),
            "macro_auc_ci": summary.get("macro_roc_auc_ci"),
            "map": summary.get("map"),
            "map_ci": summary.get("map_ci"),
            "micro_f1": summary.get("micro_f1"),
            "macro_f1": summary.get("macro_f1"),
            "hamming_loss": summary.get("hamming_loss"),
            "subset_accuracy": summary.get("subset_accuracy"),
            "train_s": timings.get("train_s"),
            "ms_per_image": timings.get("ms_per_image"),
            "model_mb": round(model["size_bytes"] / 1e6, 2) if model.get("size_bytes") else None,
            "status": run.info.get("status") if metrics else f"{run.info.get('status')} ({problem or 'not evaluated'})",
        })
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values("macro_auc", ascending=False, na_position="last").reset_index(drop=True)


def format_table(table: pd.DataFrame) -> str:
    """Plain-text leaderboard with CIs written as [low, high]."""
    if table.empty:
        return "no runs yet"
    shown = table.copy()
    for column in ("macro_auc", "map"):
        shown[column] = [
            "—" if value is None or pd.isna(value) else f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, list) else "")
            for value, ci in zip(shown[column], shown[column + "_ci"])
        ]
    shown = shown.drop(columns=["macro_auc_ci", "map_ci"])
    for column in ("micro_f1", "macro_f1", "hamming_loss", "subset_accuracy"):
        shown[column] = [("—" if v is None or pd.isna(v) else f"{v:.3f}") for v in shown[column]]
    for column in ("train_s", "ms_per_image", "model_mb"):
        shown[column] = [("—" if v is None or pd.isna(v) else f"{v:.4g}") for v in shown[column]]
    return shown.to_string(index=False)


def auc_by_label(runs: list[Run]) -> pd.DataFrame:
    """Labels × runs test ROC-AUC, read from each run's metrics.json (runs without a readable one are left out)."""
    columns = {}
    for run in runs:
        try:
            metrics = read_metrics(run, evaluate_missing=False)
        except RunError:
            continue
        if metrics:
            columns[run.run_id] = {label: entry.get("roc_auc") for label, entry in metrics["per_label"].items()}
    return pd.DataFrame(columns)
