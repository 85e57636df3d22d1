"""One way to score images with any saved model: the run's kind picks its predictor.

Predictors take PIL images and return sigmoid scores (images × the run's labels). Frameworks are
imported only when a run of theirs is loaded, and PyTorch always before TensorFlow.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from .errors import RunError
from .results import Run, load_run

PREDICTORS = {  # run kind -> "module:class"
    "fastai": "fastai_model.serving:FastaiPredictor",
    "keras": "keras_model.serving:KerasPredictor",
}


def load_predictor(run: Run | Path | str):
    run = run if isinstance(run, Run) else load_run(run)
    kind = run.info["kind"]
    if kind not in PREDICTORS:
        raise RunError(f"{run.path}: a {kind} run has no saved model to predict with (those that do: {', '.join(PREDICTORS)})")
    if run.info["status"] != "done":
        raise RunError(f"{run.path}: the run is {run.info['status']}, not done; finish it (--resume) before predicting")
    if kind == "keras":
        from . import torch_first  # noqa: F401  (PyTorch before TensorFlow, should a fastai model load later)
    module, cls = PREDICTORS[kind].split(":")
    return getattr(importlib.import_module(module), cls)(run.path)
