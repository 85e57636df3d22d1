"""Post-hoc calibration, fitted on valid only, written as a new run beside the original (never replacing it).

``python -m benchmarks calibrate RUN --method platt|temperature``: per label, a map from the run's score to a
calibrated one, fitted on the valid split's scores and labels and applied to valid and test. Platt scaling is a
logistic regression on the score's logit (scikit-learn, unpenalised); temperature scaling divides the logit by one
fitted number per label (Guo et al. 2017; scipy minimises valid log loss). Both are increasing maps (a label that
valid ranks backwards is left as it is), so each label's ranking — ROC-AUC, AP — stays, but for scores the map
pushes to exactly 0 or 1 in the stored precision (new ties); ECE, Brier and the tuned thresholds move. The new run
keeps its source's kind and settings plus ``calibration`` and ``calibrated_from``, so the leaderboard names it
apart; it has no model of its own to serve. Test labels are never read here: the evaluator scores the new run like
any other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from benchmarks.errors import BenchmarkError

from .evaluate import aligned_scores, dataset_of, evaluate_run
from .results import EVAL_SPLITS, Run, create_run, load_run, read_predictions

METHODS = ("platt", "temperature")
EDGE = 1e-12  # scores are clipped into (EDGE, 1 - EDGE) before the logit


def fit_map(valid_labels: np.ndarray, valid_scores: np.ndarray, method: str):
    """The calibration map of one label, fitted on valid: scores -> calibrated scores."""
    z = logit(np.clip(valid_scores, EDGE, 1 - EDGE))
    if len(np.unique(valid_labels)) < 2:
        return lambda scores: np.asarray(scores, dtype=np.float64)  # nothing to fit on: left as it is
    if method == "platt":
        model = LogisticRegression(penalty=None).fit(z[:, None], valid_labels)
        if model.coef_[0, 0] <= 0:  # valid ranks this label backwards: a map would reverse the ranking, so none
            return lambda scores: np.asarray(scores, dtype=np.float64)
        return lambda scores: model.predict_proba(logit(np.clip(scores, EDGE, 1 - EDGE))[:, None])[:, 1]

    def loss(log_t: float) -> float:
        return log_loss(valid_labels, expit(z / np.exp(log_t)), labels=[0, 1])

    temperature = float(np.exp(minimize_scalar(loss, bounds=(-5, 5), method="bounded").x))
    return lambda scores: expit(logit(np.clip(scores, EDGE, 1 - EDGE)) / temperature)


def calibrate_run(run_dir: Path | str, method: str, results_dir: Path | str | None = None) -> Run:
    """A new run: ``run_dir``'s scores calibrated per label on valid; evaluated by the shared evaluator."""
    if method not in METHODS:
        raise BenchmarkError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    source = load_run(run_dir)
    if source.status != "done":
        raise BenchmarkError(f"{source.path}: the run is {source.status}; only a finished run can be calibrated")
    if source.params.get("calibration"):
        raise BenchmarkError(f"{source.path}: is already calibrated ({source.params['calibration']}); use its source")
    dataset = dataset_of(source)
    valid_labels, valid_scores = aligned_scores(source, dataset, "valid")
    table = read_predictions(source, dataset)
    table = table[table["split"].isin(EVAL_SPLITS)].reset_index(drop=True)
    calibrated = np.column_stack(
        [
            fit_map(valid_labels[:, j], valid_scores[:, j], method)(table[label].to_numpy(np.float64))
            for j, label in enumerate(dataset.labels)
        ]
    )
    run = create_run(
        results_dir or source.path.parent,
        kind=source.kind,
        dataset=dataset,
        backbone=source.backbone,
        params={**source.params, "calibration": f"{method} on valid", "calibrated_from": source.run_id},
    )
    run.write_predictions(list(table["image"]), list(table["split"]), np.clip(calibrated, 0.0, 1.0))
    run.finish()
    evaluate_run(run.path, dataset)
    return load_run(run.path)
