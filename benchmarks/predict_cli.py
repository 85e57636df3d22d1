"""``python -m <trainer>.predict RUN IMAGE``: each label's score and the labels over their tuned thresholds."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import BenchmarkError
from .images import open_rgb
from .predictors import load_predictor
from .results import load_run, read_thresholds


def format_prediction(labels: list[str], scores, thresholds: dict[str, float]) -> list[str]:
    width = max(len(label) for label in labels)
    lines = []
    for label, score in sorted(zip(labels, scores), key=lambda pair: -pair[1]):
        mark = "✔" if score >= thresholds[label] else " "
        lines.append(f"  {mark} {label:<{width}}  {score:.3f}  (threshold {thresholds[label]:.3f})")
    predicted = [label for label, score in zip(labels, scores) if score >= thresholds[label]]
    lines.append(f"labels: {' '.join(predicted) if predicted else '(none)'}")
    return lines


def predict_main(argv: list[str] | None, prog: str, kind: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=f"Score one image with a trained {kind} run (thresholds tuned on valid).")
    parser.add_argument("run", type=Path, help=f"a {kind} run folder under results/")
    parser.add_argument("image", type=Path, help="image file")
    args = parser.parse_args(argv)
    try:
        run = load_run(args.run)
        if run.info["kind"] != kind:
            raise BenchmarkError(f"{args.run}: is a {run.info['kind']} run, not a {kind} run")
        predictor = load_predictor(run)
        scores = predictor.predict([open_rgb(args.image)])[0]
        thresholds = read_thresholds(run)
        note = "" if thresholds else " (run not evaluated yet: using 0.5)"
        thresholds = thresholds or {label: 0.5 for label in predictor.labels}
        print(f"{args.image} — {run.run_id}{note}")
        print("\n".join(format_prediction(predictor.labels, scores, thresholds)))
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
