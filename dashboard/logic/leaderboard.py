"""The leaderboard page's logic: finished runs on a dataset, the ranked table, seeds pooled, training histories."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.leaderboard import HIDDEN, group_leaderboard, leaderboard
from benchmarks.evaluation.results import Run, finished_runs_on, load_run
from benchmarks.evaluation.run_record import shared_loss_names
from benchmarks.models.registry import families

DEFAULT_RESULTS = Path(os.environ.get("RESULTS_DIR", "results"))


def runs_on(results: Path, dataset: Dataset) -> list[Run]:
    return finished_runs_on(results, dataset.fingerprint)


def leaderboard_table(results: Path, dataset: Dataset) -> pd.DataFrame:
    table = leaderboard(results, dataset)
    return (
        table.sort_values("macro_auc", ascending=False, na_position="last").reset_index(drop=True)
        if len(table)
        else table
    )


def results_signature(results: Path) -> tuple:
    """What the seed groups depend on — each run's run.json and metrics.json modification times — so a cached
    table is recomputed exactly when a run is added, finished or re-evaluated."""
    if not Path(results).is_dir():
        return ()
    stamps = []
    for child in sorted(Path(results).iterdir()):
        for name in ("run.json", "metrics.json", "robustness.json"):
            path = child / name
            stamps.append((child.name, name, path.stat().st_mtime if path.is_file() else 0.0))
    return tuple(stamps)


def seed_groups(results: Path, dataset: Dataset) -> pd.DataFrame:
    """One row per model over its seeds; empty unless some model has several seeds (single runs stay per run)."""
    table = group_leaderboard(results, dataset)
    return table if len(table) and (table["seeds"] > 1).any() else table.iloc[0:0]


def ease_pitfalls(title: str) -> list[dict]:
    """The pitfalls a family (by its title, as the ease table's columns show it) declares."""
    from benchmarks.models.ease import declared_facts

    for kind, fact in declared_facts().items():
        family = families().get(kind)
        if (family.title if family else kind) == title:
            return list(fact.get("pitfalls", []))
    return []


SCORE_COLUMNS = [
    "macro_auc",
    "map",
    "ece",
    "brier",
    "robust_auc",
    "micro_f1",
    "macro_f1",
    "hamming_loss",
    "subset_accuracy",
]


COLUMN_TITLES = {  # what the leaderboard's headers read (the table keeps its snake_case keys for code and CSV)
    "name": "run",
    "macro_auc": "macro AUC",
    "macro_auc_ci": "AUC 95% CI",
    "map": "mAP",
    "map_ci": "mAP 95% CI",
    "ece": "ECE",
    "ece_ci": "ECE 95% CI",
    "brier": "Brier",
    "brier_ci": "Brier 95% CI",
    "robust_auc": "robust AUC",
    "robust_auc_ci": "robust AUC 95% CI",
    "micro_f1": "micro F1",
    "macro_f1": "macro F1",
    "hamming_loss": "Hamming loss",
    "subset_accuracy": "exact match",
    "train_s": "train s",
    "model_mb": "model MB",
    "run": "run id",
}


LEADING_COLUMNS = ["name", "macro_auc", "macro_auc_ci", "map", "map_ci", "tag"]  # what a phone's width shows first


def readable_leaderboard(table: pd.DataFrame) -> pd.DataFrame:
    """Readable name, then the scores with their CIs as "[low, high]" text beside their (still sortable) numbers;
    the run id, kind and backbone last; why a latency is empty goes under the table."""
    shown = table.drop(columns=[c for c in HIDDEN if c in table])
    for column in [c for c in shown.columns if c.endswith("_ci")]:
        shown[column] = shown[column].map(
            lambda c: f"[{c[0]:.3f}, {c[1]:.3f}]" if isinstance(c, (list, tuple)) and len(c) == 2 else ""
        )
    leading = [c for c in LEADING_COLUMNS if c in shown]
    return shown[leading + [c for c in shown.columns if c not in leading]]


def training_histories(results: Path, table: pd.DataFrame) -> dict[str, list[dict]]:
    """Per-epoch records (run.json ``history``) by readable run name, for runs that keep one."""
    histories = {}
    for run_id, name in zip(table["run"], table["name"]):
        try:
            history = load_run(results / run_id).info.get("history")
        except BenchmarkError:
            continue
        if isinstance(history, list) and history and all(isinstance(row, dict) for row in history):
            histories[name] = [shared_loss_names(row) for row in history]
    return histories


def has_latency(table: pd.DataFrame) -> bool:
    """Whether any run in the leaderboard table has a measured latency (else the latency chart would be empty)."""
    return bool(pd.to_numeric(table["latency_ms"], errors="coerce").gt(0).any())


def predictable_runs(runs: list[Run]) -> list[Run]:
    from benchmarks.serving.predictors import can_predict

    return [r for r in runs if can_predict(r)]


def runs_without_model(runs: list[Run]) -> list[tuple[str, str]]:
    """(run id, why it cannot score a new image) for the runs the Try page leaves out."""
    from benchmarks.serving.predictors import can_predict, why_no_model

    return [(r.run_id, why_no_model(r)) for r in runs if not can_predict(r)]
