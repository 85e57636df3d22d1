"""What the dashboard pages show, as plain functions over the dataset and results formats (unit-tested).

Nothing here computes a metric of its own: numbers come from metrics.json, or from ``benchmarks.evaluation.metrics``
when the user moves a threshold.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.data.dataset import Dataset, load_dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.leaderboard import HIDDEN, auc_by_label, group_leaderboard, leaderboard
from benchmarks.evaluation.metrics import per_label
from benchmarks.evaluation.results import Run, finished_runs_on, load_run, newest_per, read_metrics, read_predictions
from benchmarks.models.registry import families

DEFAULT_DATA_ROOT = Path(os.environ.get("DASHBOARD_DATA", "data"))
DEFAULT_RESULTS = Path(os.environ.get("RESULTS_DIR", "results"))


def find_datasets(root: Path | None = None) -> list[Path]:
    """Dataset folders (with dataset.json) directly under ``root`` (default ``DASHBOARD_DATA`` or data/)."""
    root = Path(root or DEFAULT_DATA_ROOT)
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("*/dataset.json"))


def runs_on(results: Path, dataset: Dataset) -> list[Run]:
    return finished_runs_on(results, dataset.fingerprint)


def default_curve_runs(runs: list[Run], most: int = 5) -> list[str]:
    """The newest run of each kind that ranks images (not the prior, whose curves are a diagonal by construction)."""
    ranking = [run for run in runs if run.kind != "prior"]
    return [run.run_id for run in newest_per(ranking, lambda run: run.kind).values()][:most]


def leaderboard_table(results: Path, dataset: Dataset) -> pd.DataFrame:
    table = leaderboard(results, dataset)
    return (
        table.sort_values("macro_auc", ascending=False, na_position="last").reset_index(drop=True)
        if len(table)
        else table
    )


ANNOTATIONS = Path(".dashboard") / "annotations.json"  # under the results folder: runs hidden and tagged here


def load_annotations(results: Path) -> tuple[dict, str | None]:
    """``{"hidden": [run ids], "tags": {run id: text}}`` kept by the leaderboard, and a warning when the file is
    damaged (then nothing is hidden or tagged, and the next save rewrites it)."""
    empty = {"hidden": [], "tags": {}}
    path = Path(results) / ANNOTATIONS
    if not path.is_file():
        return empty, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        hidden, tags = data.get("hidden", []), data.get("tags", {})
        if not (isinstance(hidden, list) and isinstance(tags, dict)):
            raise ValueError("hidden must be a list and tags an object")
        return {"hidden": [str(h) for h in hidden], "tags": {str(k): str(v) for k, v in tags.items()}}, None
    except (ValueError, AttributeError) as exc:
        return empty, f"{path}: not readable ({exc}); hidden runs and tags start afresh"


def save_annotations(results: Path, hidden: list[str], tags: dict[str, str]) -> None:
    from benchmarks.atomic import atomic_write_json

    path = Path(results) / ANNOTATIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"hidden": sorted(hidden), "tags": {k: v for k, v in sorted(tags.items()) if v.strip()}})


def annotated(table: pd.DataFrame, annotations: dict, show_hidden: bool = False) -> pd.DataFrame:
    """The leaderboard with a ``tag`` column after the name, and hidden runs left out unless asked for."""
    table = table.copy()
    table.insert(table.columns.get_loc("name") + 1, "tag", [annotations["tags"].get(r, "") for r in table["run"]])
    return table if show_hidden else table[~table["run"].isin(annotations["hidden"])].reset_index(drop=True)


def results_signature(results: Path) -> tuple:
    """What the seed groups depend on — each run's run.json and metrics.json modification times — so a cached
    table is recomputed exactly when a run is added, finished or re-evaluated."""
    if not Path(results).is_dir():
        return ()
    stamps = []
    for child in sorted(Path(results).iterdir()):
        for name in ("run.json", "metrics.json"):
            path = child / name
            stamps.append((child.name, name, path.stat().st_mtime if path.is_file() else 0.0))
    return tuple(stamps)


def seed_groups(results: Path, dataset: Dataset) -> pd.DataFrame:
    """One row per model over its seeds; empty unless some model has several seeds (single runs stay per run)."""
    table = group_leaderboard(results, dataset)
    return table if len(table) and (table["seeds"] > 1).any() else table.iloc[0:0]


def runs_with_label_samples(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """(runs whose per-label bootstrap samples the evaluator stored, runs without): a page reads the first and
    names the second, since recomputing them costs ~20 s per run on 2 cores."""
    from benchmarks.evaluation.groups import stored_label_samples

    stored, missing = [], []
    for run in runs:
        (stored if stored_label_samples(run, "roc_auc") is not None else missing).append(run)
    return stored, missing


def best_per_label_table(results: Path, dataset: Dataset) -> tuple[pd.DataFrame, list[str]]:
    """Per label: the best model by test ROC-AUC (runs of one model pooled over seeds), and the models not
    distinguishable from it (95% paired bootstrap CI of the difference contains 0); and the ids of the runs left
    out for want of stored samples."""
    from benchmarks.evaluation.groups import best_per_label, group_runs

    stored, missing = runs_with_label_samples(runs_on(results, dataset))
    rows = best_per_label(group_runs(stored))
    table = pd.DataFrame(
        [
            {
                "label": row["label"],
                "best model": row["best"] or "—",
                "ROC-AUC": None if row["auc"] is None else round(row["auc"], 3),
                "not distinguishable from it": ", ".join(row["tied"]) or "—",
            }
            for row in rows
        ]
    )
    return table, [run.run_id for run in missing]


def ease_pitfalls(title: str) -> list[dict]:
    """The pitfalls a family (by its title, as the ease table's columns show it) declares."""
    from benchmarks.models.ease import declared_facts

    for kind, fact in declared_facts().items():
        family = families().get(kind)
        if (family.title if family else kind) == title:
            return list(fact.get("pitfalls", []))
    return []


SCORE_COLUMNS = ["macro_auc", "map", "micro_f1", "macro_f1", "hamming_loss", "subset_accuracy"]
COLUMN_TITLES = {  # what the leaderboard's headers read (the table keeps its snake_case keys for code and CSV)
    "name": "run",
    "macro_auc": "macro AUC",
    "macro_auc_ci": "AUC 95% CI",
    "map": "mAP",
    "map_ci": "mAP 95% CI",
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
    for column in ("macro_auc_ci", "map_ci"):
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
            histories[name] = history
    return histories


def split_counts(dataset: Dataset) -> pd.DataFrame:
    return dataset.counts()


def eda_report(dataset: Dataset) -> dict | None:
    path = dataset.root / "eda" / "report.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except json.JSONDecodeError:
        return None


def gallery(
    dataset: Dataset,
    label: str | None = None,
    split: str | None = None,
    flagged: set[str] | None = None,
    limit: int = 48,
) -> pd.DataFrame:
    rows = dataset.items
    if label:
        rows = rows[rows["labels"].map(lambda labels: label in labels)]
    if split:
        rows = rows[rows["split"] == split]
    if flagged is not None:
        rows = rows[rows["image"].isin(flagged)]
    return rows.head(limit)


def flagged_images(report: dict | None) -> set[str]:
    """Images named in any EDA check that is not ok."""
    found: set[str] = set()
    for check in (report or {}).get("checks", []):
        if check.get("verdict") not in ("ok", "info"):
            for example in check.get("examples", []):
                found.update(example if isinstance(example, list) else [example])
    return {str(x) for x in found}


def has_latency(table: pd.DataFrame) -> bool:
    """Whether any run in the leaderboard table has a measured latency (else the latency chart would be empty)."""
    return bool(pd.to_numeric(table["latency_ms"], errors="coerce").gt(0).any())


def auc_matrix(runs: list[Run]) -> pd.DataFrame:
    return auc_by_label(runs)


def evaluated_metrics(run: Run) -> dict:
    """metrics.json as written by the evaluator; a run not evaluated yet (or damaged) is a one-line error."""
    metrics = read_metrics(run)
    if not metrics:
        raise BenchmarkError(f"{run.path}: not evaluated yet (python -m benchmarks evaluate {run.path})")
    return metrics


def curves(run: Run) -> dict:
    return evaluated_metrics(run)["curves"]


def label_results(run: Run) -> dict[str, dict]:
    """The evaluator's per-label test results (threshold tuned on valid, counts at it, AUC, AP, F1)."""
    return evaluated_metrics(run)["per_label"]


def threshold_effect(run: Run, dataset: Dataset, label: str, threshold: float) -> pd.DataFrame:
    """Precision, recall, F1 and confusion counts of one label at ``threshold``, on valid and on test
    (computed by the shared ``benchmarks.evaluation.metrics.per_label``)."""
    table = read_predictions(run, dataset)
    rows = {}
    for split in ("valid", "test"):
        part = table[table["split"] == split]
        targets = dataset.targets(split)
        order = dataset.rows(split)["image"].tolist()
        scores = part.set_index("image").loc[order, run.labels].to_numpy(float)
        j = run.labels.index(label)
        entry = per_label(targets[:, [dataset.labels.index(label)]], scores[:, [j]], np.array([threshold]), [label])[
            label
        ]
        rows[split] = {k: entry[k] for k in ("precision", "recall", "f1", "tp", "fp", "fn", "tn")}
    return pd.DataFrame(rows).T


def test_decisions(run: Run, dataset: Dataset, label: str, threshold: float) -> dict:
    """The run's test scores decided at its tuned thresholds, except ``label`` at ``threshold`` (the per-class
    slider): the evaluator's per-label counts, which labels it mixes up, and every error of ``label``."""
    from benchmarks.evaluation.evaluate import aligned_scores
    from benchmarks.evaluation.metrics import label_confusion

    targets, scores = aligned_scores(run, dataset, "test")
    tuned = label_results(run)
    thresholds = np.array([float(tuned.get(name, {}).get("threshold", 0.5)) for name in dataset.labels])
    j = dataset.labels.index(label)
    thresholds[j] = threshold
    predicted = scores >= thresholds
    images = dataset.rows("test")["image"].tolist()

    def named(row: np.ndarray) -> str:
        return " ".join(name for name, on in zip(dataset.labels, row) if on) or "(none)"

    errors = pd.DataFrame(
        {
            "image": images,
            "score": scores[:, j],
            "true": [named(row) for row in targets.astype(bool)],
            "predicted": [named(row) for row in predicted],
            "error": np.where(
                predicted[:, j] & (targets[:, j] == 0),
                "FP",
                np.where(~predicted[:, j] & (targets[:, j] == 1), "FN", ""),
            ),
        }
    )
    errors = errors[errors["error"] != ""]
    errors = pd.concat(
        [
            errors[errors["error"] == "FP"].sort_values("score", ascending=False),
            errors[errors["error"] == "FN"].sort_values("score"),
        ]
    )
    return {
        "counts": per_label(targets, scores, thresholds, dataset.labels),
        "mixed": label_confusion(targets, predicted),
        "errors": errors.reset_index(drop=True),
    }


def dataset_image(dataset: Dataset, rel: str) -> tuple[str, str, list[str]]:
    row = dataset.items.loc[dataset.items["image"] == rel].iloc[0]
    return rel, row["split"], list(row["labels"])


def dataset_image_with_bytes(
    dataset: Dataset, facts: pd.DataFrame, content: bytes
) -> tuple[str, str, list[str]] | None:
    """An upload that is byte-for-byte one of the dataset's images (facts: ``eda.scan_images``' sha256 column)."""
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    matches = facts.loc[facts["sha256"] == digest, "image"]
    return dataset_image(dataset, matches.iloc[0]) if len(matches) else None


def predictable_runs(runs: list[Run]) -> list[Run]:
    from benchmarks.serving.predictors import can_predict

    return [r for r in runs if can_predict(r)]


def runs_without_model(runs: list[Run]) -> list[tuple[str, str]]:
    """(run id, why it cannot score a new image) for the runs the Try page leaves out."""
    from benchmarks.serving.predictors import can_predict, why_no_model

    return [(r.run_id, why_no_model(r)) for r in runs if not can_predict(r)]


def load_dataset_safely(path: Path) -> tuple[Dataset | None, str | None]:
    try:
        return load_dataset(path), None
    except BenchmarkError as exc:
        return None, str(exc)


def train_command(framework: str, dataset_root: Path, results: Path, options: dict) -> list[str]:
    """The trainer CLI call for the Train page's form (unset options are left to the trainer's defaults)."""
    import sys

    from benchmarks.models.registry import trainable_families

    trainers = {family.kind: family.trainer for family in trainable_families()}
    if framework not in trainers:
        raise BenchmarkError(f"unknown framework {framework!r}; choose {', '.join(trainers)}")
    command = [sys.executable, "-m", trainers[framework], "--dataset", str(dataset_root), "--results", str(results)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            command.append(flag)
        elif value is not None and value is not False and value != "":  # 0 is a value (0 epochs), not "unset"
            command += [flag, str(value)]
    return command


def measure_command(dataset_root: Path, results: Path, run_dir: str) -> list[str]:
    """After a run trained here: its latency by the one protocol, so the leaderboard has a figure for it."""
    import sys

    return [
        sys.executable,
        "-m",
        "benchmarks",
        "measure",
        str(dataset_root),
        "--results",
        str(results),
        "--runs",
        run_dir,
    ]


def start_training(command: list[str], log_path: Path) -> dict:
    """Run the trainer in a background process; its output goes to ``log_path``."""
    import subprocess
    import time

    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w", encoding="utf-8")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return {"pid": process.pid, "process": process, "log": str(log_path), "started": time.time(), "command": command}


# Framework start-up chatter that hides the trainer's own lines (the full log stays downloadable).
LOG_NOISE = (
    "oneDNN custom operations",
    "TF_ENABLE_ONEDNN_OPTS",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized",
    "rebuild TensorFlow with the appropriate compiler flags",
    "All log messages before absl::InitializeLog()",
    "Unable to register cu",
    "computation placer already registered",
    "could not open file to read NUMA node",
    "TensorFlow was not built with CUDA",
    "warnings.warn(",
    "UserWarning:",
    "FutureWarning:",
    "DeprecationWarning:",
)


def readable_log_lines(text: str) -> list[str]:
    """The log's lines without blank ones and without framework noise (``LOG_NOISE``)."""
    lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return [line for line in lines if not any(noise in line for noise in LOG_NOISE)]


CANCEL_GRACE_S = 5.0  # after Ctrl-C, how long a trainer gets before it is terminated


def cancel_training(job: dict) -> None:
    """Ctrl-C for the trainer: it marks its run interrupted (resumable from the last finished epoch) and exits.
    A process started where SIGINT is ignored (a server run in the background) gets SIGTERM after
    ``CANCEL_GRACE_S`` (``training_status`` sends it); its run then shows as interrupted by its stale heartbeat."""
    import signal
    import time

    if job["process"].poll() is None:
        job["process"].send_signal(signal.SIGINT)
    job.setdefault("cancelled", time.time())


def _escalate_cancel(job: dict) -> None:
    import time

    if job.get("cancelled") and job["process"].poll() is None and time.time() - job["cancelled"] > CANCEL_GRACE_S:
        job["process"].terminate()


def epoch_position(info: dict) -> tuple[float, int]:
    """(epochs done, counting the current one's finished batches as a fraction; epochs planned) from run.json."""
    params, history = info.get("params", {}), info.get("history", [])
    planned = int(params.get("epochs", 0) or 0) + int(params.get("freeze_epochs", 0) or 0)
    done = float(len(history))
    within = info.get("within_epoch")
    if isinstance(within, dict) and within.get("batches"):
        finished_now = any(
            row.get("phase") == within.get("phase") and row.get("epoch") == within.get("epoch") for row in history
        )
        if not finished_now:
            done += min(float(within.get("batch", 0)) / float(within["batches"]), 1.0)
    return done, planned


def eta_seconds(info: dict, done: float, planned: int, elapsed: float) -> float | None:
    """Seconds left at the pace so far: finished epochs' mean time (or, in the first epoch, the time since start
    over the fraction done) times what is left."""
    seconds = [row["seconds"] for row in info.get("history", []) if isinstance(row.get("seconds"), int | float)]
    if planned <= 0 or done >= planned:
        return None
    if seconds:
        return sum(seconds) / len(seconds) * (planned - done)
    return elapsed / done * (planned - done) if done > 0.05 else None


def training_status(job: dict, results: Path) -> dict:
    """running / done / failed / cancelled, the run folder once it exists, epochs finished (with the current
    epoch's batches) of planned, an ETA, and the log's tail without framework noise."""
    import time

    _escalate_cancel(job)
    process = job["process"]
    code = process.poll()
    text = Path(job["log"]).read_text(encoding="utf-8", errors="replace") if Path(job["log"]).is_file() else ""
    lines = readable_log_lines(text)
    run_dir = next((line.split("run: ", 1)[1].strip() for line in lines if line.startswith("run: ")), None)
    done_epochs, planned, eta = 0.0, 0, None
    if run_dir and (Path(run_dir) / "run.json").is_file():
        try:
            info = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
            done_epochs, planned = epoch_position(info)
            eta = eta_seconds(info, done_epochs, planned, time.time() - job["started"])
        except (ValueError, OSError, TypeError):
            pass
    error = next((line for line in reversed(lines) if line.startswith("error:")), None)
    state = "running" if code is None else ("done" if code == 0 else "failed")
    if job.get("cancelled") and state != "done":
        state, error = ("cancelling" if code is None else "cancelled"), None
    if state == "failed" and error is None:
        error = lines[-1] if lines else f"exit code {code}"
    return {
        "state": state,
        "run": run_dir,
        "epochs_done": done_epochs,
        "epochs_planned": planned,
        "eta_s": eta if state == "running" else None,
        "error": error,
        "tail": lines[-15:],
    }
