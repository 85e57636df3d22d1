"""``python -m keras_model.predict RUN IMAGE``: each label's score and the labels over their tuned thresholds."""
import sys

from benchmarks.predict_cli import predict_main


def main(argv: list[str] | None = None) -> int:
    return predict_main(argv, "python -m keras_model.predict", "keras")


if __name__ == "__main__":
    sys.exit(main())
