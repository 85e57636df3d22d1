"""``python -m fastai_model.predict RUN IMAGE``: each label's score and the labels over their tuned thresholds."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=FutureWarning)

from benchmarks.errors import BenchmarkError  # noqa: E402
from benchmarks.images import open_rgb  # noqa: E402
from benchmarks.results import load_run, read_thresholds  # noqa: E402

from .serving import FastaiPredictor  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastai_model.predict", description="Score one image with a trained fastai run.")
    parser.add_argument("run", type=Path, help="a fastai run folder under results/")
    parser.add_argument("image", type=Path, help="image file")
    args = parser.parse_args(argv)
    try:
        run = load_run(args.run)
        predictor = FastaiPredictor(run.path)
        scores = predictor.predict([open_rgb(args.image)])[0]
        thresholds = read_thresholds(run)
        note = "" if thresholds else " (run not evaluated yet: using 0.5)"
        thresholds = thresholds or {label: 0.5 for label in predictor.labels}
        print(f"{args.image} — {run.run_id}{note}")
        width = max(len(label) for label in predictor.labels)
        for label, score in sorted(zip(predictor.labels, scores), key=lambda pair: -pair[1]):
            mark = "✔" if score >= thresholds[label] else " "
            print(f"  {mark} {label:<{width}}  {score:.3f}  (threshold {thresholds[label]:.3f})")
        predicted = [label for label, score in zip(predictor.labels, scores) if score >= thresholds[label]]
        print(f"labels: {' '.join(predicted) if predicted else '(none)'}")
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
