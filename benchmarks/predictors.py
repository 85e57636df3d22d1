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
    "teachable_machine": "cloud_baselines.serving:ExportPredictor",
    "vertex_automl": "cloud_baselines.serving:ExportPredictor",
    "teachable_machine_replica": "cloud_baselines.serving:ReplicaPredictor",
}
TENSORFLOW_KINDS = {"keras", "teachable_machine", "vertex_automl", "teachable_machine_replica"}
FROM_EXPORT_ONLY = {"teachable_machine", "vertex_automl"}  # their runs can also come from batch predictions: no model then


def can_predict(run: Run) -> bool:
    """A finished run whose kind keeps a model (adapter runs: only those evaluated from an exported model file)."""
    kind = run.info["kind"]
    if kind not in PREDICTORS or run.info["status"] != "done":
        return False
    return kind not in FROM_EXPORT_ONLY or bool(run.info.get("params", {}).get("export"))


def load_predictor(run: Run | Path | str):
    run = run if isinstance(run, Run) else load_run(run)
    kind = run.info["kind"]
    if kind not in PREDICTORS:
        raise RunError(f"{run.path}: a {kind} run has no saved model to predict with (those that do: {', '.join(PREDICTORS)})")
    if run.info["status"] != "done":
        raise RunError(f"{run.path}: the run is {run.info['status']}, not done; finish it (--resume) before predicting")
    if kind in TENSORFLOW_KINDS:
        from . import torch_first  # noqa: F401  (PyTorch before TensorFlow, should a fastai model load later)
    module, cls = PREDICTORS[kind].split(":")
    return getattr(importlib.import_module(module), cls)(run.path)


def load_warm_predictor(run: Run | Path | str):
    """For servers: load, then predict once, so graph tracing and lazy allocation are not billed to the first user."""
    from PIL import Image

    predictor = load_predictor(run)
    predictor.predict([Image.new("RGB", (64, 64))])
    return predictor
