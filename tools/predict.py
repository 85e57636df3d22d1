"""``python -m tools.predict RUN IMAGE [IMAGE ...]``: each label's score and the labels over the run's tuned thresholds.

Works for every run whose family keeps a model (fastai, Keras, the linear probe, TM replicas, evaluated TM and
AutoML Edge exports): the registry opens it, :func:`benchmarks.serving.scoring.score` scores it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.data.images import open_rgb
from benchmarks.errors import run_cli
from benchmarks.evaluation.results import load_run
from benchmarks.serving.predictors import load_predictor
from benchmarks.serving.scoring import Prediction, score, thresholds_of


def format_prediction(prediction: Prediction, i: int = 0) -> list[str]:
    labels, thresholds = prediction.labels, prediction.thresholds.values
    width = max(len(label) for label in labels)
    lines = []
    for label, value in sorted(prediction.label_scores(i).items(), key=lambda pair: -pair[1]):
        mark = "✔" if value >= thresholds[label] else " "
        lines.append(f"  {mark} {label:<{width}}  {value:.3f}  (threshold {thresholds[label]:.3f})")
    predicted = prediction.predicted(i)
    lines.append(f"labels: {' '.join(predicted) if predicted else '(none)'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.predict", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("run", type=Path, help="a run folder under results/ whose model was saved")
    parser.add_argument("images", type=Path, nargs="+", help="image files (JPEG, PNG, GIF, BMP, WebP, TIFF)")
    args = parser.parse_args(argv)

    def body() -> None:
        run = load_run(args.run)
        thresholds = thresholds_of(run)  # before loading: a damaged metrics.json is reported without the wait
        images = [open_rgb(path) for path in args.images]
        prediction = score(load_predictor(run), images, thresholds)
        for i, path in enumerate(args.images):
            note = "" if thresholds.tuned else f" ({thresholds.note})"
            print(f"{path} — {run.run_id} ({run.kind}){note}")
            print("\n".join(format_prediction(prediction, i)))

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
