"""One table of every run on a dataset, read from metrics.json (derived in memory, never written, when missing)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError, RunError

from .evaluate import contamination_note, metrics_of
from .groups import group_runs, run_names, summarize
from .latency import latency_of
from .metrics import with_interval
from .results import Run, list_runs, read_metrics
from .robustness import robust_auc_of

COLUMNS = [
    "run",
    "name",
    "kind",
    "backbone",
    "backend",
    "macro_auc",
    "macro_auc_ci",
    "map",
    "map_ci",
    "ece",
    "ece_ci",
    "brier",
    "brier_ci",
    "robust_auc",
    "robust_auc_ci",
    "micro_f1",
    "macro_f1",
    "hamming_loss",
    "subset_accuracy",
    "train_s",
    "latency_ms",
    "images_per_s",
    "model_mb",
    "status",
    "latency_note",
    "robust_sets",
    "robust_note",
]
HIDDEN = ["latency_note", "robust_sets", "robust_note"]  # shown as notes under the table, not as columns
TEXT_HIDDEN = ["name"]  # the plain-text table keeps to run ids (kind and backbone are columns there)


def runs_for(results_dir: Path, dataset: Dataset | None) -> list[Run]:
    """Runs on ``dataset`` (by fingerprint); without one, all runs, which must share one dataset."""
    runs = list_runs(results_dir)
    if dataset is not None:
        return [r for r in runs if r.fingerprint == dataset.fingerprint]
    fingerprints = {r.fingerprint for r in runs}
    if len(fingerprints) > 1:
        names = sorted({f"{r.dataset_name} ({r.fingerprint})" for r in runs})
        raise BenchmarkError(
            f"{results_dir}: runs are on {len(fingerprints)} different datasets ({'; '.join(names)}); pass --dataset "
            "DIR to rank one"
        )
    return runs


def run_status(run: Run, metrics: dict | None, problem: str | None) -> str:
    if not metrics:
        return f"{run.shown_status} ({problem or 'not evaluated'})"
    if contamination_note(run):  # from run.json, so metrics.json written by an older evaluator is flagged too
        return f"{run.shown_status} — WARNING: thresholds tuned on its own training images"
    return run.shown_status


def leaderboard(results_dir: Path | str, dataset: Dataset | None = None) -> pd.DataFrame:
    rows = []
    runs = runs_for(Path(results_dir), dataset)
    names = run_names(runs)
    for run in runs:
        try:
            metrics, problem = metrics_of(run), None
        except BenchmarkError as exc:  # e.g. predictions.csv damaged: the row stays, saying why it has no scores
            metrics, problem = None, str(exc)
        summary = (metrics or {}).get("overall", {})
        timings, model = run.timings, run.model
        latency_ms, images_per_s, latency_note = latency_of(run)
        robust = robust_auc_of(run)
        rows.append(
            {
                "run": run.run_id,
                "name": names[run.run_id],
                "kind": run.kind,
                "backbone": run.backbone or "",
                "backend": run.params.get("backend") or "",  # the framework a run names as its backend (Keras')
                "macro_auc": summary.get("macro_roc_auc"),
                "macro_auc_ci": summary.get("macro_roc_auc_ci"),
                "map": summary.get("map"),
                "map_ci": summary.get("map_ci"),
                "ece": summary.get("macro_ece"),
                "ece_ci": summary.get("macro_ece_ci"),
                "brier": summary.get("brier"),
                "brier_ci": summary.get("brier_ci"),
                "robust_auc": robust["value"],
                "robust_auc_ci": robust["ci"],
                "micro_f1": summary.get("micro_f1"),
                "macro_f1": summary.get("macro_f1"),
                "hamming_loss": summary.get("hamming_loss"),
                "subset_accuracy": summary.get("subset_accuracy"),
                "train_s": timings.get("train_s"),
                "latency_ms": latency_ms,
                "images_per_s": images_per_s,
                "model_mb": round(model["size_bytes"] / 1e6, 2) if model.get("size_bytes") else None,
                "status": run_status(run, metrics, problem),
                "latency_note": latency_note,
                "robust_sets": robust["sets"],
                "robust_note": robust["note"],
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values("macro_auc", ascending=False, na_position="last").reset_index(drop=True)


# column: metric (robust_auc: the mean macro AUC under corruption, where `benchmarks robustness` scored the run)
SHORT_NAMES = {
    "macro_auc": "macro_roc_auc",
    "map": "map",
    "ece": "macro_ece",
    "brier": "brier",
    "robust_auc": "robust_auc",
}
GROUP_COLUMNS = [
    "model",
    "kind",
    "seeds",
    "macro_auc",
    "macro_auc_sd",
    "macro_auc_ci",
    "map",
    "map_sd",
    "map_ci",
    "ece",
    "ece_sd",
    "ece_ci",
    "brier",
    "brier_sd",
    "brier_ci",
    "robust_auc",
    "robust_auc_sd",
    "robust_auc_ci",
    "train_s",
    "latency_ms",
    "runs",
]


def group_leaderboard(
    results_dir: Path | str, dataset: Dataset | None = None, runs: list[Run] | None = None
) -> pd.DataFrame:
    """One row per model (kind, backbone, settings) over its seeds: mean ± sd, and a 95% CI that resamples seeds
    and test images. Only finished, evaluable runs count (``runs``: only these); train time is the mean, latency
    the median."""
    if runs is None:
        runs = runs_for(Path(results_dir), dataset)
    runs = [run for run in runs if run.status == "done"]
    rows = []
    for group in group_runs(runs):
        try:
            summary = summarize(group)
        except BenchmarkError:  # a damaged run: its group is left out here and shows as a row in the plain table
            continue
        latencies = [latency_of(run)[0] for run in group.runs]
        train = [run.timings.get("train_s") for run in group.runs]
        rows.append(
            {
                "model": group.name,
                "kind": group.kind,
                "seeds": len(group.runs),
                **{
                    f"{short}{suffix}": summary[metric][key]
                    for short, metric in SHORT_NAMES.items()
                    for suffix, key in (("", "mean"), ("_sd", "sd"), ("_ci", "ci"))
                },
                "train_s": _middle([t for t in train if t is not None], mean=True),
                "latency_ms": _middle([t for t in latencies if t is not None]),
                "runs": ", ".join(summary["runs"]),
            }
        )
    table = pd.DataFrame(rows, columns=GROUP_COLUMNS)
    return table.sort_values("macro_auc", ascending=False, na_position="last").reset_index(drop=True)


def _middle(values: list[float], mean: bool = False) -> float | None:
    if not values:
        return None
    return float(sum(values) / len(values)) if mean else float(pd.Series(values).median())


def format_table(table: pd.DataFrame, markdown: bool = False) -> str:
    """Plain-text (or Markdown, for docs) leaderboard with CIs written as [low, high]; per-run or per-model."""
    if table.empty:
        return "no runs yet"
    shown = readable_groups(table) if "model" in table else readable_table(table)
    if not markdown:
        return "\n".join([shown.to_string(index=False), *table_notes(table)])
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([*lines, "", *table_notes(table)])


def table_notes(table: pd.DataFrame) -> list[str]:
    """What a blank or a column means, once per reason: why a latency is missing (never shown as 0), what robust
    AUC averages, and a robustness record that could not be read."""
    notes: dict[str, list[str]] = {}
    for column, blank in (("latency_note", "latency"), ("robust_note", "robust AUC")):
        if column not in table:  # the per-model table keeps no per-run notes
            continue
        for run, note in zip(table["run"], table[column]):
            if note:
                notes.setdefault(f"{blank} —: {note}", []).append(run)
    lines = [f"{note} ({', '.join(runs)})" for note, runs in notes.items()]
    return lines + _robust_sets_note(table)


def _robust_sets_note(table: pd.DataFrame) -> list[str]:
    if "robust_auc" not in table or table.empty:
        return []
    if not table["robust_auc"].notna().any():
        return ["robust AUC —: no run here scored under corruption yet (`make robustness` after `make demo`, or "
                "`python -m benchmarks robustness RUN ...`)"]  # fmt: skip
    if "robust_sets" not in table:  # per model: averaged over the sets every seed was scored on
        return ["robust AUC: mean test macro AUC under corruption (`python -m benchmarks robustness`), over the "
                "corruption × severity sets every seed of the model was scored on; — where one was not"]  # fmt: skip
    sets = {int(n) for n, value in zip(table["robust_sets"], table["robust_auc"]) if pd.notna(value)}
    line = (
        "robust AUC: mean test macro AUC over the corrupted test sets `python -m benchmarks robustness` scored "
        f"({'/'.join(map(str, sorted(sets)))} corruption × severity sets); — where a run was not scored"
    )
    if len(sets) > 1:
        line += "; runs scored on different sets are compared (`compare`) on the sets they share"
    return [line]


def readable_table(table: pd.DataFrame) -> pd.DataFrame:
    shown = table.copy()
    for column in SHORT_NAMES:
        shown[column] = [
            "—" if value is None or pd.isna(value) else with_interval(value, ci if isinstance(ci, list) else None)
            for value, ci in zip(shown[column], shown[column + "_ci"])
        ]
    empty_backend = ["backend"] if "backend" in shown and not shown["backend"].astype(bool).any() else []
    shown = shown.drop(
        columns=[f"{c}_ci" for c in SHORT_NAMES] + [*empty_backend, *[c for c in HIDDEN + TEXT_HIDDEN if c in shown]]
    )
    for column in ("micro_f1", "macro_f1", "hamming_loss", "subset_accuracy"):
        shown[column] = [("—" if v is None or pd.isna(v) else f"{v:.3f}") for v in shown[column]]
    for column in ("train_s", "latency_ms", "images_per_s", "model_mb"):
        shown[column] = [("—" if v is None or pd.isna(v) else f"{v:.4g}") for v in shown[column]]
    return shown


def readable_groups(table: pd.DataFrame) -> pd.DataFrame:
    """Per-model rows: ``mean ± sd [low, high]``, the sd over seeds and the CI over seeds × test images."""
    shown = table.copy()
    for column in SHORT_NAMES:
        shown[column] = [
            _mean_sd_ci(value, sd, ci)
            for value, sd, ci in zip(shown[column], shown[column + "_sd"], shown[column + "_ci"])
        ]
    shown = shown.drop(columns=[f"{c}{suffix}" for c in SHORT_NAMES for suffix in ("_sd", "_ci")])
    for column in ("train_s", "latency_ms"):
        shown[column] = [("—" if v is None or pd.isna(v) else f"{v:.4g}") for v in shown[column]]
    return shown


def _mean_sd_ci(value, sd, ci) -> str:
    if value is None or pd.isna(value):
        return "—"
    if sd is None or pd.isna(sd):
        return with_interval(value, ci if isinstance(ci, list) else None)
    text = f"{value:.3f} ± {sd:.3f}"
    return text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, list) else "")


def auc_by_label(runs: list[Run]) -> pd.DataFrame:
    """Labels × runs test ROC-AUC, read from each run's metrics.json (runs without a readable one are left out)."""
    columns = {}
    for run in runs:
        try:
            metrics = read_metrics(run)
        except RunError:
            continue
        if metrics:
            columns[run.run_id] = {label: entry.get("roc_auc") for label, entry in metrics["per_label"].items()}
    return pd.DataFrame(columns)
