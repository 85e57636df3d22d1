"""Predict new images with the models behind adapter runs: evaluated TM / AutoML Edge exports.

Each run already records how the model's classes map to the dataset's labels (``params.class_mapping``), so a
new image is scored exactly as the valid and test images were: the model's softmax, mapped to labels.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.errors import RunError
from benchmarks.evaluation.results import load_run
from benchmarks.exports.mapped_predictor import MappedPredictor


class ExportPredictor(MappedPredictor):
    """A Teachable Machine or AutoML Edge export, re-opened from where ``tm-eval`` / ``vertex-eval`` read it."""

    def __init__(self, run_dir: Path | str):
        run = load_run(run_dir)
        export = run.params.get("export")
        if not export:
            raise RunError(
                f"{run.path}: this run came from batch predictions, not a model file; there is no model to predict with"
            )
        if not Path(export).exists():
            raise RunError(
                f"{run.path}: its model {export} is no longer there; put it back or evaluate the export again"
            )
        if run.kind == "teachable_machine":
            from .teachable_machine import open_tm_export as open_export
        else:
            from .vertex_automl import open_edge_export as open_export
        classifier, _, _ = open_export(Path(export))
        super().__init__(run, classifier)
