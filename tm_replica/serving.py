"""A replica run as a served model: its saved head on TM's base, softmax (or sigmoid) mapped to labels."""

from __future__ import annotations

from pathlib import Path

from benchmarks.evaluation.results import load_run
from benchmarks.exports.mapped_predictor import MappedNetworkPredictor

from .replica import load_replica_classifier


class ReplicaPredictor(MappedNetworkPredictor):
    def __init__(self, run_dir: Path | str):
        run = load_run(run_dir)
        super().__init__(run, load_replica_classifier(run))
