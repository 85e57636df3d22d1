"""One trial of a study, run where it is scheduled (a thread here or a Ray worker): the family's own command as an
ordinary run (a grid cell with the trial's values as flags), its valid macro AUC reported to the study after every
epoch so the pruner can stop it, and its valid and test scores read back from the shared evaluator's metrics.json.

Selection reads ``valid`` only; ``test`` is kept for the expected-max curve of test scores and is never looked at
when a configuration is chosen. A cross-validated trial (``tune --folds K``) runs one cell per fold, the pruner
watching the first; its ``valid`` and ``test`` are the means over the folds, and ``runs`` names every fold's run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.evaluation.results import Run, load_run, read_metrics
from benchmarks.runner.cells import INTERRUPTED_EXIT_CODES, run_cell
from benchmarks.runner.spec import Cell

from .storage import open_study


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs: the study's journal (``study_dir``), the trial's id in it, the cell that trains it, and
    the history field holding each epoch's valid macro AUC (None: nothing to prune on)."""

    study_dir: Path
    study_name: str
    trial_id: int
    number: int
    cell: Cell
    epoch_metric: str | None
    prune: bool
    other_folds: tuple[Cell, ...] = ()  # a cross-validated trial: the folds after the first (``cell``)

    @property
    def log_name(self) -> str:
        return f"trial-{self.number:04d}"


def run_trial(task: TrialTask) -> dict:
    """The trial's outcome: ``state`` complete, pruned, failed or interrupted (stopped from outside: Ctrl-C or a
    signal, so it is not the configuration's failure), with ``valid`` / ``test`` macro AUC, ``run`` (its folder
    name), ``seconds`` and, for a failure, the command's one-line ``error``."""
    watch = _pruning_watch(task) if task.prune and task.epoch_metric else None
    first = _run_one(task, task.cell, task.log_name, watch)
    if not task.other_folds or first["state"] != "complete":
        return first
    folds = [first]
    for fold, cell in enumerate(task.other_folds, start=1):
        outcome = _run_one(task, cell, f"{task.log_name}-fold{fold}", None)
        if outcome["state"] != "complete":
            return {**outcome, "seconds": sum(f["seconds"] for f in [*folds, outcome])}
        folds.append(outcome)
    return {
        **first,
        "valid": float(np.mean([f["valid"] for f in folds])),
        "test": float(np.mean([f["test"] for f in folds])),
        "seconds": round(sum(f["seconds"] for f in folds), 1),
        "runs": [f["run"] for f in folds],
        "fold_valid": [round(f["valid"], 5) for f in folds],
    }


def _run_one(task: TrialTask, cell: Cell, log_name: str, watch) -> dict:
    """One cell of the trial, scored from its metrics.json."""
    entry = run_cell(cell, task.study_dir / "trials", task.study_dir / "logs", name=log_name, watch=watch)
    outcome = {"number": task.number, "seconds": entry["seconds"], "log": entry["log"]}
    if entry["status"] == "stopped":
        return {**outcome, "state": "pruned"}
    if entry["status"] != "done":
        stopped = entry.get("exit_code") in INTERRUPTED_EXIT_CODES
        return {**outcome, "state": "interrupted" if stopped else "failed", "error": entry.get("error")}
    run = load_run(task.study_dir / "trials" / entry["run"])
    metrics = read_metrics(run)
    if metrics is None or metrics.get("valid", {}).get("macro_roc_auc") is None:
        error = "the run has no valid macro AUC to select on"
        return {**outcome, "state": "failed", "run": entry["run"], "error": error}
    return {
        **outcome,
        "state": "complete",
        "run": entry["run"],
        "valid": metrics["valid"]["macro_roc_auc"],
        "test": metrics["overall"]["macro_roc_auc"],
    }


def _pruning_watch(task: TrialTask):
    """Report each new epoch's valid macro AUC to the study (step = the epoch's index in the run's history) and
    answer whether the pruner stops the trial there.

    A keep-best run reports what it would end on if stopped after that epoch (run.json's ``keep_best_progress``):
    never below its start, and an epoch ahead of it within the noise counts as the start. The pruner then stops
    trials that fall behind the field, not those that dip before they climb: on StampScenes-450 the timid trials all
    ended on the probe (the median), and trials at 0.711, 0.777, 0.782 after three epochs were stopped below it,
    where such runs had crossed the probe at epoch 4 (docs/results.md)."""
    import optuna

    study = open_study(task.study_dir, task.study_name)
    trial = optuna.trial.Trial(study, task.trial_id)
    reported = 0

    def watch(run: Run) -> bool:
        nonlocal reported
        values = _epoch_values(run.info, task.epoch_metric)
        prune = False
        for step in range(reported, len(values)):
            if values[step] is not None:
                trial.report(float(values[step]), step)
                prune = prune or trial.should_prune()
        reported = len(values)
        return prune

    return watch


def _epoch_values(info: dict, epoch_metric: str) -> list:
    """Per epoch, the score the pruner judges: keep-best's "ends on" where the run keeps the best (written before
    its first epoch, so it is never behind the history), else the epoch's own valid macro AUC."""
    progress = info.get("keep_best_progress")
    if progress is not None:
        return list(progress.get("ends_on", []))
    return [row.get(epoch_metric) for row in info.get("history", [])]
