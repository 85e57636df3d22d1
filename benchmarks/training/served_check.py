"""Served = scored, checked on every run: the served model's scores for a few images against those the run records.

The leaderboard scores predictions.csv, which a trainer writes from its framework's own pipeline; the API, the
dashboard and every runtime load the serving artifact instead. An option whose two paths part (fastai's own
RandomResizedCrop centre-crops valid and test images, which the served model never crops: fastai_model/data.py)
makes the leaderboard score a model nobody serves, so a run whose two disagree fails instead of being published.
"""

from __future__ import annotations

import numpy as np

from benchmarks.data.dataset import Dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import RunError
from benchmarks.evaluation.results import EVAL_SPLITS, Run
from benchmarks.models.registry import family_of, load_predictor_class

CHECKED_IMAGES = 4
# bf16 training and batch-size-dependent kernels move a probability by ~1e-3; a different input moves it by 0.1+
TOLERANCE = 0.02


def check_served_is_scored(run: Run, dataset: Dataset, scores: np.ndarray) -> float:
    """The largest gap between the served model's and the recorded scores on the first ``CHECKED_IMAGES`` valid or
    test images (``EVAL_SPLITS`` order, as ``scores``), recorded in run.json; a gap over ``TOLERANCE`` is refused."""
    paths = dataset.image_paths(EVAL_SPLITS)[:CHECKED_IMAGES]
    predictor = load_predictor_class(family_of(run.kind))(run.path)
    served = np.asarray(predictor.predict([open_rgb(path) for path in paths]), dtype=np.float64)
    gap = float(np.abs(served - np.asarray(scores[: len(paths)], dtype=np.float64)).max())
    run.update(served_check={"images": len(paths), "max_abs_gap": round(gap, 6), "tolerance": TOLERANCE})
    if gap > TOLERANCE:
        raise RunError(
            f"{run.path}: the served model's scores are up to {gap:.3f} from those the run recorded on the same "
            f"images (tolerance {TOLERANCE}): the leaderboard would score a model nobody serves. This is a bug in "
            "the trainer; report it with the run's run.json"
        )
    return gap
